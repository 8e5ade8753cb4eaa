import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import mqtt, { type MqttClient } from 'mqtt';
import { Hub } from '../src/core/hub.ts';
import { createLogger } from '../src/core/log.ts';
import { eventually, tempDir } from './helpers/hub-process.ts';

/**
 * A discovery config may give its payloads as JSON numbers (`"payload_on": 1.0`), not strings.
 * Home Assistant reads every payload and state option as text (cv.string: str(1.0) is `1.0`, of
 * 1 is `1`) and compares the rendered state with that text; Triad read the number after
 * JSON.parse, which had made 1.0 into 1, so it matched `1` and not `1.0`, and switched the
 * device with `1`. A real in-process hub with its embedded broker, and a real MQTT client as the
 * device; configs are sent as JSON text, written as a device writes them.
 */
describe('discovery payload options written as JSON numbers', () => {
  let hub: Hub;
  let device: MqttClient;

  const send = (topic: string, text: string, retain = false) => device.publishAsync(topic, text, { qos: 1, retain });

  /**
   * Announces a config (retained, as JSON text written as a device writes it) and waits for the
   * thing named `name` to have `property`; the thing's id.
   */
  const announce = async (topic: string, config: string, name: string, property: string) => {
    await send(topic, config, true);
    return eventually(
      () =>
        hub.twins
          .list(hub.householdId)
          .find((twin) => twin.thing.name === name && Object.hasOwn(twin.thing.properties, property))?.thing.id,
      { what: `the thing ${name} with ${property}` },
    );
  };

  const value = (thing: string, property: string) => hub.twins.value(hub.householdId, thing, property);

  before(async () => {
    hub = new Hub({
      dataDir: await tempDir('triad-numeric-payloads-'),
      http: { port: 0, host: '127.0.0.1' },
      mqtt: { port: 0, host: '127.0.0.1', allowAnonymous: true },
      log: createLogger({ level: 'silent' }),
    });
    await hub.start();
    device = await mqtt.connectAsync(hub.mqttUrl, { clientId: 'numeric-payloads-device' });
  });

  after(async () => {
    await device?.endAsync();
    await hub?.stop();
  });

  it('compares a state with str() of a float payload, `1.0`, as Home Assistant does', async () => {
    const hall = await announce(
      'homeassistant/binary_sensor/numeric/hall/config',
      '{"name": "Hall motion", "unique_id": "numeric_hall", "device_class": "motion",' +
        ' "state_topic": "numeric/hall", "payload_on": 1.0, "payload_off": 0.0}',
      'Hall motion',
      'sensor.motion',
    );
    await send('numeric/hall', '1.0');
    await eventually(() => value(hall, 'sensor.motion') === true, { what: '1.0 is on' });
    await send('numeric/hall', '0.0');
    await eventually(() => value(hall, 'sensor.motion') === false, { what: '0.0 is off' });
    // `1` is not str(1.0): Home Assistant leaves the state as it was, and so does Triad. A
    // sensor whose payload_on is the string "1", told `1` just after, shows when it was heard.
    const porch = await announce(
      'homeassistant/binary_sensor/numeric/porch/config',
      '{"name": "Porch motion", "unique_id": "numeric_porch", "device_class": "motion",' +
        ' "state_topic": "numeric/porch", "payload_on": "1", "payload_off": "0"}',
      'Porch motion',
      'sensor.motion',
    );
    await send('numeric/hall', '1');
    await send('numeric/porch', '1');
    await eventually(() => value(porch, 'sensor.motion') === true, { what: 'the porch heard `1`' });
    assert.equal(value(hall, 'sensor.motion'), false, '`1` matches neither 1.0 nor 0.0');
  });

  it('reads an int payload as `1`, a float one in a device config and an availability item as `1.0`', async () => {
    const pump = await announce(
      'homeassistant/device/numeric_pump/config',
      JSON.stringify({
        dev: { ids: ['numeric_pump'], name: 'Numeric pump' },
        o: { name: 'test' },
        avty: [{ t: 'numeric/pump/link', pl_avail: 1.0, pl_not_avail: 0.0 }],
        cmps: {
          relay: {
            p: 'switch',
            name: 'Relay',
            unique_id: 'numeric_relay',
            stat_t: 'numeric/pump/relay',
            cmd_t: 'numeric/pump/set',
            pl_on: 1,
            pl_off: 0,
          },
        },
      })
        .replace('"pl_avail":1', '"pl_avail":1.0')
        .replace('"pl_not_avail":0', '"pl_not_avail":0.0'),
      'Numeric pump',
      'switch.on',
    );
    await send('numeric/pump/relay', '1');
    await eventually(() => value(pump, 'switch.on') === true, { what: 'an int payload_on 1 matches `1`' });
    await send('numeric/pump/link', '1.0');
    await eventually(() => hub.twins.get(hub.householdId, pump)?.online === true, { what: 'online on `1.0`' });
    await send('numeric/pump/link', '0.0');
    await eventually(() => hub.twins.get(hub.householdId, pump)?.online === false, { what: 'offline on `0.0`' });
  });

  it('sends str() of a float payload as the command, `1.0`', async () => {
    const heater = await announce(
      'homeassistant/switch/numeric/heater/config',
      '{"name": "Heater", "unique_id": "numeric_heater", "command_topic": "numeric/heater/set",' +
        ' "state_topic": "numeric/heater", "payload_on": 1.0, "payload_off": 0.0}',
      'Heater',
      'switch.on',
    );
    const sent: string[] = [];
    device.on('message', (topic, payload) => {
      if (topic === 'numeric/heater/set') sent.push(payload.toString('utf8'));
    });
    await device.subscribeAsync('numeric/heater/set', { qos: 1 });
    await hub.commands.dispatch({
      householdId: hub.householdId,
      thing: heater,
      action: 'turn_on',
      input: {},
      issuedBy: 'test',
    });
    await eventually(() => sent.length > 0, { what: 'the command on the wire' });
    assert.deepEqual(sent, ['1.0']);
  });
});
