import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import { type ExpressionScope, evaluate, parseExpression } from '../src/automation/expression/index.ts';
import type { Trace } from '../src/automation/index.ts';
import { VirtualClock } from '../src/core/clock.ts';
import { createLogger, type LogLine } from '../src/core/log.ts';
import { HOME, postRule, startTestHub, type TestHub, tracesOf } from './automation/helpers.ts';

const T0 = Date.UTC(2026, 5, 1, 8);
const run = (source: string, variables: Record<string, unknown> = {}) =>
  evaluate(parseExpression(source), { variables, state: () => null, now: () => T0 } satisfies ExpressionScope);

/** Fires a webhook rule with a JSON body and hands back its newest trace. */
async function fire(t: TestHub, rule: string, hook: string, body: unknown): Promise<Trace> {
  const response = await t.api(`/api/automations/webhooks/${hook}`, { method: 'POST', body: JSON.stringify(body) });
  assert.equal(response.status, 200, await response.clone().text());
  await t.engine.settled();
  const traces = await tracesOf(t, rule);
  return traces[traces.length - 1];
}

const hubs: TestHub[] = [];
after(async () => {
  for (const h of hubs) await h.hub.stop();
});

describe('text is indexed by characters, not UTF-16 halves', () => {
  it('a name with an emoji: its last character, its length and each index are whole characters', () => {
    const vars = { name: 'Anna 🚗', mixed: '𝄞a😀' };
    assert.equal(run('name[-1]', vars), '🚗');
    assert.equal(run('name[5]', vars), '🚗');
    assert.equal(run('name[6]', vars), null);
    assert.equal(run('name[-6]', vars), 'A');
    assert.equal(run('name[-7]', vars), null);
    assert.equal(run('len(name)', vars), 6);
    assert.equal(run('name.length', vars), 6);
    assert.equal(run('mixed[1]', vars), 'a');
    assert.equal(run('mixed[-1] + mixed[0]', vars), '😀𝄞');
  });

  it('property: s[i] is the i-th character from the start, s[-i] from the end, as for lists', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'grapheme-composite', maxLength: 12 }),
        fc.integer({ min: -14, max: 14 }),
        (s, i) => {
          const chars = [...s];
          assert.equal(run('s[i]', { s, i }), chars.at(i) ?? null);
          assert.equal(run('[c][0][i]', { c: chars, i }), chars.at(i) ?? null, 'a list of the characters agrees');
          assert.equal(run('len(s)', { s }), chars.length);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('through a rule: a webhook with an emoji name gets its initial and last character whole', async () => {
    const t = await startTestHub({ clock: new VirtualClock(T0) });
    hubs.push(t);
    await postRule(t, {
      id: 'greet',
      triggers: [{ trigger: 'webhook', webhook_id: 'greet-hook-1234' }],
      actions: [
        {
          action: 'notify',
          message: '{{ trigger.data.name[0] }}…{{ trigger.data.name[-1] }} ({{ len(trigger.data.name) }})',
        },
      ],
    });
    const trace = await fire(t, 'greet', 'greet-hook-1234', { name: '😀 Ben 🚗' });
    assert.equal(trace.status, 'finished', trace.error ?? '');
    assert.equal(trace.steps[0].detail, '😀…🚗 (7)');
  });
});

const LIMIT = 256 * 1024;

