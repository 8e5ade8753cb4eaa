import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import mqtt from 'mqtt';
import type { Trace } from '../../src/automation/index.ts';
import { VirtualClock } from '../../src/core/clock.ts';
import { eventually } from '../helpers/hub-process.ts';
import { advance, HOME, MIN, postRule, startTestHub, type TestHub, tracesOf } from './helpers.ts';

const T0 = new Date(2026, 5, 1, 8, 0).getTime();

describe('automations: a queued run’s trace says when it started and when it was queued', () => {
  const hubs: TestHub[] = [];
  after(async () => {
    for (const h of hubs) await h.hub.stop();
  });

  it('startedAt is when its turn came, queuedAt when its trigger came in; a run that did not wait has no queuedAt', async () => {
    const clock = new VirtualClock(T0);
    const t = await startTestHub({ clock });
    hubs.push(t);
    const rule = {
      id: 'queued-fan',
      mode: 'queued',
      max: 5,
      triggers: [{ trigger: 'state', thing: 'living-room-sensor', property: 'sensor.humidity' }],
      actions: [{ delay: '1m' }, { action: 'toggle', thing: 'living-room-fan' }],
    };
    await postRule(t, rule);
    const came: number[] = [];
    for (const value of [40, 41, 42]) {
      came.push(clock.now());
      t.set('living-room-sensor', 'sensor.humidity', value);
      await advance(clock, 1000);
    }
    await advance(clock, 4 * MIN, 1000);
    const traces = await tracesOf(t, rule.id);
    assert.deepEqual(
      traces.map((tr) => tr.status),
      ['finished', 'finished', 'finished'],
    );
    const [first, second, third] = traces;
    assert.equal(first.startedAt, came[0]);
    assert.equal(first.queuedAt, undefined, 'the first run did not wait');
    assert.equal(second.queuedAt, came[1]);
    assert.equal(second.startedAt, first.finishedAt, 'the second started when the first ended');
    assert.equal(third.queuedAt, came[2]);
    assert.equal(third.startedAt, second.finishedAt);
    assert.equal(third.steps[0].at, third.startedAt, 'its first step is at its start');
    // One trace read alone says the same.
    const one = (await (await t.api(`/api/automations/${rule.id}/traces/${second.id}`)).json()) as Trace;
    assert.deepEqual([one.queuedAt, one.startedAt], [second.queuedAt, second.startedAt]);
  });

  it('a trigger dropped before its turn (the rule changed) keeps when it was queued', async () => {
    const clock = new VirtualClock(T0);
    const t = await startTestHub({ clock });
    hubs.push(t);
    const rule = {
      id: 'queued-edit',
      mode: 'queued',
      triggers: [{ trigger: 'state', thing: 'living-room-sensor', property: 'sensor.humidity' }],
      actions: [{ delay: '5m' }, { action: 'toggle', thing: 'living-room-fan' }],
    };
    await postRule(t, rule);
    t.set('living-room-sensor', 'sensor.humidity', 40);
    await advance(clock, 1000);
    const queuedAt = clock.now();
    t.set('living-room-sensor', 'sensor.humidity', 41);
    await advance(clock, MIN);
    const changedAt = clock.now();
    const edited = await t.api(`/api/automations/${rule.id}`, {
      method: 'PUT',
      body: JSON.stringify({ ...rule, name: 'Edited' }),
    });
    assert.equal(edited.status, 200);
    await advance(clock, 1000);
    const dropped = (await tracesOf(t, rule.id)).find((tr) => /before its turn/.test(tr.error ?? ''));
    assert.ok(dropped);
    assert.equal(dropped.status, 'cancelled');
    assert.equal(dropped.queuedAt, queuedAt);
    assert.equal(dropped.startedAt, changedAt, 'it never started: its start is when it was dropped');
    assert.equal(dropped.finishedAt, changedAt);
    assert.equal(HOME, dropped.householdId);
  });
});

