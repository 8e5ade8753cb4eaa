import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import YAML from 'yaml';
import type { Trace } from '../../src/automation/index.ts';
import { VirtualClock } from '../../src/core/clock.ts';
import { eventually } from '../helpers/hub-process.ts';
import {
  advance,
  FAN_RULE_YAML,
  HOME,
  MIN,
  postRule,
  startTestHub,
  type TestHub,
  tracesOf,
  writeRuleFile,
} from './helpers.ts';

/**
 * A rule replaced, switched off or deleted ends what it had waiting: its `for:` countdowns (which
 * have no trace of their own until then), its queued triggers and its waiting runs, each with a
 * `cancelled` trace that says the rule changed, and their stored rows go, so nothing fires after
 * a restart either. A rules file read again with a rule's text unchanged leaves its countdown be.
 */

const T0 = new Date(2026, 5, 1, 8, 0).getTime();
const FAN_RULE = YAML.parse(FAN_RULE_YAML) as Record<string, unknown>;
const CHANGED = /^the rule was changed or removed before its trigger had held for 10m \(for:\)$/;

/** The fan rule's trigger matched at T0 + 1 min (26 °C with someone home): its 10-minute `for:` counts down. */
async function startCountdown(t: TestHub, clock: VirtualClock, timers = 1): Promise<number> {
  t.set('household', 'presence.anyone_home', true);
  t.set('living-room-sensor', 'sensor.temperature', 22);
  await advance(clock, MIN);
  const matchedAt = clock.now();
  t.set('living-room-sensor', 'sensor.temperature', 26);
  await advance(clock, 2 * MIN);
  assert.equal((await t.hub.store.listTimers('automations')).length, timers, 'the countdown is stored');
  return matchedAt;
}

/** The traces of a rule as stored (a deleted rule's are no longer listed by the API), oldest first. */
async function storedTraces(t: TestHub, clock: VirtualClock, rule: string): Promise<Trace[]> {
  // Past the window in which finished traces are written together.
  await advance(clock, 5000, 500);
  let stored: Awaited<ReturnType<typeof t.hub.store.listTraces>> = [];
  await eventually(
    async () => {
      stored = await t.hub.store.listTraces({ householdId: HOME, rule, limit: 100 });
      return stored.length > 0;
    },
    { what: `a stored trace of ${rule}` },
  );
  return stored.map((s) => s.body as unknown as Trace).reverse();
}

describe('automations: a rule changed while a `for:` counts down', () => {
  const hubs: TestHub[] = [];
  after(async () => {
    for (const h of hubs) await h.hub.stop();
  });

  it('ends the countdown of a rule replaced over the API in a cancelled trace, and nothing fires, even after a restart', async () => {
    const clock = new VirtualClock(T0);
    const first = await startTestHub({ clock });
    await postRule(first, FAN_RULE);
    const matchedAt = await startCountdown(first, clock);

    const put = await first.api('/api/automations/fan-when-hot', {
      method: 'PUT',
      body: JSON.stringify({ ...FAN_RULE, name: 'Fan on when it is hot' }),
    });
    assert.equal(put.status, 200, await put.text());
    const [trace, ...more] = await tracesOf(first, 'fan-when-hot');
    assert.equal(more.length, 0, 'one trace: the countdown');
    assert.equal(trace.status, 'cancelled');
    assert.match(trace.error ?? '', CHANGED);
    assert.equal(trace.trigger.ts, matchedAt, 'its trigger is the state change that started the countdown');
    assert.equal(trace.startedAt, clock.now(), 'it ended when the rule changed');
    assert.notEqual(trace.finishedAt, null);
    assert.deepEqual(trace.steps, []);
    const runEvent = first.events.find((e) => e.type === 'automation.run' && e.data?.trace === trace.id);
    assert.ok(runEvent, 'its end is announced as any run end is');
    assert.deepEqual(await first.hub.store.listTimers('automations'), [], 'its row is gone');

    // The new rule's own `for:` starts only at its next match: the old countdown's end passes by.
    await advance(clock, 15 * MIN, 5000);
    assert.equal(first.ruleCommands('fan-when-hot').length, 0);
    await first.hub.stop();

    const clock2 = new VirtualClock(clock.now());
    const second = await startTestHub({ clock: clock2, dataDir: first.dataDir });
    hubs.push(second);
    await advance(clock2, 15 * MIN, 5000);
    assert.equal(second.ruleCommands('fan-when-hot').length, 0, 'nothing fires after a restart');
    assert.equal((await tracesOf(second, 'fan-when-hot')).length, 1, 'and no trace is added');
  });

  it('ends the countdown of a deleted rule in a cancelled trace, and leaves no row', async () => {
    const clock = new VirtualClock(T0);
    const t = await startTestHub({ clock });
    hubs.push(t);
    await postRule(t, FAN_RULE);
    await startCountdown(t, clock);
    assert.equal((await t.api('/api/automations/fan-when-hot', { method: 'DELETE' })).status, 204);
    const traces = await storedTraces(t, clock, 'fan-when-hot');
    assert.deepEqual(
      traces.map((trace) => trace.status),
      ['cancelled'],
    );
    assert.match(traces[0].error ?? '', CHANGED);
    assert.deepEqual(await t.hub.store.listTimers('automations'), []);
    await advance(clock, 15 * MIN, 5000);
    assert.equal(t.ruleCommands('fan-when-hot').length, 0);
  });

  it("keeps the countdown of a rule whose text did not change when its file is read again, and ends a changed one's", async () => {
    const clock = new VirtualClock(T0);
    const t = await startTestHub({ clock });
    hubs.push(t);
    const other = {
      id: 'other',
      triggers: [{ trigger: 'time', at: '23:00' }],
      actions: [{ action: 'notify', message: 'late' }],
    };
    const file = (others: Record<string, unknown>, fan = FAN_RULE) =>
      [YAML.stringify(fan), YAML.stringify(others)].join('---\n');
    await writeRuleFile(t, 'rules.yaml', file(other));
    await startCountdown(t, clock);

    // Another rule of the file changed, this one did not: its countdown goes on, and fires at T0 + 11 min.
    await writeRuleFile(t, 'rules.yaml', file({ ...other, actions: [{ action: 'notify', message: 'later' }] }));
    assert.equal((await tracesOf(t, 'fan-when-hot')).length, 0, 'nothing ended');
    await advance(clock, 8 * MIN + 2000, 500);
    assert.equal(t.ruleCommands('fan-when-hot').length, 1, 'the countdown ran its course');
    assert.deepEqual(
      (await tracesOf(t, 'fan-when-hot')).map((trace) => trace.status),
      ['finished'],
    );

    // Down and up again, then the rule's own text changes: that countdown ends, cancelled.
    t.set('living-room-sensor', 'sensor.temperature', 22);
    t.set('living-room-sensor', 'sensor.temperature', 27);
    await advance(clock, MIN);
    await writeRuleFile(t, 'rules.yaml', file(other, { ...FAN_RULE, name: 'Fan on when it is hot' }));
    const traces = await tracesOf(t, 'fan-when-hot');
    assert.deepEqual(
      traces.map((trace) => trace.status),
      ['finished', 'cancelled'],
    );
    assert.match(traces[1].error ?? '', CHANGED);
    assert.deepEqual(await t.hub.store.listTimers('automations'), []);
    await advance(clock, 15 * MIN, 5000);
    assert.equal(t.ruleCommands('fan-when-hot').length, 1, 'no second run');
  });
});

