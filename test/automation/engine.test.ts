import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import YAML from 'yaml';
import { OVERDUE_GRACE_MS, retentionAge } from '../../src/automation/engine.ts';
import type { Trace } from '../../src/automation/index.ts';
import { liveWorld } from '../../src/automation/live/world.ts';
import { MAX_NESTED_RUNS } from '../../src/automation/runtime/runtime.ts';
import { VirtualClock } from '../../src/core/clock.ts';
import type { HubServices } from '../../src/core/hub.ts';
import { createLogger } from '../../src/core/log.ts';
import { openStore } from '../../src/store/index.ts';
import { eventually, tempDir } from '../helpers/hub-process.ts';
import { FAN_RULE_YAML, HOME, postRule, startTestHub, type TestHub, writeRuleFile } from './helpers.ts';

const T0 = new Date(2026, 5, 1, 8, 0).getTime();
const MIN = 60_000;

/** Advances the virtual clock in small steps so real MQTT and store I/O keeps up with it. */
async function advance(clock: VirtualClock, ms: number, step = 1000): Promise<void> {
  for (let done = 0; done < ms; done += step) await clock.advance(Math.min(step, ms - done));
}

/** A hub from T0 whose fan rule's 10-minute `for:` started at T0, `elapsed` ago. */
async function hubWithPendingFan(elapsed: number): Promise<TestHub> {
  const clock = new VirtualClock(T0);
  const hub = await startTestHub({ clock });
  await writeRuleFile(hub, 'fan.yaml', FAN_RULE_YAML);
  hub.set('household', 'presence.anyone_home', true);
  hub.set('living-room-sensor', 'sensor.temperature', 22);
  hub.set('living-room-sensor', 'sensor.temperature', 26);
  await advance(clock, elapsed);
  return hub;
}

describe('automations: the contract rule on the virtual clock', () => {
  const hubs: TestHub[] = [];
  after(async () => {
    for (const h of hubs) await h.hub.stop();
  });

  it('fires after 10 minutes above 25 °C with someone home, and not when it drops back', async () => {
    const clock = new VirtualClock(T0);
    const t = await startTestHub({ clock, dataDir: undefined });
    hubs.push(t);
    await writeRuleFile(t, 'fan.yaml', FAN_RULE_YAML);
    assert.equal(t.engine.get(HOME, 'fan-when-hot').rule?.enabled, true);

    t.set('household', 'presence.anyone_home', true);
    t.set('living-room-sensor', 'sensor.temperature', 22);
    t.set('living-room-sensor', 'sensor.temperature', 26);
    await advance(clock, 9 * MIN);
    assert.equal(t.ruleCommands('fan-when-hot').length, 0, 'nothing before 10 minutes');
    t.set('living-room-sensor', 'sensor.temperature', 27);
    await advance(clock, MIN + 1000);
    const commands = t.ruleCommands('fan-when-hot');
    assert.equal(commands.length, 1, 'fires once at 10 minutes');
    assert.equal(commands[0].thing, 'living-room-fan');
    assert.equal(commands[0].action, 'turn_on');
    const trigger = t.events.find((e) => e.type === 'state' && e.thing === 'living-room-sensor' && e.to === 26);
    assert.equal(commands[0].cause, trigger?.id, 'the command is caused by the state change that started the wait');
    await advance(clock, 100, 20);
    assert.equal(t.hub.twins.value(HOME, 'living-room-fan', 'switch.on'), true);

    // Back below, up again, and down within the 10 minutes: no second run.
    t.set('living-room-sensor', 'sensor.temperature', 22);
    t.set('living-room-sensor', 'sensor.temperature', 26);
    await advance(clock, 5 * MIN);
    t.set('living-room-sensor', 'sensor.temperature', 24);
    await advance(clock, 15 * MIN, 5000);
    assert.equal(t.ruleCommands('fan-when-hot').length, 1, 'a drop within 10 minutes cancels the wait');
    assert.deepEqual(await t.hub.store.listTimers('automations'), [], 'no timer is left behind');
  });

  it('does not fire when nobody is home, and the trace says which condition failed', async () => {
    const clock = new VirtualClock(T0);
    const t = await startTestHub({ clock });
    hubs.push(t);
    const created = await t.api('/api/automations', {
      method: 'POST',
      body: JSON.stringify({ yaml: undefined, ...parseYaml(FAN_RULE_YAML) }),
    });
    assert.equal(created.status, 201);
    t.set('household', 'presence.anyone_home', false);
    t.set('living-room-sensor', 'sensor.temperature', 20);
    t.set('living-room-sensor', 'sensor.temperature', 30);
    await advance(clock, 11 * MIN, 5000);
    assert.equal(t.ruleCommands('fan-when-hot').length, 0);
    const traces = (await (await t.api('/api/automations/fan-when-hot/traces')).json()) as Array<{
      status: string;
      conditions: Array<{ result: boolean; detail: string }>;
    }>;
    assert.equal(traces[0].status, 'condition_failed');
    assert.equal(traces[0].conditions[0].result, false);
    assert.match(traces[0].conditions[0].detail, /presence.anyone_home is false/);
    const missing = await t.api('/api/automations/fan-when-hot/traces/trc_000000000000');
    assert.equal(missing.status, 404);
    const { error } = (await missing.json()) as { error: { code: string; message: string } };
    assert.equal(error.code, 'not_found');
    assert.match(error.message, /keeps only its newest 100 traces, none older than 30 days/);
  });
});

