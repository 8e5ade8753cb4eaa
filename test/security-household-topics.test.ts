import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import mqtt from 'mqtt';
import type { Hub } from '../src/core/hub.ts';
import { eventually } from './helpers/hub-process.ts';
import { startTriad } from './helpers/triad-hub.ts';

/**
 * Three households on one hub's embedded broker: the first one's topics are plain, the others'
 * are moved under `households/<id>/`. A device account whose owner gave it `#` must still read
 * only its own household's messages, live or retained, whichever household it belongs to; the
 * hub itself reads them all.
 */

type Json = Record<string, unknown>;
type Account = { username: string; password: string };
type Heard = { topic: string; payload: string; retain: boolean };

/** A wide listener: what an owner might give a dashboard or a logger. */
const SNIFFER = { publish: ['sniff/out'], subscribe: ['#', '+/+/+/+'] };

describe('security: a device reads only its own household over MQTT', () => {
  let hub: Hub;
  const households: Record<'first' | 'second' | 'third', { id: string; token: string }> = {
    first: { id: '', token: '' },
    second: { id: '', token: '' },
    third: { id: '', token: '' },
  };
  const clients: mqtt.MqttClient[] = [];

  const call = async (token: string, path: string, json?: unknown) => {
    const res = await fetch(hub.httpUrl + path, {
      method: json === undefined ? 'GET' : 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: json === undefined ? undefined : JSON.stringify(json),
    });
    return { status: res.status, body: (await res.json()) as Json & Json[] };
  };
  const device = async (household: keyof typeof households, name: string, topics: Json = {}) => {
    const made = await call(households[household].token, '/api/devices', { name, ...topics });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    return made.body as unknown as Account;
  };
  const connect = async (account: Account) => {
    const client = await mqtt.connectAsync(hub.mqttUrl, {
      ...account,
      reconnectPeriod: 0,
      connectTimeout: 2000,
    });
    clients.push(client);
    return client;
  };
  /** Connects and subscribes, keeping everything that arrives (retained messages included). */
  const listen = async (account: Account, filters: string[]) => {
    const client = await connect(account);
    const heard: Heard[] = [];
    client.on('message', (topic, payload, packet) =>
      heard.push({ topic, payload: payload.toString(), retain: packet.retain }),
    );
    const grants = await client.subscribeAsync(filters, { qos: 1 });
    assert.deepEqual(
      grants.map((g) => g.qos),
      filters.map(() => 1),
      'the owner allowed these filters',
    );
    return { client, heard };
  };
  /** Waits for a message `heard` must get, so whatever was sent before it has arrived too. */
  const waitFor = (heard: Heard[], topic: string, payload: string) =>
    eventually(() => heard.find((m) => m.topic === topic && m.payload === payload), {
      what: `${topic} ${payload}`,
    });
  const secrets = (heard: Heard[], ...words: string[]) =>
    heard.filter((m) => m.topic.startsWith('households/') || words.some((w) => m.payload.includes(w)));

  let plug1: mqtt.MqttClient;
  let plug2: mqtt.MqttClient;
  let plug3: mqtt.MqttClient;
  let sniffer1: Account;
  let sniffer2: Account;

  before(async () => {
    hub = await startTriad();
    households.first = { id: hub.householdId, token: hub.ownerToken };
    for (const [key, name] of [
      ['second', 'Neighbours'],
      ['third', 'Across the road'],
    ] as const) {
      const made = await call(hub.ownerToken, '/api/households', { name });
      assert.equal(made.status, 201, JSON.stringify(made.body));
      households[key] = { id: (made.body.household as Json).id as string, token: made.body.token as string };
    }
    sniffer1 = await device('first', 'sniffer', SNIFFER);
    sniffer2 = await device('second', 'sniffer', SNIFFER);
    plug1 = await connect(await device('first', 'plug1'));
    plug2 = await connect(await device('second', 'plug2'));
    plug3 = await connect(await device('third', 'plug3'));
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.endAsync(true)));
    await hub.stop();
  });

  it("a first-household device subscribed to # hears its own household's messages and no other's", async () => {
    const { heard } = await listen(sniffer1, ['#', '+/+/+/+']);
    await plug2.publishAsync('zigbee2mqtt/plug2', JSON.stringify({ state: 'ON', secret: 'H2-live' }), { qos: 1 });
    await plug3.publishAsync('zigbee2mqtt/plug3', JSON.stringify({ state: 'ON', secret: 'H3-live' }), { qos: 1 });
    // Published after the others' messages had reached the broker, so it arrives after them too.
    await plug1.publishAsync('zigbee2mqtt/plug1', 'first-live', { qos: 1 });
    await waitFor(heard, 'zigbee2mqtt/plug1', 'first-live');
    assert.deepEqual(secrets(heard, 'H2-live', 'H3-live'), [], 'no other household reached it');
    assert.ok(
      heard.every((m) => !m.topic.startsWith('$')),
      `# does not reach the broker's $SYS topics: ${heard.map((m) => m.topic).join(', ')}`,
    );
  });

  it("a device of another household subscribed to # hears its own household's messages only", async () => {
    const { heard } = await listen(sniffer2, ['#', '+/+/+/+']);
    await plug1.publishAsync('zigbee2mqtt/plug1', JSON.stringify({ secret: 'H1-live' }), { qos: 1 });
    await plug3.publishAsync('zigbee2mqtt/plug3', JSON.stringify({ secret: 'H3-live' }), { qos: 1 });
    await plug2.publishAsync('zigbee2mqtt/plug2', 'second-live', { qos: 1 });
    // Under its plain name: the namespace stays invisible to the household's own devices.
    await waitFor(heard, 'zigbee2mqtt/plug2', 'second-live');
    assert.deepEqual(secrets(heard, 'H1-live', 'H3-live'), []);
  });

  it("retained messages delivered on subscribe are only the subscriber's household's", async () => {
    await plug1.publishAsync('zigbee2mqtt/plug1', 'first-kept', { qos: 1, retain: true });
    await plug2.publishAsync('zigbee2mqtt/plug2', JSON.stringify({ secret: 'H2-kept' }), { qos: 1, retain: true });
    await plug3.publishAsync('zigbee2mqtt/plug3', JSON.stringify({ secret: 'H3-kept' }), { qos: 1, retain: true });

    const first = await listen(sniffer1, ['#']);
    await waitFor(first.heard, 'zigbee2mqtt/plug1', 'first-kept');
    // The retained ones come in one stream: a marker sent now arrives after all of them.
    await plug1.publishAsync('zigbee2mqtt/plug1', 'first-after', { qos: 1 });
    await waitFor(first.heard, 'zigbee2mqtt/plug1', 'first-after');
    assert.deepEqual(secrets(first.heard, 'H2-kept', 'H3-kept'), []);

    const second = await listen(sniffer2, ['#']);
    const own = await waitFor(second.heard, 'zigbee2mqtt/plug2', JSON.stringify({ secret: 'H2-kept' }));
    assert.equal(own.retain, true);
    await plug2.publishAsync('zigbee2mqtt/plug2', 'second-after', { qos: 1 });
    await waitFor(second.heard, 'zigbee2mqtt/plug2', 'second-after');
    assert.deepEqual(secrets(second.heard, 'first-kept', 'H3-kept'), []);
  });

  it("a device may not read the broker's $SYS topics, which name every household's clients", async () => {
    const made = await call(hub.ownerToken, '/api/devices', { name: 'sys', publish: [], subscribe: ['$SYS/#'] });
    assert.equal(made.status, 400, 'such an account is refused');
    assert.equal(
      ((await call(hub.ownerToken, '/api/devices')).body as unknown as Json[]).some((d) => d.name === 'sys'),
      false,
    );
    // `#` in its list does not stretch to them either.
    const sniffer = await connect(sniffer1);
    for (const filter of ['$SYS/#', '$SYS/+/new/clients']) {
      const granted = await sniffer.subscribeAsync(filter).then(
        (g) => g[0].qos,
        () => 128,
      );
      assert.equal(granted, 128, filter);
    }
  });

  it("a device may not publish on $SYS, where the broker would end another household's connection", async () => {
    const bridge = await connect(await device('first', 'bridge', { publish: ['#'], subscribe: ['bridge/#'] }));
    const closed = (client: mqtt.MqttClient, who: string) =>
      new Promise<string>((resolve) => client.once('close', () => resolve(who)));
    const firstClosed = Promise.race([
      closed(bridge, 'the bridge'),
      closed(plug3, "the third household's plug"),
      new Promise<string>((resolve) => setTimeout(() => resolve('no one'), 3000)),
    ]);
    // A client id on $SYS/<another broker>/new/clients is one aedes takes to have moved there.
    bridge.publish('$SYS/elsewhere/new/clients', plug3.options.clientId as string, { qos: 1 });
    assert.equal(await firstClosed, 'the bridge', 'a refused publish ends the connection that made it');
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(plug3.connected, true, "the third household's plug is still connected");
  });

  it("the hub itself still reads every household's devices", async () => {
    const discover = async (household: keyof typeof households, name: string) => {
      // A device of its own: this test does not lean on the connections the others used.
      const client = await connect(await device(household, name));
      const config = {
        name: null,
        unique_id: `${name}_switch`,
        command_topic: `zigbee2mqtt/${name}/set`,
        state_topic: `zigbee2mqtt/${name}`,
        value_template: '{{ value_json.state }}',
        device: { identifiers: [name], name },
      };
      await client.publishAsync(`homeassistant/switch/${name}/switch/config`, JSON.stringify(config), {
        qos: 1,
        retain: true,
      });
      await eventually(
        async () => {
          await client.publishAsync(`zigbee2mqtt/${name}`, JSON.stringify({ state: 'ON' }), { qos: 1 });
          const things = (await call(households[household].token, '/api/things')).body as unknown as Json[];
          return things.find((t) => t.name === name && (t.state as Json)['switch.on'] === true);
        },
        { what: `${name} discovered in the ${household} household` },
      );
    };
    await discover('first', 'lamp1');
    await discover('second', 'lamp2');
    await discover('third', 'lamp3');
  });
});