describe('automations: a restart that finds a rule changed while the hub was down', () => {
  it('ends its waiting run and its countdown in cancelled traces, rather than leaving them waiting for good', async () => {
    const clock = new VirtualClock(T0);
    const first = await startTestHub({ clock });
    const humid = {
      id: 'fan-for-a-while',
      triggers: [{ trigger: 'numeric_state', thing: 'living-room-sensor', property: 'sensor.humidity', above: 60 }],
      actions: [
        { action: 'turn_on', thing: 'living-room-fan' },
        { delay: '20m' },
        { action: 'turn_off', thing: 'living-room-fan' },
      ],
    };
    await writeRuleFile(first, 'rules.yaml', [YAML.stringify(humid), FAN_RULE_YAML].join('---\n'));
    first.set('living-room-sensor', 'sensor.humidity', 40);
    first.set('living-room-sensor', 'sensor.humidity', 70);
    await startCountdown(first, clock, 2);
    const [waiting] = await tracesOf(first, 'fan-for-a-while');
    assert.equal(waiting.status, 'waiting');
    await first.hub.stop();

    // Both rules edited while the hub was down.
    const changed = [
      YAML.stringify({ ...humid, actions: [...humid.actions, { action: 'notify', message: 'done' }] }),
      YAML.stringify({ ...FAN_RULE, name: 'Fan on when it is hot' }),
    ].join('---\n');
    await writeFile(join(first.dataDir, 'automations', 'rules.yaml'), changed);
    const clock2 = new VirtualClock(clock.now() + MIN);
    const second = await startTestHub({ clock: clock2, dataDir: first.dataDir });
    try {
      const [run] = await tracesOf(second, 'fan-for-a-while');
      assert.equal(run.id, waiting.id, 'the same trace');
      assert.equal(run.status, 'cancelled');
      assert.equal(run.error, 'the rule was changed or removed while the hub was down');
      assert.equal(run.finishedAt, clock2.now());
      assert.deepEqual(
        run.steps.map((step) => [step.action, step.status]),
        [
          ['turn_on', 'ok'],
          ['delay', 'stopped'],
        ],
      );
      const [countdown] = await tracesOf(second, 'fan-when-hot');
      assert.equal(countdown.status, 'cancelled');
      assert.equal(
        countdown.error,
        'the rule was changed or removed while the hub was down before its trigger had held for 10m (for:)',
      );
      assert.deepEqual(await second.hub.store.listTimers('automations'), []);
      await advance(clock2, 30 * MIN, 5000);
      assert.equal(second.ruleCommands('fan-for-a-while').length, 0, 'the old run does not go on');
      assert.equal(second.ruleCommands('fan-when-hot').length, 0);
    } finally {
      await second.hub.stop();
    }
  });
});