describe('automations: how long traces are kept, as a 404 says it', () => {
  it('names the largest whole unit, so a retention under a day is not "0 days"', () => {
    assert.equal(retentionAge(30 * 86_400_000), '30 days');
    assert.equal(retentionAge(86_400_000), '1 day');
    assert.equal(retentionAge(36 * 3_600_000), '36 hours');
    assert.equal(retentionAge(3_600_000), '1 hour');
    assert.equal(retentionAge(90 * 60_000), '90 minutes');
    assert.equal(retentionAge(45_000), '45 seconds');
    assert.equal(retentionAge(1500), '2 seconds');
    assert.equal(retentionAge(200), '200 ms');
  });
});

describe('automations: durable timers across a restart', () => {
  it('resumes a pending for: after a restart and fires once at the right time', async () => {
    const first = await hubWithPendingFan(3 * MIN);
    await first.hub.stop();
    assert.equal(first.ruleCommands('fan-when-hot').length, 0);
    assert.equal((await listTimersOf(first.dataDir)).length, 1, 'the pending for: is stored');

    const clock2 = new VirtualClock(T0 + 3 * MIN);
    const second = await startTestHub({ clock: clock2, dataDir: first.dataDir });
    try {
      await advance(clock2, 6 * MIN + 58_000);
      assert.equal(second.ruleCommands('fan-when-hot').length, 0, 'not before the original deadline');
      await advance(clock2, 3000, 500);
      assert.equal(second.ruleCommands('fan-when-hot').length, 1, 'fires at T0 + 10 min');
      await advance(clock2, 20 * MIN, 10_000);
      assert.equal(second.ruleCommands('fan-when-hot').length, 1, 'and only once');
    } finally {
      await second.hub.stop();
    }
  });

  it('fires a deadline that passed while the hub was down once, just after start, when devices are back', async () => {
    const first = await hubWithPendingFan(2 * MIN);
    await first.hub.stop();

    const clock2 = new VirtualClock(T0 + 45 * MIN);
    const second = await startTestHub({ clock: clock2, dataDir: first.dataDir });
    try {
      await advance(clock2, OVERDUE_GRACE_MS - 500, 100);
      assert.equal(second.ruleCommands('fan-when-hot').length, 0, 'not before devices have had time to reconnect');
      await advance(clock2, 1000, 100);
      await eventually(() => second.ruleCommands('fan-when-hot').length === 1, { what: 'the overdue run at start' });
      await advance(second.hub.clock as VirtualClock, 30 * MIN, 10_000);
      assert.equal(second.ruleCommands('fan-when-hot').length, 1, 'exactly once');
    } finally {
      await second.hub.stop();
    }
  });

  it('takes a deadline that falls in the first moments after start as overdue: it fires once devices are back', async () => {
    const first = await hubWithPendingFan(2 * MIN);
    await first.hub.stop();

    // Back one second before the for: ends (T0 + 10 min): fired then, its command would meet a
    // broker no device has reconnected to yet.
    const clock2 = new VirtualClock(T0 + 10 * MIN - 1000);
    const second = await startTestHub({ clock: clock2, dataDir: first.dataDir });
    try {
      await advance(clock2, OVERDUE_GRACE_MS - 500, 100);
      assert.equal(second.ruleCommands('fan-when-hot').length, 0, 'not at its deadline, a second after start');
      await advance(clock2, 1000, 100);
      await eventually(() => second.ruleCommands('fan-when-hot').length === 1, { what: 'the run at the grace' });
      await advance(second.hub.clock as VirtualClock, 30 * MIN, 10_000);
      assert.equal(second.ruleCommands('fan-when-hot').length, 1, 'exactly once');
    } finally {
      await second.hub.stop();
    }
  });

  it('resumes a delay in the middle of a run, keeping the same trace', async () => {
    const clock1 = new VirtualClock(T0);
    const first = await startTestHub({ clock: clock1 });
    const rule = {
      id: 'fan-for-a-while',
      triggers: [{ trigger: 'state', thing: 'living-room-sensor', property: 'sensor.humidity' }],
      actions: [
        { action: 'turn_on', thing: 'living-room-fan' },
        { delay: '20m' },
        { action: 'turn_off', thing: 'living-room-fan' },
      ],
    };
    assert.equal((await first.api('/api/automations', { method: 'POST', body: JSON.stringify(rule) })).status, 201);
    first.set('living-room-sensor', 'sensor.humidity', 70);
    await advance(clock1, 5 * MIN);
    await first.hub.stop();

    const clock2 = new VirtualClock(T0 + 5 * MIN);
    const second = await startTestHub({ clock: clock2, dataDir: first.dataDir });
    try {
      await advance(clock2, 14 * MIN);
      assert.equal(second.ruleCommands('fan-for-a-while').length, 0);
      await advance(clock2, 2 * MIN);
      const commands = second.ruleCommands('fan-for-a-while');
      assert.deepEqual(
        commands.map((c) => c.action),
        ['turn_off'],
      );
      await advance(clock2, 1000, 100);
      const traces = await second.engine.traces(HOME, 'fan-for-a-while');
      assert.equal(traces.length, 1, 'one run, one trace, across the restart');
      assert.equal(traces[0].status, 'finished');
      assert.deepEqual(
        traces[0].steps.map((s) => s.action),
        ['turn_on', 'delay', 'turn_off'],
      );
    } finally {
      await second.hub.stop();
    }
  });
});

