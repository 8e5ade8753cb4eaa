import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import {
  type ExpressionScope,
  ExpressionSyntaxError,
  evaluate,
  parseExpression,
} from '../../src/automation/expression/index.ts';
import { compileTemplate, renderTemplate } from '../../src/automation/parse/template.ts';
import { VirtualClock } from '../../src/core/clock.ts';
import { startTestHub, type TestHub, tracesOf } from './helpers.ts';

const T0 = Date.UTC(2026, 5, 1, 8);
const scope = (variables: Record<string, unknown> = {}, refused?: string[]): ExpressionScope => ({
  variables,
  state: () => null,
  now: () => T0,
  refused,
});
const run = (source: string, variables: Record<string, unknown> = {}, refused?: string[]) =>
  evaluate(parseExpression(source), scope(variables, refused));

const hubs: TestHub[] = [];
after(async () => {
  for (const h of hubs) await h.hub.stop();
});

/** That `fn` throws the language's syntax error, saying `what` and where: the `at`-th character. */
function throwsSyntaxError(fn: () => unknown, what: RegExp, at: number): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ExpressionSyntaxError);
    assert.match(e.message, what);
    assert.match(e.message, new RegExp(` at character ${at}$`));
    return true;
  });
}

async function hub(): Promise<TestHub> {
  const t = await startTestHub({ clock: new VirtualClock(T0) });
  hubs.push(t);
  return t;
}

/** A rule that notifies `message` when its webhook is called: saved over the API, the answer as it came. */
const saveNotifyRule = (t: TestHub, id: string, message: string) =>
  t.api('/api/automations', {
    method: 'POST',
    body: JSON.stringify({
      id,
      triggers: [{ trigger: 'webhook', webhook_id: `${id}-hook-00000` }],
      actions: [{ action: 'notify', message }],
    }),
  });

async function callWebhook(t: TestHub, rule: string, body: unknown): Promise<void> {
  const response = await t.api(`/api/automations/webhooks/${rule}-hook-00000`, {
    method: 'POST',
    body: JSON.stringify(body),
  });
  assert.equal(response.status, 200);
}

/** The order people expect of text: character by character (code points), as `len` and `s[i]` count them. */
function byCharacters(a: string, b: string): number {
  const x = Array.from(a, (c) => c.codePointAt(0) as number);
  const y = Array.from(b, (c) => c.codePointAt(0) as number);
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}

/** Any UTF-16 unit, lone surrogate halves included (a JSON payload's "\ud800" escape makes one). */
const anyUnit = fc.integer({ min: 0, max: 0xffff }).map((n) => String.fromCharCode(n));
const text = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 6 }),
  fc.string({ unit: anyUnit, maxLength: 6 }),
  fc.string({ unit: fc.constantFrom('a', '\uffff', '\ue000', '😀', '𝄞', '\ud83d', '\ude00'), maxLength: 6 }),
);

describe('text is ordered by characters, not UTF-16 halves', () => {
  it('an emoji sorts after every character of the first 65,536', () => {
    const vars = { smile: '\u{1F600}', last: '\uFFFF', private: '\uE000' };
    assert.equal(run('smile < last', vars), false);
    assert.equal(run('smile > last', vars), true);
    assert.equal(run('smile >= private', vars), true);
    assert.equal(run('last <= smile', vars), true);
    assert.equal(run("'Anna 😀' > 'Anna \uffff'", vars), true, 'literals too');
  });

  it('property: <, <=, >, >= agree with comparing the texts’ characters one by one', () => {
    fc.assert(
      fc.property(text, text, text, (common, x, y) => {
        // A shared start makes the texts differ somewhere inside, not only at their first character.
        const a = common + x;
        const b = common + y;
        const order = Math.sign(byCharacters(a, b));
        assert.equal(run('a < b', { a, b }), order < 0);
        assert.equal(run('a <= b', { a, b }), order <= 0);
        assert.equal(run('a > b', { a, b }), order > 0);
        assert.equal(run('a >= b', { a, b }), order >= 0);
        assert.equal(run('a == b', { a, b }), order === 0);
      }),
      { numRuns: 3000 },
    );
  });
});