describe('text a rule builds is bounded (256 Ki characters)', () => {
  it('string(), + and a template over the bound: the run ends in an error that says so; the hub goes on', async () => {
    const t = await startTestHub({ clock: new VirtualClock(T0) });
    hubs.push(t);
    const big = { text: 'x'.repeat(100_000) };
    const cases: Array<[string, string]> = [
      ['by-string', '{{ string([trigger.data, trigger.data, trigger.data]) }}'],
      ['by-plus', "{{ trigger.data.text + trigger.data.text + trigger.data.text + '!' }}"],
      ['by-template', '{{ trigger.data }}{{ trigger.data }}{{ trigger.data }}'],
      ['by-nesting', '{{ [[[trigger.data, trigger.data], [trigger.data, trigger.data]]] }} in text'],
    ];
    for (const [id, message] of cases) {
      await postRule(t, {
        id,
        triggers: [{ trigger: 'webhook', webhook_id: `${id}-hook-0000` }],
        actions: [
          { action: 'notify', message },
          { action: 'turn_on', thing: 'living-room-fan' },
        ],
      });
      const trace = await fire(t, id, `${id}-hook-0000`, big);
      assert.equal(trace.status, 'error', `${id}: ${trace.status}`);
      assert.match(trace.error ?? '', /longer than 262144 characters/, id);
      assert.equal(trace.steps.length, 1, `${id}: nothing after the step that failed`);
      assert.equal(trace.steps[0].status, 'error');
      assert.ok(JSON.stringify(trace).length < LIMIT, `${id}: the trace does not carry the text`);
      assert.equal(t.ruleCommands(id).length, 0, `${id}: no command sent`);
    }
    // A doubling loop over a shared list: each JSON would be gigabytes; refused at once instead.
    await postRule(t, {
      id: 'doubling',
      triggers: [{ trigger: 'webhook', webhook_id: 'doubling-hook-0000' }],
      variables: { l: '{{ [trigger.data] }}' },
      actions: [
        { repeat: { count: 3, sequence: [{ variables: { l: '{{ [l, l] }}' } }] } },
        { action: 'notify', message: 'size {{ len(string(l)) }}' },
      ],
    });
    const doubled = await fire(t, 'doubling', 'doubling-hook-0000', big);
    assert.equal(doubled.status, 'error');
    assert.match(doubled.error ?? '', /string\(\) would make a text longer than 262144 characters/);
    // Doubled 40 times, the list itself passes its own bound: the step that would build it says so.
    await postRule(t, {
      id: 'doubling-list',
      triggers: [{ trigger: 'webhook', webhook_id: 'doubling-list-hook' }],
      variables: { l: '{{ [1] }}' },
      actions: [{ repeat: { count: 40, sequence: [{ variables: { l: '{{ [l, l] }}' } }] } }],
    });
    const list = await fire(t, 'doubling-list', 'doubling-list-hook', {});
    assert.equal(list.status, 'error');
    assert.match(list.error ?? '', /a list would hold more than 1000000 items/);
    assert.equal((await t.api('/api/health')).status, 200);
    // Within the bound, the same rule's text is made as before.
    const fine = await fire(t, 'by-plus', 'by-plus-hook-0000', { text: 'ab' });
    assert.equal(fine.status, 'finished');
    assert.equal(fine.steps[0].detail, 'ababab!');
  });

  it('an expression condition over the bound is false, and its detail says why', async () => {
    const t = await startTestHub({ clock: new VirtualClock(T0) });
    hubs.push(t);
    await postRule(t, {
      id: 'cond',
      triggers: [{ trigger: 'webhook', webhook_id: 'cond-hook-0000' }],
      conditions: [
        { condition: 'expression', expression: 'len(string([trigger.data, trigger.data, trigger.data])) > 0' },
      ],
      actions: [{ action: 'notify', message: 'went on' }],
    });
    const trace = await fire(t, 'cond', 'cond-hook-0000', { text: 'y'.repeat(100_000) });
    assert.equal(trace.status, 'condition_failed');
    assert.match(JSON.stringify(trace.conditions), /longer than 262144 characters/);
  });
});