describe('automations: a queued rule across a restart', () => {
  it('keeps the triggers waiting their turn, and runs each once, in order', async () => {
    const clock1 = new VirtualClock(T0);
    const first = await startTestHub({ clock: clock1 });
    const rule = {
      id: 'fan-in-turn',
      mode: 'queued',
      max: 5,
      triggers: [{ trigger: 'state', thing: 'living-room-sensor', property: 'sensor.humidity' }],
      actions: [
        { action: 'turn_on', thing: 'living-room-fan' },
        { delay: '10m' },
        { action: 'turn_off', thing: 'living-room-fan' },
      ],
    };
    assert.equal((await first.api('/api/automations', { method: 'POST', body: JSON.stringify(rule) })).status, 201);
    // Three triggers: the first runs (and waits), two wait their turn.
    for (const humidity of [70, 71, 72]) {
      first.set('living-room-sensor', 'sensor.humidity', humidity);
      await advance(clock1, MIN);
    }
    assert.equal(first.ruleCommands('fan-in-turn').length, 1, 'only the first has run yet');
    await first.hub.stop();
    assert.equal((await listTimersOf(first.dataDir)).length, 3, 'the running one and the two queued are stored');

    const clock2 = new VirtualClock(T0 + 3 * MIN);
    const second = await startTestHub({ clock: clock2, dataDir: first.dataDir });
    try {
      await advance(clock2, 40 * MIN, 10_000);
      assert.deepEqual(
        second.ruleCommands('fan-in-turn').map((c) => c.action),
        ['turn_off', 'turn_on', 'turn_off', 'turn_on', 'turn_off'],
        'the first run ends, then each queued trigger runs in turn',
      );
      const traces = await second.engine.traces(HOME, 'fan-in-turn');
      assert.deepEqual(traces.map((t) => [t.status, (t.trigger as { to?: unknown }).to]).reverse(), [
        ['finished', 70],
        ['finished', 71],
        ['finished', 72],
      ]);
      // Those that waited keep when they were queued (before the restart) and say when they started.
      const [, second71, third72] = [...traces].reverse();
      assert.deepEqual(
        [second71, third72].map((t) => t.queuedAt),
        [T0 + MIN, T0 + 2 * MIN],
      );
      assert.ok(second71.startedAt > T0 + 3 * MIN && third72.startedAt >= (second71.finishedAt ?? Infinity));
      assert.equal((await listTimersOf(first.dataDir)).length, 0, 'nothing left stored');
    } finally {
      await second.hub.stop();
    }
  });
});

