import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  type ExpressionScope,
  ExpressionSyntaxError,
  evaluate,
  parseExpression,
} from '../../src/automation/expression/index.ts';
import { nextCron, parseCron } from '../../src/automation/time/cron.ts';
import { sunTimeOn } from '../../src/automation/time/sun.ts';

const scope = (variables: Record<string, unknown> = {}): ExpressionScope => ({
  variables,
  state: () => null,
  now: () => Date.UTC(2026, 5, 1, 8),
});
const run = (source: string, variables: Record<string, unknown> = {}) =>
  evaluate(parseExpression(source), scope(variables));

describe('expression language: second review', () => {
  it('min() and max() of a long list (a webhook body, an MQTT payload) give its least and greatest, not a crash', () => {
    // Math.min(...list) puts every item on the stack: a list of a few hundred thousand numbers
    // threw "Maximum call stack size exceeded" out of an evaluator meant never to throw.
    const big = Array.from({ length: 400_000 }, (_, i) => (i * 7919) % 400_000);
    assert.equal(run('min(trigger.data.values)', { trigger: { data: { values: big } } }), 0);
    assert.equal(run('max(trigger.data.values)', { trigger: { data: { values: big } } }), 399_999);
  });

  it('a number literal too large to be a number is a syntax error, not Infinity', () => {
    const huge = '9'.repeat(400);
    assert.throws(
      () => parseExpression(`x > ${huge}`),
      (e: unknown) => {
        assert.ok(e instanceof ExpressionSyntaxError);
        assert.match(e.message, /too large/);
        assert.match(e.message, /at character 5/);
        return true;
      },
    );
    assert.equal(run('1' + '0'.repeat(300)), 1e300);
  });

  it('\\u escapes in strings give the character they name; \\r and \\\\ are what they say', () => {
    assert.equal(run("'caf\\u00e9'"), 'café');
    assert.equal(run('"\\u{1F697} home"'), '🚗 home');
    assert.equal(run("'a\\rb\\\\c'"), 'a\rb\\c');
    assert.throws(
      () => parseExpression("'\\u00g9'"),
      /\\u must be followed by 4 hex digits or \{hex\}.* at character 2/,
    );
    assert.throws(() => parseExpression("'\\u{110000}'"), /is not a Unicode code point/);
  });

  it('round() of a large number keeps the number rather than giving null', () => {
    assert.equal(run('round(x, 2)', { x: 1e307 }), 1e307);
    assert.equal(run('round(x, 1)', { x: 2.25 }), 2.3);
  });

  it('prototype names read nothing: __proto__, constructor, toString are not there', () => {
    const vars = { trigger: { data: { a: 1 } }, s: 'text', l: [1] };
    for (const source of [
      '__proto__',
      'constructor',
      'trigger.__proto__',
      'trigger.constructor',
      'trigger["__proto__"]',
      'trigger.data.constructor',
      's.constructor',
      'l.constructor',
      'trigger.data.toString',
      '"__proto__" in trigger.data',
      '"constructor" in trigger.data',
    ]) {
      const value = run(source, vars);
      assert.ok(value === null || value === false, `${source} gave ${String(value)}`);
    }
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });

  it('precedence: unary minus binds tighter than *, not binds looser than ==, and/or left to right', () => {
    assert.equal(run('-2 * 3 + 10 % 4'), -4);
    assert.equal(run('- - 2'), 2);
    assert.equal(run('not 1 == 2'), true);
    assert.equal(run('1 + 2 * 3 == 7 and not false or false'), true);
    assert.equal(run('10 - 2 - 3'), 5);
    assert.equal(run('12 / 2 / 3'), 2);
    assert.throws(() => parseExpression('1 < 2 < 3'), ExpressionSyntaxError);
  });

  it('property: every expression that parses evaluates without throwing, quickly, even nested to the limit', () => {
    const leaf = fc.oneof(
      fc.constantFrom('x', 's', 'l', 'o', 'trigger.data', 'null', 'true', '0', '-1', '1e', "'ab'", '[]', '[1, [2]]'),
      fc.integer().map(String),
      fc.double({ noNaN: true, noDefaultInfinity: true }).map((n) => String(Math.abs(n))),
    );
    const expr = fc.letrec<{ e: string }>((tie) => ({
      e: fc.oneof(
        { depthSize: 'small', withCrossShrink: true },
        leaf,
        fc
          .tuple(tie('e'), fc.constantFrom('+', '-', '*', '/', '%', '==', '!=', '<', '>=', 'in', 'and', 'or'), tie('e'))
          .map(([a, op, b]) => `(${a} ${op} ${b})`),
        tie('e').map((a) => `-(${a})`),
        tie('e').map((a) => `not (${a})`),
        tie('e').map((a) => `(${a})[0]`),
        tie('e').map((a) => `(${a}).length`),
        fc
          .tuple(fc.constantFrom('min', 'max', 'abs', 'round', 'len', 'string', 'number', 'lower'), tie('e'))
          .map(([fn, a]) => `${fn}(${a})`),
        fc.tuple(tie('e'), tie('e')).map(([a, b]) => `[${a}, ${b}]`),
      ),
    })).e;
    const vars = { x: 3, s: 'text', l: [1, 2, 3], o: { a: 1 }, trigger: { data: { a: [1] } } };
    fc.assert(
      fc.property(expr, (source) => {
        let parsed: ReturnType<typeof parseExpression>;
        try {
          parsed = parseExpression(source);
        } catch (error) {
          if (error instanceof ExpressionSyntaxError) return;
          throw error;
        }
        const value = evaluate(parsed, scope(vars));
        assert.notEqual(value, undefined);
        if (typeof value === 'number') assert.ok(Number.isFinite(value), `${source} gave ${value}`);
      }),
      { numRuns: 2000 },
    );
    // The longest chains the length bound lets through: evaluation recurses over them without overflow.
    for (const source of ['x' + ' + x'.repeat(999), '-'.repeat(3999) + 'x', `o${'.a'.repeat(1999)}`]) {
      try {
        evaluate(parseExpression(source), scope(vars));
      } catch (error) {
        assert.ok(error instanceof ExpressionSyntaxError, `${source.slice(0, 20)}…: ${String(error)}`);
      }
    }
  });
});