describe('rule identifiers with control characters', () => {
  const rule = (triggerId: string) => ({
    id: 'ctl',
    triggers: [{ trigger: 'webhook', webhook_id: 'ctl-hook-00000', id: triggerId }],
    actions: [{ action: 'notify', message: 'x' }],
  });

  it('a trigger id with a control or bidi character is refused with a 400 naming the field, and nothing is stored', async () => {
    const t = await startTestHub({ clock: new VirtualClock(T0) });
    hubs.push(t);
    for (const bad of [
      'a\u0000b',
      'line\nbreak',
      'evil\u202Etxt.exe',
      'tab\there',
      '\u0085next',
      'iso\u2066late',
      'a\u2028b',
    ]) {
      const response = await t.api('/api/automations', { method: 'POST', body: JSON.stringify(rule(bad)) });
      assert.equal(response.status, 400, JSON.stringify(bad));
      const body = (await response.json()) as { error: { code: string; message: string } };
      assert.match(body.error.message, /triggers\[0\]\.id/, JSON.stringify(bad));
      assert.match(body.error.message, /control|invisible/, JSON.stringify(bad));
      assert.equal((await t.api('/api/automations/ctl')).status, 404, 'nothing stored');
    }
    // A condition naming trigger ids is held to the same.
    const response = await t.api('/api/automations', {
      method: 'POST',
      body: JSON.stringify({ ...rule('ok'), conditions: [{ condition: 'trigger', id: 'ok\u0000' }] }),
    });
    assert.equal(response.status, 400);
    assert.match(((await response.json()) as { error: { message: string } }).error.message, /conditions\[0\]\.id/);
    // Ordinary text, accents and emoji included, is still an id.
    for (const good of ['Front door', 'café-🚪', 'ok']) {
      const created = await t.api('/api/automations', { method: 'POST', body: JSON.stringify(rule(good)) });
      assert.equal(created.status, 201, JSON.stringify(good));
      assert.equal((await t.api('/api/automations/ctl', { method: 'DELETE' })).status, 204);
    }
  });

  it('a rule stored by an earlier version with such an id still loads and runs, with a warning', async () => {
    const first = await startTestHub({ clock: new VirtualClock(T0) });
    await first.hub.store.saveRule({
      householdId: HOME,
      id: 'ctl',
      body: rule('old\nid'),
      createdAt: T0,
      updatedAt: T0,
    });
    await first.hub.stop();
    const lines: LogLine[] = [];
    const t = await startTestHub({
      clock: new VirtualClock(T0 + 60_000),
      dataDir: first.dataDir,
      log: createLogger({ level: 'warn', sink: (line) => lines.push(line) }),
    });
    hubs.push(t);
    const view = (await (await t.api('/api/automations/ctl')).json()) as { status: string; warnings: string[] };
    assert.equal(view.status, 'active');
    assert.equal(view.warnings.length, 1);
    assert.match(view.warnings[0], /^triggers\[0\]\.id: .*control/);
    const trace = await fire(t, 'ctl', 'ctl-hook-00000', {});
    assert.equal(trace.status, 'finished');
    assert.equal(trace.trigger.id, 'old\nid');
  });
});

describe('values nested very deep', () => {
  it('a webhook body nested past 100 is refused with a 400, not a 500, and the rule stays as it was', async () => {
    const t = await startTestHub({ clock: new VirtualClock(T0) });
    hubs.push(t);
    await postRule(t, {
      id: 'deep',
      triggers: [{ trigger: 'webhook', webhook_id: 'deep-hook-00000' }],
      actions: [{ action: 'notify', message: '{{ trigger.data.a == trigger.data.b }}' }],
    });
    const nest = (n: number) => '['.repeat(n) + ']'.repeat(n);
    const deep = await t.api('/api/automations/webhooks/deep-hook-00000', {
      method: 'POST',
      body: `{"a":${nest(60_000)},"b":${nest(60_000)}}`,
    });
    assert.equal(deep.status, 400);
    const body = (await deep.json()) as { error: { code: string; message: string } };
    assert.equal(body.error.code, 'body_too_deep');
    assert.match(body.error.message, /nested more than 100 deep/);
    await t.engine.settled();
    assert.equal((await tracesOf(t, 'deep')).length, 0, 'no run');
    // As deep as real data goes, it runs and its trace is kept.
    const fine = await t.api('/api/automations/webhooks/deep-hook-00000', {
      method: 'POST',
      body: `{"a":${nest(90)},"b":${nest(90)}}`,
    });
    assert.equal(fine.status, 200);
    await t.engine.settled();
    const [trace] = await tracesOf(t, 'deep');
    assert.equal(trace.status, 'finished');
    assert.equal(trace.steps[0].detail, 'true');
    assert.equal((await t.api('/api/health')).status, 200);
  });

  it('a list a loop nested deep compares, and making text of it is a clear refusal, never a stack overflow', () => {
    let a: unknown = [];
    let b: unknown = [];
    for (let i = 0; i < 60_000; i++) {
      a = [a];
      b = [b];
    }
    const refused: string[] = [];
    const scope: ExpressionScope = {
      variables: { a, b, o: { x: [1] }, p: { x: [1] } },
      state: () => null,
      now: () => T0,
      refused,
    };
    assert.equal(evaluate(parseExpression('a == b and a in [b] and o == p'), scope), true);
    assert.equal(evaluate(parseExpression('string(a)'), scope), null);
    assert.match(refused[0], /string\(\) cannot make text of a value nested more than 1000 deep/);
  });
});