interface EventView {
  id: string;
  type: string;
  ts: string;
  cause?: string | null;
  data?: Record<string, unknown>;
}

/** The event a trace's trigger names as its cause, found the way a user would: in GET /api/events. */
async function causeOf(t: TestHub, trace: Trace): Promise<EventView | undefined> {
  const response = await t.api('/api/events?limit=10000');
  assert.equal(response.status, 200);
  return ((await response.json()) as EventView[]).find((e) => e.id === trace.trigger.cause);
}

describe('automations: a trace’s trigger leads back to an event', () => {
  const hubs: TestHub[] = [];
  after(async () => {
    for (const h of hubs) await h.hub.stop();
  });
  const notify = [{ action: 'notify', message: 'ran' }];

  it('webhook: the cause is an automation.triggered event naming the rule, with the body summed up, passwords hidden', async () => {
    const t = await startTestHub({ clock: new VirtualClock(T0) });
    hubs.push(t);
    await postRule(t, {
      id: 'gate-button',
      triggers: [{ id: 'pressed', trigger: 'webhook', webhook_id: 'gate-button-5c1e0a' }],
      actions: notify,
    });
    const body = { pressed_by: 'Ben', password: 'hunter2', note: 'x'.repeat(1000) };
    const fired = await t.api('/api/automations/webhooks/gate-button-5c1e0a', {
      method: 'POST',
      body: JSON.stringify(body),
    });
    assert.equal(fired.status, 200);
    const [trace] = await tracesOf(t, 'gate-button');
    assert.equal(trace.status, 'finished');
    const event = await causeOf(t, trace);
    assert.ok(event, `an event with the trace's cause ${trace.trigger.cause}`);
    assert.equal(event.type, 'automation.triggered');
    assert.equal(event.ts, new Date(trace.trigger.ts).toISOString());
    const data = event.data ?? {};
    assert.deepEqual([data.rule, data.trigger, data.kind], ['gate-button', 'pressed', 'webhook']);
    const payload = String(data.payload);
    assert.match(payload, /^\{"pressed_by":"Ben","password":"\*\*\*","note":"xxx/);
    assert.ok(!payload.includes('hunter2'), 'no password in the event');
    assert.ok(payload.length <= 257, `bounded: ${payload.length} characters`);
    // The run's own end names the same cause, and the type can be asked for by name.
    const typed = (await (await t.api('/api/events?type=automation.triggered')).json()) as EventView[];
    assert.deepEqual(
      typed.map((e) => e.id),
      [event.id],
    );
    const runs = (await (await t.api('/api/events?type=automation.run')).json()) as EventView[];
    assert.deepEqual(
      runs.map((e) => e.cause),
      [event.id],
    );
  });

  it('mqtt: a real publish leads to an event with its topic and payload', async () => {
    const t = await startTestHub({ clock: new VirtualClock(T0) });
    hubs.push(t);
    const topic = `trace-links/${process.pid}/doorbell`;
    await postRule(t, { id: 'doorbell-cause', triggers: [{ trigger: 'mqtt', topic }], actions: notify });
    const client = await mqtt.connectAsync(t.hub.mqttUrl, { clientId: `trace-links-${process.pid}` });
    try {
      await client.publishAsync(topic, 'ring token=abc123', { qos: 1 });
    } finally {
      await client.endAsync();
    }
    const [trace] = await eventually(async () => {
      const traces = await tracesOf(t, 'doorbell-cause');
      return traces.length === 1 && traces[0].status === 'finished' && traces;
    });
    const event = await causeOf(t, trace);
    assert.ok(event, `an event with the trace's cause ${trace.trigger.cause}`);
    assert.equal(event.type, 'automation.triggered');
    assert.deepEqual(
      [event.data?.rule, event.data?.kind, event.data?.topic, event.data?.payload],
      ['doorbell-cause', 'mqtt', topic, 'ring token=***'],
    );
  });

  it('time and cron: each firing’s cause is an event; a state trigger’s stays its state change, with no extra event', async () => {
    const clock = new VirtualClock(T0);
    const t = await startTestHub({ clock });
    hubs.push(t);
    await postRule(t, { id: 'at-half-past', triggers: [{ trigger: 'time', at: '08:30' }], actions: notify });
    await postRule(t, { id: 'every-ten', triggers: [{ trigger: 'cron', pattern: '*/10 * * * *' }], actions: notify });
    await postRule(t, {
      id: 'on-humidity',
      triggers: [{ trigger: 'state', thing: 'living-room-sensor', property: 'sensor.humidity' }],
      actions: notify,
    });
    await advance(clock, 35 * MIN, MIN);
    t.set('living-room-sensor', 'sensor.humidity', 55);
    await advance(clock, 1000);
    const timed = await tracesOf(t, 'at-half-past');
    const cron = await tracesOf(t, 'every-ten');
    assert.equal(timed.length, 1);
    assert.equal(cron.length, 3);
    for (const trace of [...timed, ...cron]) {
      const event = await causeOf(t, trace);
      assert.ok(event, `an event with the trace's cause ${trace.trigger.cause}`);
      assert.deepEqual(
        [event.type, event.data?.rule, event.data?.kind, event.ts],
        ['automation.triggered', trace.rule, trace.trigger.type, new Date(trace.trigger.ts).toISOString()],
      );
    }
    const [state] = await tracesOf(t, 'on-humidity');
    const change = await causeOf(t, state);
    assert.equal(change?.type, 'state');
    const triggered = (await (await t.api('/api/events?type=automation.triggered')).json()) as EventView[];
    assert.equal(triggered.length, 4, 'one event per time or cron firing, none for the state trigger');
  });
});

describe('automations: one trace read alone agrees with the list', () => {
  const hubs: TestHub[] = [];
  after(async () => {
    for (const h of hubs) await h.hub.stop();
  });

  it('a trace retention let go (past the newest kept, or too old) is not found, though the store still holds it', async () => {
    const clock = new VirtualClock(T0);
    const t = await startTestHub({ clock, engine: { retention: { perRule: 5, maxAgeMs: 60 * MIN } } });
    hubs.push(t);
    await postRule(t, {
      id: 'humid',
      triggers: [{ trigger: 'state', thing: 'living-room-sensor', property: 'sensor.humidity' }],
      actions: [{ action: 'turn_on', thing: 'living-room-fan' }],
    });
    for (let i = 0; i < 12; i++) {
      t.set('living-room-sensor', 'sensor.humidity', 40 + i);
      await advance(clock, 1100, 550);
    }
    const listed = (await (await t.api('/api/automations/humid/traces')).json()) as Trace[];
    assert.equal(listed.length, 5);
    const stored = await t.hub.store.listTraces({ householdId: HOME, rule: 'humid', limit: 1000 });
    const letGo = stored.filter((s) => !listed.some((l) => l.id === s.id));
    assert.ok(letGo.length > 0, `the store still holds ${stored.length} (pruned lazily)`);
    for (const trace of letGo) {
      const response = await t.api(`/api/automations/humid/traces/${trace.id}`);
      assert.equal(response.status, 404, trace.id);
      const { error } = (await response.json()) as { error: { code: string; message: string } };
      assert.match(error.message, /keeps only its newest 5 traces, none older than/);
    }
    for (const trace of listed) {
      const response = await t.api(`/api/automations/humid/traces/${trace.id}`);
      assert.equal(response.status, 200);
      assert.equal(((await response.json()) as Trace).id, trace.id);
    }

    // Two hours on, with no run since, nothing is listed, and none is found alone either.
    await advance(clock, 120 * MIN, 10 * MIN);
    assert.deepEqual(await (await t.api('/api/automations/humid/traces')).json(), []);
    assert.ok((await t.hub.store.getTrace(HOME, listed[0].id)) !== null, 'still in the store');
    assert.equal((await t.api(`/api/automations/humid/traces/${listed[0].id}`)).status, 404);
  });
});