describe('automations: a queued rule restarted after its run was due', () => {
  it('keeps a trigger that comes in just after the start behind the ones that waited', async () => {
    const clock1 = new VirtualClock(T0);
    const first = await startTestHub({ clock: clock1 });
    const rule = {
      id: 'fan-held',
      mode: 'queued',
      max: 5,
      triggers: [{ trigger: 'state', thing: 'living-room-sensor', property: 'sensor.humidity' }],
      actions: [{ action: 'turn_on', thing: 'living-room-fan' }, { delay: '10m' }],
    };
    assert.equal((await first.api('/api/automations', { method: 'POST', body: JSON.stringify(rule) })).status, 201);
    for (const humidity of [70, 71, 72]) {
      first.set('living-room-sensor', 'sensor.humidity', humidity);
      await advance(clock1, MIN);
    }
    await first.hub.stop();

    // Down for half an hour: the first run's delay ran out meanwhile.
    const clock2 = new VirtualClock(T0 + 33 * MIN);
    const second = await startTestHub({ clock: clock2, dataDir: first.dataDir });
    try {
      await advance(clock2, 1000, 100);
      // A new trigger before the hub takes up what waited (OVERDUE_GRACE_MS after the start).
      second.set('living-room-sensor', 'sensor.humidity', 73);
      await advance(clock2, 1000, 100);
      assert.equal(second.ruleCommands('fan-held').length, 0, 'the new trigger waits its turn');
      await advance(clock2, 40 * MIN, 10_000);
      const traces = await second.engine.traces(HOME, 'fan-held');
      assert.deepEqual(
        traces.map((t) => (t.trigger as { to?: unknown }).to).reverse(),
        [70, 71, 72, 73],
        'in the order they came',
      );
    } finally {
      await second.hub.stop();
    }
  });
});

describe('automations: a queued rule changed while triggers wait', () => {
  it('ends each waiting trigger as cancelled, with the reason, and keeps no row of it', async () => {
    const clock = new VirtualClock(T0);
    const t = await startTestHub({ clock });
    try {
      const rule = {
        id: 'fan-queue-edited',
        mode: 'queued',
        max: 5,
        triggers: [{ trigger: 'state', thing: 'living-room-sensor', property: 'sensor.humidity' }],
        actions: [{ action: 'turn_on', thing: 'living-room-fan' }, { delay: '10m' }],
      };
      assert.equal((await t.api('/api/automations', { method: 'POST', body: JSON.stringify(rule) })).status, 201);
      for (const humidity of [70, 71, 72]) {
        t.set('living-room-sensor', 'sensor.humidity', humidity);
        await advance(clock, MIN);
      }
      const edited = await t.api('/api/automations/fan-queue-edited', {
        method: 'PUT',
        body: JSON.stringify({ ...rule, name: 'Fan in turn' }),
      });
      assert.equal(edited.status, 200);
      await advance(clock, 1000, 100);
      await t.hub.history.flush();
      const traces = await t.engine.traces(HOME, 'fan-queue-edited');
      const cancelled = traces.filter((tr) => tr.status === 'cancelled');
      assert.equal(cancelled.length, 3, JSON.stringify(traces.map((tr) => [tr.status, tr.error])));
      assert.equal(cancelled.filter((tr) => /before its turn/.test(tr.error ?? '')).length, 2);
      assert.equal((await listTimersOf(t.dataDir)).length, 0, 'no row left of the queued triggers');
    } finally {
      await t.hub.stop();
    }
  });
});

