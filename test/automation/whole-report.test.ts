import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import mqtt, { type MqttClient } from 'mqtt';
import type { Trace } from '../../src/automation/index.ts';
import { eventually } from '../helpers/hub-process.ts';
import { postRule, startTestHub, type TestHub, tracesOf } from './helpers.ts';

/**
 * A rule started by one property of a device's message reads the rest of that message: a
 * Zigbee2MQTT light (Home Assistant discovery, JSON schema) says `{"state":"ON","brightness":254}`
 * in one message, and a rule on its `light.on` sees the new brightness in its conditions and
 * templates, as Home Assistant runs a rule once the message has updated every entity it carries.
 */
describe('automations: a rule sees the whole of the report that triggered it', () => {
  let t: TestHub;
  let lamp: MqttClient;
  const said = (trace: Trace) => trace.steps.filter((s) => s.action === 'notify').map((s) => s.detail);
  const brightness = () => t.hub.core.getValue(t.hub.householdId, 'lamp', 'light.brightness');

  before(async () => {
    t = await startTestHub({});
    lamp = await mqtt.connectAsync(t.hub.mqttUrl, { clientId: `whole-report-lamp-${process.pid}` });
    await lamp.publishAsync(
      'homeassistant/light/whole-report-lamp/light/config',
      JSON.stringify({
        unique_id: 'whole_report_lamp',
        name: null,
        schema: 'json',
        brightness: true,
        brightness_scale: 254,
        supported_color_modes: ['brightness'],
        command_topic: 'whole-report/lamp/set',
        state_topic: 'whole-report/lamp',
        device: { identifiers: ['whole_report_lamp'], name: 'Lamp' },
      }),
      { retain: true, qos: 1 },
    );
    await eventually(() => t.hub.core.getThing(t.hub.householdId, 'lamp') !== undefined, {
      what: 'the lamp discovered',
      timeoutMs: 10_000,
    });
    await lamp.publishAsync('whole-report/lamp', JSON.stringify({ state: 'OFF', brightness: 25 }), { qos: 1 });
    await eventually(() => typeof brightness() === 'number', { what: 'the lamp dim and off', timeoutMs: 10_000 });
  });

  after(async () => {
    await lamp?.publishAsync('homeassistant/light/whole-report-lamp/light/config', '', { retain: true, qos: 1 });
    await lamp?.endAsync();
    await t?.hub.stop();
  });

  it('judges a condition and renders a template on a sibling with the value of the same message', async () => {
    const onLampOn = { trigger: 'state', thing: 'lamp', property: 'light.on', to: true };
    await postRule(t, {
      id: 'lamp-on-bright',
      triggers: [onLampOn],
      conditions: [{ condition: 'numeric_state', thing: 'lamp', property: 'light.brightness', above: 50 }],
      actions: [{ action: 'notify', message: 'bright' }],
    });
    await postRule(t, {
      id: 'lamp-on-level',
      triggers: [onLampOn],
      actions: [{ action: 'notify', message: 'at {{ state("lamp", "light.brightness") }} %' }],
    });

    await lamp.publishAsync('whole-report/lamp', JSON.stringify({ state: 'ON', brightness: 254 }), { qos: 1 });
    await eventually(async () => (await tracesOf(t, 'lamp-on-level')).length === 1, {
      what: 'the rule run on the lamp turned on',
      timeoutMs: 10_000,
    });
    const [level] = await tracesOf(t, 'lamp-on-level');
    assert.deepEqual(said(level), ['at 100 %'], 'the brightness the lamp reported with its "ON"');
    const [bright] = await tracesOf(t, 'lamp-on-bright');
    assert.equal(bright?.status, 'finished', JSON.stringify(bright));
    assert.deepEqual(said(bright), ['bright'], 'the condition passed on the brightness of the same message');
  });
});
