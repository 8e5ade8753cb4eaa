import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import mqtt, { type MqttClient } from 'mqtt';
import { Hub } from '../src/core/hub.ts';
import { createLogger, type LogLine } from '../src/core/log.ts';
import { eventually, tempDir } from './helpers/hub-process.ts';

/**
 * Topics starting with `$` are the broker's own ($SYS). A discovered command topic there made the
 * broker drop the hub's whole connection at each command (every device's messages lost meanwhile,
 * the command shown as sent), and a state topic there showed another household's client ids on a
 * sensor. Discovery refuses any such topic, naming the option, as it refuses a wildcard command
 * topic. A real in-process hub with its embedded broker, and a real MQTT client as the device.
 */
describe('discovery refuses $ topics', () => {
  let hub: Hub;
  let device: MqttClient;
  const lines: LogLine[] = [];

  const send = (topic: string, text: string, retain = false) => device.publishAsync(topic, text, { qos: 1, retain });
  const call = async (path: string, method = 'GET') => {
    const res = await fetch(hub.httpUrl + path, { method, headers: { authorization: `Bearer ${hub.ownerToken}` } });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  const thingNamed = (name: string) => hub.twins.list(hub.householdId).find((twin) => twin.thing.name === name)?.thing;
  /** The warning that says why the config on `topic` was ignored. */
  const refusal = (topic: string) =>
    eventually(
      () => lines.find((line) => line.level === 'warn' && line.message.includes(`config on ${topic} ignored`)),
      {
        what: `the refusal of ${topic}`,
      },
    );

  before(async () => {
    hub = new Hub({
      dataDir: await tempDir('triad-sys-topics-'),
      http: { port: 0, host: '127.0.0.1' },
      mqtt: { port: 0, host: '127.0.0.1', allowAnonymous: true },
      log: createLogger({ level: 'warn', sink: (line) => lines.push(line) }),
    });
    await hub.start();
    device = await mqtt.connectAsync(hub.mqttUrl, { clientId: 'sys-topics-device' });
    // A device that works, to show the hub's link stays up.
    await send(
      'homeassistant/switch/lamp/config',
      '{"name":"Lamp","unique_id":"sys_lamp","stat_t":"lamp/state"}',
      true,
    );
    await eventually(() => thingNamed('Lamp'), { what: 'the lamp' });
  });

  after(async () => {
    await device?.endAsync();
    await hub?.stop();
  });

  it('refuses a command topic under $SYS, and a command cannot reach it', async () => {
    const topic = 'homeassistant/switch/evil/config';
    await send(topic, '{"name":"Evil","unique_id":"evil","cmd_t":"$SYS/evil/set"}', true);
    const warning = await refusal(topic);
    assert.match(warning.message, /command_topic "\$SYS\/evil\/set" starts with "\$"/);
    assert.equal(thingNamed('Evil'), undefined, 'no thing for the refused config');
    const answer = await call('/api/things/evil/actions/turn_on', 'POST');
    assert.equal(answer.status, 404, 'there is nothing to command');
    // The hub's connection is the one it had: the lamp's state still arrives.
    const lamp = thingNamed('Lamp')?.id ?? '';
    await send('lamp/state', 'ON');
    await eventually(() => hub.twins.value(hub.householdId, lamp, 'switch.on') === true, { what: 'the lamp on' });
  });

  it('refuses a state topic under $SYS, so no sensor shows the broker clients', async () => {
    const topic = 'homeassistant/sensor/spy/config';
    await send(topic, '{"name":"Spy","unique_id":"spy","stat_t":"$SYS/+/new/clients"}', true);
    const warning = await refusal(topic);
    assert.match(warning.message, /state_topic "\$SYS\/\+\/new\/clients" starts with "\$"/);
    assert.equal(thingNamed('Spy'), undefined);
    assert.equal((await call('/api/things/spy')).status, 404);
  });

  it('names every topic option that starts with $: availability, attributes, any *_topic', async () => {
    const cases: Array<[string, string, RegExp]> = [
      ['avty', '"avty_t":"$dev/status"', /availability_topic "\$dev\/status"/],
      [
        'avty-list',
        '"avty":[{"t":"ok/status"},{"t":"$SYS/broker/uptime"}]',
        /availability\.topic "\$SYS\/broker\/uptime"/,
      ],
      ['attrs', '"json_attr_t":"$SYS/broker/clients/connected"', /json_attributes_topic "\$SYS/],
      ['bright', '"bri_cmd_t":"$share/x/set"', /brightness_command_topic "\$share\/x\/set"/],
    ];
    for (const [id, option, named] of cases) {
      const topic = `homeassistant/light/${id}/config`;
      await send(topic, `{"name":"L ${id}","unique_id":"sys_${id}","cmd_t":"l/${id}/set",${option}}`, true);
      const warning = await refusal(topic);
      assert.match(warning.message, named);
      assert.equal(thingNamed(`L ${id}`), undefined, `no thing for ${id}`);
    }
    // A `$` inside a topic is an ordinary character, as MQTT has it.
    await send(
      'homeassistant/sensor/price/config',
      '{"name":"Price","unique_id":"sys_price","stat_t":"shop/$price"}',
      true,
    );
    await eventually(() => thingNamed('Price'), { what: 'the sensor whose topic holds a $ inside' });
  });
});