describe('automations: modes', () => {
  // `max` counts runs of queued and parallel rules only (it is refused on the others).
  const cases: Array<{ mode: string; max?: number; expect: string[] }> = [
    { mode: 'single', expect: ['finished', 'skipped', 'skipped'] },
    { mode: 'restart', expect: ['cancelled', 'cancelled', 'finished'] },
    { mode: 'queued', max: 2, expect: ['finished', 'finished', 'skipped'] },
    { mode: 'parallel', max: 2, expect: ['finished', 'finished', 'skipped'] },
  ];
  for (const c of cases) {
    const name = c.max === undefined ? c.mode : `${c.mode} with max ${c.max}`;
    it(`${name}: three triggers in a row end as ${c.expect.join(', ')}`, async () => {
      const clock = new VirtualClock(T0);
      const t = await startTestHub({ clock });
      try {
        const rule = {
          id: `mode-${c.mode}`,
          mode: c.mode,
          ...(c.max === undefined ? {} : { max: c.max }),
          triggers: [{ trigger: 'state', thing: 'living-room-sensor', property: 'sensor.humidity' }],
          actions: [{ delay: '1m' }, { action: 'toggle', thing: 'living-room-fan' }],
        };
        assert.equal((await t.api('/api/automations', { method: 'POST', body: JSON.stringify(rule) })).status, 201);
        for (const value of [40, 41, 42]) {
          t.set('living-room-sensor', 'sensor.humidity', value);
          await advance(clock, 1000);
        }
        await advance(clock, 5 * MIN, 5000);
        // In the order the triggers came in: a queued run's start is when its turn came.
        const traces = (await t.engine.traces(HOME, rule.id)).sort(
          (a, b) => (a.queuedAt ?? a.startedAt) - (b.queuedAt ?? b.startedAt),
        );
        assert.deepEqual(
          traces.map((tr) => tr.status),
          c.expect,
        );
        const ran = c.expect.filter((s) => s === 'finished').length;
        assert.equal(t.ruleCommands(rule.id).length, ran, 'each finished run sent its command');
      } finally {
        await t.hub.stop();
      }
    });
  }
});

