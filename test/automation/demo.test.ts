import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import mqtt, { type MqttClient } from 'mqtt';
import type { ReplayResult } from '../../src/automation/index.ts';
import type { HubEvent } from '../../src/core/events.ts';
import { eventually } from '../helpers/hub-process.ts';
import { HOME, postRule, startTestHub, type TestHub, tracesOf } from './helpers.ts';

/**
 * The demo household's devices are separate MQTT clients speaking Zigbee2MQTT, so these tests see
 * the whole path over the wire: a real publish in, the command out on the fan's `set` topic, and
 * the fan's own state report back. The wall clock drives them (the demo fan answers in ~50 ms).
 */
describe('automations with the demo devices over MQTT', () => {
  let t: TestHub;
  let watcher: MqttClient;
  const seen: Array<{ topic: string; payload: string; at: number }> = [];

  before(async () => {
    t = await startTestHub({ demo: true });
    await eventually(() => t.hub.twins.get(HOME, 'living-room-fan') && t.hub.twins.get(HOME, 'living-room-sensor'), {
      what: 'the demo fan and sensor to be discovered',
      timeoutMs: 15_000,
    });
    // A plain client that sees everything on the hub's broker, like a user's `mosquitto_sub -t '#'`.
    watcher = await mqtt.connectAsync(t.hub.mqttUrl, { clientId: 'automation-demo-watcher' });
    watcher.on('message', (topic, payload) => seen.push({ topic, payload: payload.toString(), at: Date.now() }));
    await watcher.subscribeAsync('#', { qos: 1 });
  });

  after(async () => {
    await watcher?.endAsync();
    await t?.hub.stop();
  });

  it('a trace shows trigger → conditions → the command → the fan’s own confirmation', async () => {
    await postRule(t, {
      id: 'fan-on-report',
      triggers: [{ trigger: 'mqtt', topic: 'weather-station/living-room' }],
      conditions: [{ condition: 'expression', expression: 'trigger.payload_json.temperature > 25' }],
      actions: [{ action: 'turn_on', thing: 'living-room-fan' }],
    });
    if (t.hub.twins.value(HOME, 'living-room-fan', 'switch.on') === true) {
      // The demo starts with the fan off; make sure, so the confirmation is a real change.
      await t.api('/api/things/living-room-fan/actions/turn_off', { method: 'POST', body: '{}' });
      await eventually(() => t.hub.twins.value(HOME, 'living-room-fan', 'switch.on') === false);
    }
    const publisher = await mqtt.connectAsync(t.hub.mqttUrl, { clientId: 'automation-demo-station' });
    try {
      await publisher.publishAsync('weather-station/living-room', JSON.stringify({ temperature: 22 }), { qos: 1 });
      await publisher.publishAsync('weather-station/living-room', JSON.stringify({ temperature: 27.5 }), { qos: 1 });
    } finally {
      await publisher.endAsync();
    }

    const traces = await eventually(
      async () => {
        const list = await tracesOf(t, 'fan-on-report');
        return list.length === 2 && list[1].steps[0]?.commands?.[0]?.status === 'confirmed' && list;
      },
      { what: 'the second run’s command to be confirmed', timeoutMs: 10_000 },
    );
    const [cool, hot] = traces;
    assert.equal(cool.status, 'condition_failed', 'at 22 °C the condition is false');
    assert.match(cool.conditions[0].detail ?? '', /→ false/);

    assert.equal(hot.status, 'finished');
    assert.equal(hot.trigger.type, 'mqtt');
    assert.equal(hot.trigger.topic, 'weather-station/living-room');
    assert.deepEqual(
      hot.conditions.map((c) => [c.path, c.result]),
      [['conditions[0]', true]],
    );
    const [command] = hot.steps[0].commands ?? [];
    assert.equal(command.thing, 'living-room-fan');
    assert.equal(command.action, 'turn_on');

    // Follow the causes: trigger → command → the fan's state report that confirmed it.
    const commandEvents = t.events.filter(
      (e): e is Extract<HubEvent, { type: 'command' }> => e.type === 'command' && e.command.id === command.id,
    );
    assert.equal(commandEvents[0].command.cause, hot.trigger.cause, 'the command was caused by the trigger');
    const confirmedBy = t.events.find((e) => e.id === command.finishedBy);
    assert.ok(confirmedBy && confirmedBy.type === 'state', 'the confirmation is a state change');
    assert.equal(confirmedBy.thing, 'living-room-fan');
    assert.equal(confirmedBy.property, 'switch.on');
    assert.equal(confirmedBy.to, true);
    assert.equal(t.hub.twins.value(HOME, 'living-room-fan', 'switch.on'), true);

    // And it really went over the wire: the command on the fan's set topic, then its report.
    const set = seen.findIndex((m) => m.topic === 'zigbee2mqtt/Living room fan/set');
    assert.ok(set >= 0, 'the command was published on the fan’s set topic');
    // Home Assistant discovery's plain payload_on, as a real Zigbee2MQTT switch takes it.
    assert.match(seen[set].payload, /\bON\b/);
    assert.ok(
      seen.slice(set + 1).some((m) => m.topic === 'zigbee2mqtt/Living room fan' && /\bON\b/.test(m.payload)),
      'the fan reported ON after the command',
    );
  });

  it('replay over the API returns its runs and publishes nothing on MQTT while it runs', async () => {
    await t.api('/api/things/living-room-fan/actions/turn_off', { method: 'POST', body: '{}' });
    await eventually(() => t.hub.twins.value(HOME, 'living-room-fan', 'switch.on') === false);
    const from = new Date(Date.now() - 1000).toISOString();
    // Recorded history: humidity reports as if the sensor had sent them, crossing 60 % once.
    for (const humidity of [40, 61, 62, 63]) {
      t.set('living-room-sensor', 'sensor.humidity', humidity);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const to = new Date(Date.now() + 1000).toISOString();
    const commandsBefore = t.events.filter((e) => e.type === 'command').length;
    const quietFrom = seen.length;

    const response = await t.api('/api/automations/replay', {
      method: 'POST',
      body: JSON.stringify({
        rule: {
          id: 'fan-when-humid',
          triggers: [{ trigger: 'numeric_state', thing: 'living-room-sensor', property: 'sensor.humidity', above: 60 }],
          actions: [{ action: 'turn_on', thing: 'living-room-fan' }],
        },
        from,
        to,
      }),
    });
    assert.equal(response.status, 200);
    const result = (await response.json()) as ReplayResult;
    const humid = result.runs.filter((r) => r.trigger.to === 61);
    assert.equal(humid.length, 1, 'the crossing above 60 % is a run; 62 and 63 are not crossings');
    assert.ok(!result.runs.some((r) => r.trigger.to === 62 || r.trigger.to === 63));
    assert.deepEqual(humid[0].actions, [{ action: 'turn_on', thing: 'living-room-fan', input: {} }]);
    assert.equal(humid[0].trace.dryRun, true);

    // Give any stray publish time to arrive before judging that none was made: the watcher saw
    // the earlier command within milliseconds, and the broker delivers in order, so a marker
    // published now arrives after anything the replay might have sent.
    const marker = `replay-marker/${Date.now()}`;
    await watcher.publishAsync(marker, 'end', { qos: 1 });
    await eventually(() => seen.some((m) => m.topic === marker), { what: 'the marker' });
    const during = seen.slice(quietFrom).filter((m) => m.topic !== marker);
    assert.deepEqual(
      during.filter((m) => m.topic.endsWith('/set')),
      [],
      'no command topic was published',
    );
    assert.equal(t.events.filter((e) => e.type === 'command').length, commandsBefore, 'no command was dispatched');
    assert.equal(t.hub.twins.value(HOME, 'living-room-fan', 'switch.on'), false, 'the fan stayed off');
  });
});
