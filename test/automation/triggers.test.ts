import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import mqtt from 'mqtt';
import { VirtualClock } from '../../src/core/clock.ts';
import { eventually } from '../helpers/hub-process.ts';
import { advance, HOME, MIN, postRule, startTestHub, type TestHub, tracesOf } from './helpers.ts';

// Monday 1 June 2026, 08:00 local time: time triggers and conditions are in local time.
const T0 = new Date(2026, 5, 1, 8, 0).getTime();
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;

const notify = (message: string) => [{ action: 'notify', message }];

describe('automations: scheduled triggers on the virtual clock', () => {
  const hubs: TestHub[] = [];
  after(async () => {
    for (const h of hubs) await h.hub.stop();
  });

  it('time: fires at each `at` on the named weekdays only', async () => {
    const clock = new VirtualClock(T0);
    const t = await startTestHub({ clock });
    hubs.push(t);
    await postRule(t, {
      id: 'tuesday-times',
      triggers: [{ trigger: 'time', at: ['08:30', '18:00'], weekday: ['tue'] }],
      actions: notify('time'),
    });
    await advance(clock, 3 * DAY, 10 * MIN);
    const fired = (await tracesOf(t, 'tuesday-times')).map((tr) => tr.trigger.ts);
    assert.deepEqual(fired, [new Date(2026, 5, 2, 8, 30).getTime(), new Date(2026, 5, 2, 18, 0).getTime()]);
  });

  it('cron: fires on every matching minute and nowhere else', async () => {
    const clock = new VirtualClock(T0);
    const t = await startTestHub({ clock });
    hubs.push(t);
    await postRule(t, {
      id: 'quarter-hours',
      triggers: [{ trigger: 'cron', pattern: '*/15 8-9 * * *' }],
      actions: notify('cron'),
    });
    await advance(clock, 3 * HOUR, MIN);
    const fired = (await tracesOf(t, 'quarter-hours')).map((tr) => new Date(tr.trigger.ts));
    // From 08:00 (exclusive) to 11:00: 08:15 … 09:45, and nothing after hour 9.
    assert.deepEqual(
      fired.map((d) => `${d.getHours()}:${String(d.getMinutes()).padStart(2, '0')}`),
      ['8:15', '8:30', '8:45', '9:00', '9:15', '9:30', '9:45'],
    );
  });

  it('sun: fires at sunrise at the household’s location, and an offset moves it by exactly that', async () => {
    const clock = new VirtualClock(T0);
    const t = await startTestHub({ clock });
    hubs.push(t);
    // Berlin. The engine reads the location from the household's settings when a rule is saved.
    await t.hub.store.saveHousehold({
      id: HOME,
      name: 'Home',
      settings: { home: { latitude: 52.52, longitude: 13.405 } },
      createdAt: T0,
    });
    await postRule(t, { id: 'sunrise', triggers: [{ trigger: 'sun', event: 'sunrise' }], actions: notify('up') });
    await postRule(t, {
      id: 'before-sunrise',
      triggers: [{ trigger: 'sun', event: 'sunrise', offset: '-30m' }],
      actions: notify('soon'),
    });
    await advance(clock, DAY, 5 * MIN);
    const [sunrise] = (await tracesOf(t, 'sunrise')).map((tr) => tr.trigger.ts);
    const [early] = (await tracesOf(t, 'before-sunrise')).map((tr) => tr.trigger.ts);
    assert.ok(sunrise, 'the sunrise rule fired');
    // Berlin's sunrise on 2 June is about 02:45 UTC.
    const utc = new Date(sunrise);
    assert.equal(utc.getUTCDate(), 2);
    const minutes = utc.getUTCHours() * 60 + utc.getUTCMinutes();
    assert.ok(minutes >= 2 * 60 + 30 && minutes <= 3 * 60, `sunrise at ${utc.toISOString()}`);
    assert.equal(sunrise - early, 30 * MIN);
  });

  it('sun: a rule is refused when the household has no location', async () => {
    const t = await startTestHub({ clock: new VirtualClock(T0) });
    hubs.push(t);
    const response = await t.api('/api/automations', {
      method: 'POST',
      body: JSON.stringify({ id: 'nowhere', triggers: [{ trigger: 'sun', event: 'sunset' }], actions: notify('x') }),
    });
    assert.equal(response.status, 400);
    const body = (await response.json()) as { error: { message: string } };
    assert.match(body.error.message, /triggers\[0\]\.event: needs the household's location/);
  });
});

describe('automations: zone and event triggers', () => {
  const hubs: TestHub[] = [];
  after(async () => {
    for (const h of hubs) await h.hub.stop();
  });

  it('zone: enter and leave fire on crossing the zone’s edge, not on other moves', async () => {
    const clock = new VirtualClock(T0);
    const t = await startTestHub({ clock });
    hubs.push(t);
    await postRule(t, {
      id: 'anna-home',
      mode: 'queued',
      triggers: [{ trigger: 'zone', thing: 'anna', zone: 'home', event: 'enter' }],
      actions: notify('{{ trigger.thing }} {{ trigger.event }} {{ trigger.zone }}'),
    });
    await postRule(t, {
      id: 'anna-away',
      triggers: [{ trigger: 'zone', thing: 'anna', zone: 'home', event: 'leave' }],
      actions: notify('left'),
    });
    for (const zone of [null, 'work', 'home', 'home', 'gym', 'home']) {
      t.set('anna', 'presence.zone', zone);
      await advance(clock, MIN);
    }
    const entered = await tracesOf(t, 'anna-home');
    assert.deepEqual(
      entered.map((tr) => [tr.trigger.from, tr.trigger.to]),
      [
        ['work', 'home'],
        ['gym', 'home'],
      ],
    );
    assert.equal(entered[0].steps[0].detail, 'anna enter home', 'the run sees the trigger variables');
    const left = await tracesOf(t, 'anna-away');
    assert.deepEqual(
      left.map((tr) => [tr.trigger.from, tr.trigger.to]),
      [['home', 'gym']],
    );
  });

  it('event: fires on a matching Triad event (a command confirmed), with the event as its cause', async () => {
    const clock = new VirtualClock(T0);
    const t = await startTestHub({ clock });
    hubs.push(t);
    await postRule(t, {
      id: 'fan-confirmed',
      triggers: [{ trigger: 'event', event_type: 'command', thing: 'living-room-fan', data: { status: 'confirmed' } }],
      actions: notify('{{ trigger.data.action }} confirmed'),
    });
    await postRule(t, {
      id: 'fan-failed',
      triggers: [{ trigger: 'event', event_type: 'command', data: { status: 'failed' } }],
      actions: notify('failed'),
    });
    const sent = await t.api('/api/things/living-room-fan/actions/turn_on', { method: 'POST', body: '{}' });
    assert.equal(sent.status, 202);
    const { commandId } = (await sent.json()) as { commandId: string };
    await advance(clock, 1000, 10);
    const runs = await tracesOf(t, 'fan-confirmed');
    assert.equal(runs.length, 1);
    assert.equal(runs[0].status, 'finished');
    assert.equal(runs[0].steps[0].detail, 'turn_on confirmed');
    const confirmation = t.events.find(
      (e) => e.type === 'command' && e.command.id === commandId && e.command.status === 'confirmed',
    );
    assert.equal(runs[0].trigger.cause, confirmation?.id);
    assert.equal((await tracesOf(t, 'fan-failed')).length, 0, 'a confirmed command is not a failed one');
  });
});

describe('automations: MQTT and webhook triggers', () => {
  const hubs: TestHub[] = [];
  after(async () => {
    for (const h of hubs) await h.hub.stop();
  });

  it('mqtt: a real publish on a matching topic fires the rule; retained and filtered messages do not', async () => {
    const t = await startTestHub({ clock: new VirtualClock(T0) });
    hubs.push(t);
    const client = await mqtt.connectAsync(t.hub.mqttUrl, { clientId: 'automation-trigger-test' });
    try {
      // Left on the broker before the rule exists: the subscription receives it as retained.
      await client.publishAsync('doorbell/front', JSON.stringify({ who: 'old news' }), { retain: true, qos: 1 });
      await postRule(t, {
        id: 'doorbell',
        mode: 'queued',
        triggers: [{ trigger: 'mqtt', topic: 'doorbell/+' }],
        actions: notify('{{ trigger.payload_json.who }} at {{ trigger.topic }}'),
      });
      await postRule(t, {
        id: 'doorbell-pressed',
        triggers: [{ trigger: 'mqtt', topic: 'doorbell/back', payload: 'pressed' }],
        actions: notify('back door'),
      });
      await client.publishAsync('doorbell/back', 'released', { qos: 1 });
      await client.publishAsync('doorbell/front', JSON.stringify({ who: 'the postman' }), { qos: 1 });
      await client.publishAsync('doorbell/back', 'pressed', { qos: 1 });
      const runs = await eventually(
        async () => {
          const traces = await tracesOf(t, 'doorbell');
          return traces.length === 3 && traces.every((tr) => tr.status === 'finished') && traces;
        },
        { what: 'three doorbell runs' },
      );
      assert.deepEqual(
        runs.map((tr) => tr.steps[0].detail),
        // A payload that is not JSON has no `who`: a missing value renders as nothing in text,
        // and the trace says which.
        [
          ' at doorbell/back (no value for {{ trigger.payload_json.who }})',
          'the postman at doorbell/front',
          ' at doorbell/back (no value for {{ trigger.payload_json.who }})',
        ],
      );
      const pressed = await eventually(async () => {
        const traces = await tracesOf(t, 'doorbell-pressed');
        return traces.length > 0 && traces;
      });
      assert.deepEqual(
        pressed.map((tr) => tr.trigger.payload),
        ['pressed'],
        'the payload filter lets only "pressed" through',
      );
      assert.ok(
        !runs.some((tr) => tr.steps[0].detail?.includes('old news')),
        'the retained message never fired the rule',
      );
    } finally {
      await client.endAsync();
    }
  });

  it('webhook: fires with the body as trigger data, only with a valid token, and 404 for an unknown id', async () => {
    const t = await startTestHub({ clock: new VirtualClock(T0) });
    hubs.push(t);
    await postRule(t, {
      id: 'garden-button',
      triggers: [{ trigger: 'webhook', webhook_id: 'garden-button-7f3a9c' }],
      actions: notify('{{ trigger.data.pressed_by }}'),
    });
    const path = '/api/automations/webhooks/garden-button-7f3a9c';
    const body = JSON.stringify({ pressed_by: 'Ben' });
    assert.equal((await t.api(path, { method: 'POST', body, token: null })).status, 401);
    assert.equal((await t.api(path, { method: 'POST', body, token: 'not-a-token' })).status, 401);
    assert.equal((await tracesOf(t, 'garden-button')).length, 0, 'an unauthenticated call fires nothing');

    const fired = await t.api(path, { method: 'POST', body });
    assert.equal(fired.status, 200);
    assert.deepEqual(await fired.json(), { fired: ['garden-button'], skipped: [] });
    const runs = await eventually(async () => {
      const traces = await tracesOf(t, 'garden-button');
      return traces.length === 1 && traces[0].status === 'finished' && traces;
    });
    assert.equal(runs[0].trigger.type, 'webhook');
    assert.equal(runs[0].steps[0].detail, 'Ben');

    const unknown = await t.api('/api/automations/webhooks/no-such-hook-123', { method: 'POST', body });
    assert.equal(unknown.status, 404);
    assert.deepEqual(await unknown.json(), {
      error: { code: 'not_found', message: 'no enabled rule has webhook id "no-such-hook-123"' },
    });
    // A rule switched off no longer answers to its id either, and its run count stays as it was.
    assert.equal((await t.api('/api/automations/garden-button/disable', { method: 'POST' })).status, 200);
    assert.equal((await t.api(path, { method: 'POST', body })).status, 404);
    assert.equal((await tracesOf(t, 'garden-button')).length, 1);
  });

  it('webhook: a call its rule’s mode drops is answered as skipped, with the reason, not as fired', async () => {
    const t = await startTestHub({ clock: new VirtualClock(T0) });
    hubs.push(t);
    const slow = [{ delay: '10m' }, { action: 'turn_on', thing: 'living-room-fan' }];
    await postRule(t, {
      id: 'porch-single',
      mode: 'single',
      triggers: [{ trigger: 'webhook', webhook_id: 'porch-single-3e9d' }],
      actions: slow,
    });
    await postRule(t, {
      id: 'porch-queued',
      mode: 'queued',
      // The running run counts: one runs, one waits, a third is one too many.
      max: 2,
      triggers: [{ trigger: 'webhook', webhook_id: 'porch-queued-8a2c' }],
      actions: slow,
    });
    // Its conditions fail: it was still triggered and judged, so it counts as fired.
    await postRule(t, {
      id: 'porch-never',
      triggers: [{ trigger: 'webhook', webhook_id: 'porch-never-1f4b' }],
      conditions: [{ condition: 'expression', expression: 'false' }],
      actions: slow,
    });
    const call = async (hook: string) => {
      const r = await t.api(`/api/automations/webhooks/${hook}`, { method: 'POST', body: '{}' });
      assert.equal(r.status, 200, 'a rule that skipped the call is still there: not a 404');
      return r.json();
    };

    assert.deepEqual(await call('porch-single-3e9d'), { fired: ['porch-single'], skipped: [] });
    assert.deepEqual(await call('porch-single-3e9d'), {
      fired: [],
      skipped: [{ rule: 'porch-single', reason: 'already running (mode: single)' }],
    });

    assert.deepEqual(await call('porch-queued-8a2c'), { fired: ['porch-queued'], skipped: [] });
    assert.deepEqual(await call('porch-queued-8a2c'), { fired: ['porch-queued'], skipped: [] }, 'queued');
    assert.deepEqual(await call('porch-queued-8a2c'), {
      fired: [],
      skipped: [{ rule: 'porch-queued', reason: 'queue is full (mode: queued, max: 2)' }],
    });

    assert.deepEqual(await call('porch-never-1f4b'), { fired: ['porch-never'], skipped: [] });

    // The answer gives the reason the trace gives.
    const skippedTraces = await eventually(async () => {
      const traces = [...(await tracesOf(t, 'porch-single')), ...(await tracesOf(t, 'porch-queued'))].filter(
        (tr) => tr.status === 'skipped',
      );
      return traces.length === 2 && traces;
    });
    assert.deepEqual(skippedTraces.map((tr) => tr.error).sort(), [
      'already running (mode: single)',
      'queue is full (mode: queued, max: 2)',
    ]);
    const never = await eventually(async () => {
      const traces = await tracesOf(t, 'porch-never');
      return traces.length === 1 && traces;
    });
    assert.equal(never[0].status, 'condition_failed');
  });
});