describe('automations: runs that finish at once', () => {
  /** A fresh test hub on a virtual clock for one test, stopped however the test ends. */
  async function withTestHub(test: (t: TestHub, clock: VirtualClock) => Promise<void>): Promise<void> {
    const clock = new VirtualClock(T0);
    const t = await startTestHub({ clock });
    try {
      await test(t, clock);
    } finally {
      await t.hub.stop();
    }
  }
  /** The messages of every `notify` so far. */
  const notified = (t: TestHub) =>
    t.events.flatMap((e) => (e.type === 'automation.notify' && 'data' in e ? [e.data?.message] : []));

  it('single: reports that arrive in one turn each run a rule that only sends a command', async () => {
    await withTestHub(async (t, clock) => {
      const rule = {
        id: 'burst',
        mode: 'single',
        triggers: [{ trigger: 'state', thing: 'living-room-sensor', property: 'sensor.humidity' }],
        actions: [{ action: 'toggle', thing: 'living-room-fan' }],
      };
      assert.equal((await t.api('/api/automations', { method: 'POST', body: JSON.stringify(rule) })).status, 201);
      // Three reports handled one after another in one turn, as three reports in one MQTT read are:
      // each run ends before the next report, so none finds the rule still "running".
      for (const value of [40, 41, 42]) t.set('living-room-sensor', 'sensor.humidity', value);
      const ended = t.events.filter((e) => e.type === 'automation.run' && e.data?.rule === rule.id);
      assert.equal(ended.length, 3, 'every run ended within the turn');
      await advance(clock, 1000);
      const traces = (await t.engine.traces(HOME, rule.id)).reverse();
      assert.deepEqual(
        traces.map((tr) => tr.status),
        ['finished', 'finished', 'finished'],
      );
      assert.equal(t.ruleCommands(rule.id).length, 3);
    });
  });

  it('a wait reached at once waits for the next event, not the one that started the run', async () => {
    await withTestHub(async (t, clock) => {
      await postRule(t, {
        id: 'until-next',
        triggers: [{ trigger: 'state', thing: 'living-room-sensor', property: 'sensor.humidity' }],
        actions: [
          { action: 'toggle', thing: 'living-room-fan' },
          {
            wait_for_trigger: [{ trigger: 'state', thing: 'living-room-sensor', property: 'sensor.humidity' }],
            timeout: '5m',
            continue_on_timeout: false,
          },
          { action: 'notify', message: 'humidity now {{ wait.trigger.to }}' },
        ],
      });
      t.set('living-room-sensor', 'sensor.humidity', 40);
      await advance(clock, 1000);
      // The waiting trace is written once the run's timer is stored (real store I/O).
      const waiting = await eventually(
        async () => {
          const traces = await t.engine.traces(HOME, 'until-next');
          return traces.length > 0 && traces.every((tr) => tr.status !== 'running') && traces;
        },
        { what: 'the run to be stored' },
      );
      assert.deepEqual(
        waiting.map((tr) => tr.status),
        ['waiting'],
        'the run waits for the next change',
      );
      assert.deepEqual(notified(t), [], 'nothing after the wait has run');
      t.set('living-room-sensor', 'sensor.humidity', 41);
      await advance(clock, 1000);
      assert.deepEqual(notified(t), ['humidity now 41']);
    });
  });

  it('two rules that start each other by their ends stop after one round rather than loop', async () => {
    await withTestHub(async (t, clock) => {
      const ended = (rule: string) => ({ trigger: 'event', event_type: 'automation.run', data: { rule } });
      await postRule(t, {
        id: 'ping',
        triggers: [{ trigger: 'state', thing: 'living-room-sensor', property: 'sensor.humidity' }, ended('pong')],
        actions: [{ action: 'toggle', thing: 'living-room-fan' }],
      });
      await postRule(t, {
        id: 'pong',
        triggers: [ended('ping')],
        actions: [{ action: 'toggle', thing: 'hall-light' }],
      });
      t.set('living-room-sensor', 'sensor.humidity', 40);
      await advance(clock, 1000);
      // ping's end starts pong, whose end finds ping still announcing its own: mode single skips.
      assert.deepEqual(
        (await t.engine.traces(HOME, 'ping')).reverse().map((tr) => tr.status),
        ['finished', 'skipped'],
      );
      assert.deepEqual(
        (await t.engine.traces(HOME, 'pong')).map((tr) => tr.status),
        ['finished'],
      );
      assert.equal(t.ruleCommands('ping').length + t.ruleCommands('pong').length, 2);
    });
  });

  it('a chain of rules, each started by the end of the one before, runs to its end however long', async () => {
    const length = 40; // deeper than the runs nested in one turn, so part of it goes on in later turns
    await withTestHub(async (t, clock) => {
      for (let k = 0; k < length; k++) {
        const trigger =
          k === 0
            ? { trigger: 'state', thing: 'living-room-sensor', property: 'sensor.humidity' }
            : { trigger: 'event', event_type: 'automation.run', data: { rule: `chain-${k - 1}`, status: 'finished' } };
        await postRule(t, {
          id: `chain-${k}`,
          triggers: [trigger],
          actions: [{ action: 'notify', message: `link ${k}` }],
        });
      }
      t.set('living-room-sensor', 'sensor.humidity', 40);
      // Links start inside the previous one's end, to a bounded depth; the rest go on in later turns.
      const inThisTurn = notified(t).length;
      assert.equal(inThisTurn, MAX_NESTED_RUNS, "links that ran inside the report's handling");
      await advance(clock, 1000);
      assert.deepEqual(
        notified(t),
        Array.from({ length }, (_, k) => `link ${k}`),
      );
      for (let k = 0; k < length; k++) {
        const traces = await t.engine.traces(HOME, `chain-${k}`);
        assert.deepEqual(
          traces.map((tr) => tr.status),
          ['finished'],
          `chain-${k}`,
        );
      }
    });
  });
});