describe('cron: the night the clocks go back', () => {
  it('the next minute is always strictly after the last, and minutes of the repeated hour follow one another', () => {
    // In the repeated hour (02:00–03:00 twice in Berlin on 25 October 2026), setting a local
    // minute lands in the hour's first pass: from 02:10 the second time, the "next" minute was
    // 02:11 the first time, an hour earlier. A scheduler asking again from that fired it over and
    // over, or ran the whole hour a second time.
    const zone = process.env.TZ;
    process.env.TZ = 'Europe/Berlin';
    try {
      const every = parseCron('* * * * *');
      assert.ok(typeof every !== 'string');
      const start = Date.UTC(2026, 9, 24, 23, 0); // 01:00 CEST
      const secondPass = Date.UTC(2026, 9, 25, 1, 0); // 02:00 CET, the second time
      for (let t = start; t < Date.UTC(2026, 9, 25, 3, 0); t += 60_000) {
        const next = nextCron(every, t);
        assert.ok(next > t, `after ${new Date(t).toISOString()} came ${new Date(next).toISOString()}`);
        // A hub that starts (or asks again) in the second pass goes on minute by minute in it.
        if (t >= secondPass) assert.equal(next, t + 60_000, `after ${new Date(t).toISOString()}`);
      }
      // A pattern for 02:30 fires once that night (its first pass), then the next day.
      const half = parseCron('30 2 * * *');
      assert.ok(typeof half !== 'string');
      const first = nextCron(half, start);
      assert.equal(first, Date.UTC(2026, 9, 25, 0, 30));
      assert.equal(nextCron(half, first), Date.UTC(2026, 9, 26, 1, 30));
    } finally {
      if (zone === undefined) delete process.env.TZ;
      else process.env.TZ = zone;
    }
  });
});

describe('sun conditions far from Greenwich', () => {
  const after = (event: 'sunrise' | 'sunset', now: number, where: { latitude: number; longitude: number }) => {
    const t = sunTimeOn(event, 0, now, where);
    return t !== null && now >= t;
  };

  it('"after sunset" is true on a New York evening, and "after sunrise" false before a Tokyo dawn', () => {
    // New York, 1 June 2026, EDT (UTC-4): sunset about 20:20. At 21:00 it is 01:00 UTC the next
    // day, and the sunset compared with was tomorrow's: "after sunset" was never true at night.
    const newYork = { latitude: 40.71, longitude: -74.0 };
    const edt = (hour: number) => Date.UTC(2026, 5, 1, hour + 4, 0);
    assert.equal(after('sunset', edt(19), newYork), false, '19:00 is before sunset');
    assert.equal(after('sunset', edt(21), newYork), true, '21:00 is after sunset');
    assert.equal(after('sunset', edt(23.5), newYork), true, '23:30 is after sunset');
    assert.equal(after('sunrise', edt(4), newYork), false, '04:00 is before sunrise');
    assert.equal(after('sunrise', edt(7), newYork), true, '07:00 is after sunrise');
    // Tokyo (UTC+9): sunrise about 04:25. At 03:00 it is 18:00 UTC the day before, and the sunrise
    // compared with was yesterday's.
    const tokyo = { latitude: 35.68, longitude: 139.69 };
    const jst = (hour: number) => Date.UTC(2026, 5, 1, hour - 9, 0);
    assert.equal(after('sunrise', jst(3), tokyo), false, '03:00 is before sunrise');
    assert.equal(after('sunrise', jst(6), tokyo), true, '06:00 is after sunrise');
    assert.equal(after('sunset', jst(20), tokyo), true, '20:00 is after sunset');
    // Berlin as before: sunset about 21:20 CEST on 1 June.
    const berlin = { latitude: 52.52, longitude: 13.405 };
    assert.equal(after('sunset', Date.UTC(2026, 5, 1, 19, 0), berlin), false);
    assert.equal(after('sunset', Date.UTC(2026, 5, 1, 20, 0), berlin), true);
  });
});