describe('round(x, digits)', () => {
  it('rounds to 11 to 15 digits, as many as a number carries', () => {
    assert.equal(run('round(1.23456789012345, 11)'), 1.23456789012);
    assert.equal(run('round(0.123456789012345678, 15)'), 0.123456789012346);
    assert.equal(run('round(2.345, 2)'), 2.35);
    assert.equal(run('round(2.5)'), 3);
    assert.equal(run('round(x, d)', { x: 48.1234567890123, d: 12 }), 48.123456789012);
    // Scaled past 2^53 a number has no digits left to round: it stays as it is.
    assert.equal(run('round(123456789.123, 15)'), 123456789.123);
    assert.equal(run('round(x, 15)', { x: 1e300 }), 1e300);
  });

  it('digits written out of range or not whole are refused when the rule is saved, naming where', () => {
    for (const [source, at] of [
      ['round(x, 16)', 10],
      ['round(x, 2.5)', 10],
      ['round(x, -1)', 10],
      ['round(x,  100)', 11],
    ] as const) {
      throwsSyntaxError(() => parseExpression(source), /round\(\) rounds to 0 to 15 digits after the point/, at);
    }
  });

  it('digits out of range from a variable give null and a reason, not a silent round to 0 digits', () => {
    for (const d of [11.5, 16, -1, 1e9]) {
      const refused: string[] = [];
      assert.equal(run('round(x, d)', { x: 1.25, d }, refused), null, String(d));
      assert.deepEqual(refused, [`round() rounds to 0 to 15 digits after the point, not ${d}`]);
    }
    const refused: string[] = [];
    assert.equal(run('round(x, d)', { x: 1.25, d: 'two' }, refused), null);
    assert.deepEqual(refused, ['round() rounds to 0 to 15 digits after the point, not "two"']);
  });

  it('through a rule: a variable digits out of range fails the step with the reason', async () => {
    const t = await hub();
    assert.equal(
      (await saveNotifyRule(t, 'rounding', 'about {{ round(trigger.data.x, trigger.data.d) }}')).status,
      201,
    );
    const saved = await saveNotifyRule(t, 'rounding-literal', 'about {{ round(trigger.data.x, 20) }}');
    assert.equal(saved.status, 400);
    assert.match(await saved.text(), /actions\[0\]\.message: round\(\) rounds to 0 to 15 digits.*at character 24/);
    for (const d of [11, 16]) await callWebhook(t, 'rounding', { x: 1.123456789012345, d });
    await t.engine.settled();
    const [good, bad] = await tracesOf(t, 'rounding');
    assert.equal(good.status, 'finished');
    assert.equal(good.steps[0].detail, 'about 1.12345678901');
    assert.equal(bad.status, 'error');
    assert.match(JSON.stringify(bad.steps[0]), /round\(\) rounds to 0 to 15 digits after the point, not 16/);
  });
});

describe('templates: {{ … }} with }} inside a quoted text', () => {
  const render = (value: string, variables: Record<string, unknown> = {}) =>
    renderTemplate(compileTemplate(value), scope(variables));

  it('a }} inside quotes does not close the placeholder', () => {
    assert.equal(render("{{ 'a}}b' }}"), 'a}}b');
    assert.equal(render('x {{ \'a}}b\' + "}}" }} y'), 'x a}}b}} y');
    assert.equal(render("{{ 'it\\'s }}' + n }} and {{ n }}", { n: 2 }), "it's }}2 and 2", 'an escaped quote');
    assert.equal(render('{{ "\\\\" }}}} {{ n }}', { n: 1 }), '\\}} 1', 'an escaped backslash ends the text');
    assert.equal(render('{{ n }}', { n: 5 }), 5, 'one placeholder alone keeps its type');
    assert.equal(render("  {{ 'a}}' }} "), 'a}}', 'with blanks around it too');
    assert.equal(render('plain }} text'), 'plain }} text', 'a }} without {{ is text');
  });

  it('a {{ never closed is an error naming where it opens', () => {
    for (const [value, at] of [
      ['hello {{ name', 7],
      ["{{ 'a}}b }}", 1],
      ['{{ n }} and {{ "}}" ', 13],
    ] as const) {
      throwsSyntaxError(() => compileTemplate(value), /^"\{\{" is not closed by "\}\}"/, at);
    }
  });

  it('through a rule: the message renders whole, and an unclosed {{ is refused at save with its field', async () => {
    const t = await hub();
    assert.equal((await saveNotifyRule(t, 'braces', "{{ trigger.data.who + ' said }}' }} at home")).status, 201);
    await callWebhook(t, 'braces', { who: 'Anna' });
    await t.engine.settled();
    const [trace] = await tracesOf(t, 'braces');
    assert.equal(trace.steps[0].detail, 'Anna said }} at home');
    const bad = await saveNotifyRule(t, 'unclosed', 'hi {{ trigger.data.who');
    assert.equal(bad.status, 400);
    assert.match(await bad.text(), /actions\[0\]\.message: \\"\{\{\\" is not closed by \\"\}\}\\" at character 4/);
    assert.equal((await t.api('/api/automations/unclosed')).status, 404, 'nothing stored');
  });
});