describe('automations: trace retention for a busy rule', () => {
  /** A live world over a real SQLite store, recording every trace id handed to the store. */
  async function tracesWorld(perRule: number) {
    const store = await openStore({ kind: 'sqlite', file: join(await tempDir('triad-traces-'), 'triad.db') });
    const clock = new VirtualClock(T0);
    const written: string[] = [];
    const saveTraces = store.saveTraces.bind(store);
    store.saveTraces = async (traces) => {
      written.push(...traces.map((trace) => trace.id));
      return saveTraces(traces);
    };
    const saveTrace = store.saveTrace.bind(store);
    store.saveTrace = async (trace) => {
      written.push(trace.id);
      return saveTrace(trace);
    };
    const hub = { store, clock, log: createLogger({ level: 'silent' }) } as unknown as HubServices;
    const world = liveWorld(hub, {
      retention: { perRule, maxAgeMs: 86_400_000 },
      locations: new Map(),
      webhookTimeoutMs: 1000,
    });
    /** Lets the trace write window (250 ms) pass and waits for its write. */
    const settle = async () => {
      await clock.advance(300);
      await world.traces.flush?.();
    };
    return { store, world, written, settle };
  }

  /** A finished run's trace that started n ms after T0. */
  const run = (n: number): Trace => ({
    id: `trc_${n}`,
    householdId: HOME,
    rule: 'busy',
    ruleVersion: 'v1',
    status: 'finished',
    startedAt: T0 + n,
    finishedAt: T0 + n,
    trigger: { type: 'state', id: 't0', cause: null, ts: T0, description: 'hot' } as unknown as Trace['trigger'],
    conditions: [],
    steps: [],
    error: null,
    dryRun: false,
  });

  it('never writes a trace retention let go, not even a later copy (its command confirmed late)', async () => {
    const { store, world, written, settle } = await tracesWorld(2);
    try {
      const runs = [1, 2, 3].map(run);
      // Three finished runs in one window: retention keeps two, so the oldest is let go.
      for (const trace of runs) await world.traces.save(trace);
      await settle();
      assert.deepEqual([...written].sort(), ['trc_2', 'trc_3']);
      // Later, the runs' commands are confirmed and each trace is offered again, in a window of
      // its own: the kept one is written again, the let-go one still is not.
      runs[0].error = 'confirmed late';
      runs[2].error = 'confirmed late';
      await world.traces.save(runs[0]);
      await world.traces.save(runs[2]);
      await settle();
      assert.deepEqual(written, ['trc_2', 'trc_3', 'trc_3']);
      const stored = await store.listTraces({ householdId: HOME, rule: 'busy', limit: 10 });
      assert.deepEqual(stored.map((trace) => trace.id).sort(), ['trc_2', 'trc_3']);
      assert.equal(stored.find((trace) => trace.id === 'trc_3')?.body.error, 'confirmed late');
    } finally {
      await store.close();
    }
  });

  it('lets go of the run that started first, whatever order the runs ended in', async () => {
    const { store, world, written, settle } = await tracesWorld(2);
    try {
      const runs = new Map([2, 3, 1, 4].map((n) => [n, run(n)]));
      // Run 1 ends after runs 2 and 3 (it waited longer on its command), run 4 after it.
      for (const trace of runs.values()) await world.traces.save(trace);
      await settle();
      assert.deepEqual([...written].sort(), ['trc_3', 'trc_4']);
      for (const n of [1, 2]) await world.traces.save(runs.get(n) as Trace);
      await settle();
      assert.deepEqual([...written].sort(), ['trc_3', 'trc_4'], 'the let-go runs stay unwritten');
      // The next window starts afresh, in order: the oldest of it is let go.
      for (const n of [5, 6, 7]) await world.traces.save(run(n));
      await settle();
      assert.deepEqual(written.slice(2).sort(), ['trc_6', 'trc_7']);
    } finally {
      await store.close();
    }
  });
});

function parseYaml(text: string): Record<string, unknown> {
  // The API takes the same rule as JSON; the yaml package is the hub's own parser.
  return YAML.parse(text) as Record<string, unknown>;
}

async function listTimersOf(dataDir: string) {
  const store = await openStore({ kind: 'sqlite', file: join(dataDir, 'triad.db') });
  try {
    return await store.listTimers('automations');
  } finally {
    await store.close();
  }
}
