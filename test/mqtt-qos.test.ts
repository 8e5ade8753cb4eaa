import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Aedes } from 'aedes';
import mqtt, { type MqttClient } from 'mqtt';
import { Hub } from '../src/core/hub.ts';
import { createLogger } from '../src/core/log.ts';
import { eventually, tempDir } from './helpers/hub-process.ts';

/**
 * A discovered entity's `qos` (0, 1 or 2) is the QoS Home Assistant publishes its commands with and
 * subscribes to its state and availability topics at. Triad sent commands at QoS 0 for a device
 * configured for QoS 2, and subscribed every state topic at QoS 0. A real hub whose link goes to
 * a real broker (aedes, as the embedded one is) that the test watches for the hub's
 * subscriptions, and a real MQTT client as the device.
 */
describe('discovery honours qos', () => {
  let broker: Aedes;
  let server: Server;
  let hub: Hub;
  let device: MqttClient;
  /** The QoS of each subscription the hub asked the broker for, by filter, latest last. */
  const hubSubscriptions: Array<{ topic: string; qos: number }> = [];

  const send = (topic: string, text: string, qos: 0 | 1 | 2 = 1, retain = false) =>
    device.publishAsync(topic, text, { qos, retain });
  const thingNamed = (name: string) => hub.twins.list(hub.householdId).find((twin) => twin.thing.name === name)?.thing;
  const subscribedAt = (topic: string) => hubSubscriptions.filter((s) => s.topic === topic).at(-1)?.qos;
  const call = async (path: string, method = 'GET') => {
    const res = await fetch(hub.httpUrl + path, { method, headers: { authorization: `Bearer ${hub.ownerToken}` } });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  before(async () => {
    broker = await Aedes.createBroker();
    broker.on('subscribe', (subscriptions, client) => {
      if (client?.id.startsWith('triad'))
        hubSubscriptions.push(...subscriptions.map(({ topic, qos }) => ({ topic, qos })));
    });
    server = createServer(broker.handle);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    assert.ok(address && typeof address === 'object');
    const url = `mqtt://127.0.0.1:${address.port}`;
    hub = new Hub({
      dataDir: await tempDir('triad-qos-'),
      http: { port: 0, host: '127.0.0.1' },
      mqtt: { url },
      log: createLogger({ level: 'silent' }),
    });
    await hub.start();
    device = await mqtt.connectAsync(url, { clientId: 'qos-device' });
  });

  after(async () => {
    await device?.endAsync();
    await hub?.stop();
    await new Promise<void>((resolve) => broker.close(() => resolve()));
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('publishes a command at QoS 2 to a device configured for it', async () => {
    const received: Array<{ payload: string; qos: number }> = [];
    device.on('message', (topic, payload, packet) => {
      if (topic === 'qos2/plug/set') received.push({ payload: payload.toString(), qos: packet.qos });
    });
    // The device reads its command topic at QoS 2: what it gets is the lower of that and the hub's.
    await device.subscribeAsync('qos2/plug/set', { qos: 2 });
    await send(
      'homeassistant/switch/plug/config',
      '{"name":"Plug","unique_id":"qos_plug","cmd_t":"qos2/plug/set","qos":2}',
    );
    const plug = await eventually(() => thingNamed('Plug')?.id, { what: 'the plug' });
    const answer = await call(`/api/things/${plug}/actions/turn_on`, 'POST');
    assert.ok(answer.status < 300, `the command is taken (${answer.status})`);
    await eventually(() => received.length > 0, { what: 'the command at the device' });
    assert.deepEqual(received, [{ payload: 'ON', qos: 2 }]);
  });

  it('publishes at QoS 1, and at 0 when qos is absent or not 0, 1 or 2', async () => {
    const received = new Map<string, number>();
    device.on('message', (topic, _payload, packet) => {
      if (topic.startsWith('qosn/')) received.set(topic, packet.qos);
    });
    await device.subscribeAsync('qosn/+/set', { qos: 2 });
    const plugs: Array<[string, string]> = [
      ['one', '"qos":1'],
      ['text', '"qos":"1"'],
      ['none', '"opt":false'],
      ['bad', '"qos":7'],
    ];
    for (const [id, qos] of plugs) {
      await send(
        `homeassistant/switch/qosn_${id}/config`,
        `{"name":"Q ${id}","unique_id":"qosn_${id}","cmd_t":"qosn/${id}/set",${qos}}`,
      );
      const thing = await eventually(() => thingNamed(`Q ${id}`)?.id, { what: `plug ${id}` });
      assert.ok((await call(`/api/things/${thing}/actions/turn_on`, 'POST')).status < 300);
      await eventually(() => received.has(`qosn/${id}/set`), { what: `the command to ${id}` });
    }
    assert.deepEqual(Object.fromEntries(received), {
      'qosn/one/set': 1,
      'qosn/text/set': 1,
      'qosn/none/set': 0,
      'qosn/bad/set': 0,
    });
  });

  it('subscribes to state and availability topics at the QoS configured, and reads what comes', async () => {
    await send(
      'homeassistant/sensor/boiler/config',
      '{"name":"Boiler","unique_id":"qos_boiler","stat_t":"qos2/boiler/t","avty_t":"qos2/boiler/online","unit_of_meas":"°C","dev_cla":"temperature","qos":2}',
    );
    const boiler = await eventually(() => thingNamed('Boiler')?.id, { what: 'the boiler' });
    await eventually(() => subscribedAt('qos2/boiler/t') === 2, { what: 'the state topic at QoS 2' });
    assert.equal(subscribedAt('qos2/boiler/online'), 2, 'the availability topic at QoS 2');
    await send('qos2/boiler/online', 'online', 2);
    await send('qos2/boiler/t', '61.5', 2);
    await eventually(() => hub.twins.value(hub.householdId, boiler, 'sensor.temperature') === 61.5, {
      what: 'the boiler read at QoS 2',
    });
    await send('homeassistant/sensor/attic/config', '{"name":"Attic","unique_id":"qos_attic","stat_t":"qos0/attic/t"}');
    await eventually(() => thingNamed('Attic'), { what: 'the attic' });
    assert.equal(subscribedAt('qos0/attic/t'), 0, 'no qos, QoS 0 as Home Assistant has it');
  });

  it('raises a shared state topic to the highest QoS its entities ask for', async () => {
    await send(
      'homeassistant/sensor/bulb_lq/config',
      '{"name":"Bulb lq","unique_id":"qos_bulb_lq","stat_t":"shared/bulb","val_tpl":"{{ value_json.lq }}","dev_cla":"temperature","unit_of_meas":"°C"}',
    );
    await eventually(() => thingNamed('Bulb lq'), { what: 'the first entity' });
    assert.equal(subscribedAt('shared/bulb'), 0);
    await send(
      'homeassistant/sensor/bulb_t/config',
      '{"name":"Bulb t","unique_id":"qos_bulb_t","stat_t":"shared/bulb","val_tpl":"{{ value_json.t }}","dev_cla":"temperature","unit_of_meas":"°C","qos":1}',
    );
    await eventually(() => thingNamed('Bulb t'), { what: 'the second entity' });
    await eventually(() => subscribedAt('shared/bulb') === 1, { what: 'the shared topic raised to QoS 1' });
    const first = thingNamed('Bulb lq')?.id ?? '';
    const second = thingNamed('Bulb t')?.id ?? '';
    await send('shared/bulb', '{"lq": 8, "t": 30}', 1);
    await eventually(
      () =>
        hub.twins.value(hub.householdId, first, 'sensor.temperature') === 8 &&
        hub.twins.value(hub.householdId, second, 'sensor.temperature') === 30,
      { what: 'both entities read the shared topic once' },
    );
  });
});
