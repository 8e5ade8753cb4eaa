import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ExpressionSyntaxError, evaluate, parseExpression } from '../../src/automation/expression/index.ts';
import { nextCron, parseCron } from '../../src/automation/time/cron.ts';
import { parseDuration } from '../../src/automation/time/duration.ts';
import { sunTime } from '../../src/automation/time/sun.ts';

const scope = (variables: Record<string, unknown> = {}, state: Record<string, unknown> = {}) => ({
  variables,
  state: (thing: string, property: string) => state[`${thing}/${property}`],
  now: () => new Date(2026, 5, 1, 7, 45).getTime(),
});

const run = (text: string, variables?: Record<string, unknown>, state?: Record<string, unknown>) =>
  evaluate(parseExpression(text), scope(variables, state));

describe('expression language', () => {
  it('evaluates arithmetic, comparison and logic with the usual precedence', () => {
    assert.equal(run('1 + 2 * 3'), 7);
    assert.equal(run('(1 + 2) * 3'), 9);
    assert.equal(run('10 % 4 == 2 and not false'), true);
    assert.equal(run('1 < 2 && 2 <= 2 || 1 / 0 == 0'), true);
    assert.equal(run('-3 + 1'), -2);
    assert.equal(run("'a' + 1"), 'a1');
    assert.equal(run("'kitchen' in ['hall', 'kitchen']"), true);
  });

  it('reads trigger variables and things’ state, never prototypes', () => {
    assert.equal(run("trigger.to > 25 and trigger.id == 'hot'", { trigger: { to: 26, id: 'hot' } }), true);
    assert.equal(
      run(
        "state('living-room-sensor', 'sensor.temperature') >= 21.5",
        {},
        { 'living-room-sensor/sensor.temperature': 21.5 },
      ),
      true,
    );
    assert.equal(run('trigger.__proto__', { trigger: {} }), null);
    assert.equal(run('trigger.constructor', { trigger: {} }), null);
    assert.equal(run('missing.deep.path'), null);
    assert.equal(run('hour() == 7 and minute() == 45'), true);
  });

  it('is total: type mismatches give null or false instead of throwing', () => {
    assert.equal(run("'a' * 2"), null);
    assert.equal(run('null > 3'), false);
    assert.equal(run('1 / 0'), null);
    assert.equal(run('round(2.345, 2)'), 2.35);
    assert.equal(run("number('12.5') + 1"), 13.5);
  });

  it('caps a value a loop keeps doubling, so it cannot exhaust memory', () => {
    const variables: Record<string, unknown> = { s: 'ab', l: [] };
    for (let i = 0; i < 40; i++) {
      variables.s = run('s + s', variables);
      variables.l = run('[l, l]', variables);
    }
    assert.equal(variables.s, null);
    assert.equal(JSON.stringify(variables.l).length < 10_000_000, true);
    assert.deepEqual(run('[1, [2, 3]]'), [1, [2, 3]]);
  });

  it('reports syntax errors with their position and refuses unknown functions', () => {
    assert.throws(
      () => parseExpression('1 +'),
      (e: unknown) => e instanceof ExpressionSyntaxError && /end of/.test(e.message),
    );
    assert.throws(() => parseExpression("eval('x')"), /unknown function eval/);
    assert.throws(() => parseExpression('state(1)'), /takes 2 argument/);
    assert.throws(() => parseExpression('a ; b'), /character 3/);
    assert.throws(() => parseExpression('('.repeat(200)), /nested too deeply/);
  });

  it('never throws anything but a syntax error and never hangs, whatever the input', () => {
    const alphabet = fc.constantFrom(
      ...'abtrigerstn0123456789.()[]\'",+-*/%!<>=&| \n'.split(''),
      'and',
      'or',
      'not',
      'state(',
      'in',
      'trigger.',
      'null',
    );
    const input = fc.oneof(
      fc.string({ maxLength: 200 }),
      fc.array(alphabet, { maxLength: 80 }).map((parts) => parts.join('')),
    );
    fc.assert(
      fc.property(input, (text) => {
        const started = performance.now();
        try {
          const expr = parseExpression(text);
          evaluate(expr, scope({ trigger: { to: 1, id: 'x' } }, { 'a/b': 2 }));
        } catch (error) {
          if (!(error instanceof ExpressionSyntaxError)) throw error;
        }
        assert.ok(performance.now() - started < 250, 'each input is handled quickly');
      }),
      { numRuns: 3000 },
    );
  });
});

describe('time helpers', () => {
  it('parses durations in the forms rules use', () => {
    assert.equal(parseDuration('10m'), 600_000);
    assert.equal(parseDuration('1h30m'), 5_400_000);
    assert.equal(parseDuration('00:10:00'), 600_000);
    assert.equal(parseDuration(45), 45_000);
    assert.equal(parseDuration({ minutes: 2, seconds: 5 }), 125_000);
    assert.match(String(parseDuration('ten minutes')), /must be a duration/);
  });

  it('finds the next cron minute in local time, with steps, ranges and names', () => {
    const schedule = parseCron('*/15 9-17 * * mon-fri');
    assert.notEqual(typeof schedule, 'string');
    if (typeof schedule === 'string') return;
    // Saturday 2026-06-06 10:00 local → Monday 09:00.
    assert.equal(nextCron(schedule, new Date(2026, 5, 6, 10, 0).getTime()), new Date(2026, 5, 8, 9, 0).getTime());
    assert.equal(nextCron(schedule, new Date(2026, 5, 8, 9, 0).getTime()), new Date(2026, 5, 8, 9, 15).getTime());
    assert.match(String(parseCron('61 * * * *')), /minute field/);
    assert.match(String(parseCron('* * *')), /5 fields/);
  });

  it('puts Berlin’s midsummer sunrise near 02:43 UTC', () => {
    const sunrise = sunTime('sunrise', Date.UTC(2026, 5, 21, 12), { latitude: 52.52, longitude: 13.405 });
    assert.ok(sunrise !== null);
    const expected = Date.UTC(2026, 5, 21, 2, 43);
    assert.ok(Math.abs(sunrise - expected) < 4 * 60_000, `sunrise ${new Date(sunrise).toISOString()}`);
    assert.equal(
      sunTime('sunset', Date.UTC(2026, 5, 21), { latitude: 80, longitude: 0 }),
      null,
      'no sunset in the polar day',
    );
  });
});
