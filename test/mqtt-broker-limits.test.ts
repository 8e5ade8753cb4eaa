import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import mqtt from 'mqtt';
import { EmbeddedBroker, MAX_PACKET_BYTES } from '../src/adapters/mqtt/broker.ts';
import { RetainedStore } from '../src/adapters/mqtt/retained-store.ts';
import type { Hub } from '../src/core/hub.ts';
import { createLogger, type LogLine } from '../src/core/log.ts';
import { createTriad } from '../src/triad.ts';
import { eventually, freePort, tempDir } from './helpers/hub-process.ts';
import { needService, services } from './helpers/services.ts';

/**
 * The embedded broker's own limits, in a real hub with real MQTT clients: no packet over
 * MAX_PACKET_BYTES gets in (the client that sends one is disconnected, and the log says why),
 * and no client, whichever household or login, reads the broker's `$SYS` topics.
 */

type Json = Record<string, unknown>;
type Account = { username: string; password: string };
type Heard = { topic: string; bytes: number; retain: boolean };

describe('embedded broker: packet size limit and $SYS', () => {
  let hub: Hub;
  const lines: LogLine[] = [];
  const clients: mqtt.MqttClient[] = [];
  let secondToken: string;

  const call = async (token: string, path: string, json?: unknown) => {
    const res = await fetch(hub.httpUrl + path, {
      method: json === undefined ? 'GET' : 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: json === undefined ? undefined : JSON.stringify(json),
    });
    return { status: res.status, body: (await res.json()) as Json };
  };
  const made = async (token: string, path: string, json: unknown) => {
    const res = await call(token, path, json);
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return res.body;
  };
  const device = (token: string, name: string, topics: Json) =>
    made(token, '/api/devices', { name, ...topics }) as Promise<unknown> as Promise<Account>;
  const tracker = async (person: string, name: string) =>
    (await made(hub.ownerToken, `/api/people/${person}/trackers`, { name })) as unknown as Account;
  const connect = async (account?: Account) => {
    const client = await mqtt.connectAsync(hub.mqttUrl, { ...account, reconnectPeriod: 0, connectTimeout: 2000 });
    // A client the broker cuts off may see its socket reset mid-write.
    client.on('error', () => {});
    clients.push(client);
    return client;
  };
  const listen = (client: mqtt.MqttClient) => {
    const heard: Heard[] = [];
    client.on('message', (topic, payload, packet) =>
      heard.push({ topic, bytes: payload.length, retain: packet.retain }),
    );
    return heard;
  };
  /** What the broker grants a subscription: its QoS, or 128 when it refuses. */
  const granted = (client: mqtt.MqttClient, filter: string) =>
    client.subscribeAsync(filter, { qos: 1 }).then(
      (grants) => grants[0].qos as number,
      () => 128,
    );

  before(async () => {
    hub = createTriad({
      dataDir: await tempDir(),
      http: { port: 0, host: '127.0.0.1' },
      mqtt: { port: 0, host: '127.0.0.1', allowAnonymous: true },
      log: createLogger({ level: 'warn', sink: (line) => lines.push(line) }),
      rateLimits: { api: { burst: 100_000, perSecond: 100_000 } },
    });
    await hub.start();
    const household = await made(hub.ownerToken, '/api/households', { name: 'Neighbours' });
    secondToken = household.token as string;
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.endAsync(true)));
    await hub.stop();
  });

  it('a tracker sending a retained message of a few MB is disconnected; the message goes nowhere', async () => {
    const { id: person } = await made(hub.ownerToken, '/api/people', { name: 'Alex' });
    const phoneLogin = await tracker(person as string, 'phone');
    const watchLogin = await tracker(person as string, 'watch');
    const watch = await connect(watchLogin);
    const heard = listen(watch);
    assert.equal(await granted(watch, 'owntracks/#'), 1);

    const phone = await connect(phoneLogin);
    const big = Buffer.alloc(3 * 1024 * 1024, 'x');
    phone.publish(`owntracks/${phoneLogin.username}/dev`, big, { qos: 1, retain: true });
    await eventually(() => !phone.connected, { what: 'the phone disconnected by the broker' });

    // The watch is still connected and hears what comes next, retained too.
    const marker = `owntracks/${watchLogin.username}/dev`;
    await watch.publishAsync(marker, '{"_type":"lwt"}', { qos: 1, retain: true });
    await eventually(() => heard.find((m) => m.topic === marker), { what: 'the marker' });
    assert.deepEqual(
      heard.filter((m) => m.bytes > MAX_PACKET_BYTES),
      [],
      'no subscriber got it',
    );
    const late = await connect(watchLogin);
    const retained = listen(late);
    await granted(late, 'owntracks/#');
    await eventually(() => retained.find((m) => m.topic === marker), { what: 'the retained marker' });
    assert.deepEqual(
      retained.filter((m) => m.topic.includes(phoneLogin.username)),
      [],
      'nothing of it was kept retained',
    );

    const said = lines.filter((l) => l.fields?.username === phoneLogin.username);
    assert.equal(said.length, 1, JSON.stringify(said));
    assert.match(said[0].message, /disconnected: it sent a packet of \d+ bytes, over the broker's limit of 262144/);
    assert.equal((await call(hub.ownerToken, '/api/people')).status, 200, 'the hub carries on');
  });

  it('a message under the limit, bigger than any payload the hub reads, still gets through', async () => {
    const account = await device(hub.ownerToken, 'recorder', { publish: ['big/out'], subscribe: ['big/out'] });
    const client = await connect(account);
    const heard = listen(client);
    assert.equal(await granted(client, 'big/out'), 1);
    await client.publishAsync('big/out', Buffer.alloc(200 * 1024, 'y'), { qos: 1 });
    await eventually(() => heard.find((m) => m.bytes === 200 * 1024), { what: 'the 200 KiB message' });
    assert.ok(client.connected);
  });

  it('no household client reads $SYS: a device of either household, a tracker, an anonymous client', async () => {
    const wide = { publish: ['wide/out'], subscribe: ['#'] };
    const { id: person } = await made(hub.ownerToken, '/api/people', { name: 'Sam' });
    const readers = [
      await connect(await device(hub.ownerToken, 'wide1', wide)),
      await connect(await device(secondToken, 'wide2', wide)),
      await connect(await tracker(person as string, 'phone')),
      await connect(),
    ];
    const heard = readers.map(listen);
    for (const [i, reader] of readers.entries()) {
      for (const filter of ['$SYS/+/new/clients', '$SYS/#', '$SYS'])
        assert.equal(await granted(reader, filter), 128, `reader ${i} refused ${filter}`);
    }
    // Allowed, and in MQTT it does not match topics starting with `$`.
    await granted(readers[3], '#');
    // A new connection is announced on `$SYS/<broker>/new/clients`, with its client id.
    const newcomer = await connect();
    await newcomer.endAsync();
    await connect();
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.deepEqual(
      heard.flat().filter((m) => m.topic.startsWith('$')),
      [],
    );
  });

  it('a retained message over the limit, kept before there was one, is dropped at start', async () => {
    const file = join(await tempDir(), 'broker-retained.db');
    const kept = new RetainedStore(file);
    kept.record('zigbee2mqtt/huge', Buffer.alloc(MAX_PACKET_BYTES + 1, 'z'), 1);
    kept.record('zigbee2mqtt/plug', Buffer.from('{"state":"ON"}'), 1);
    kept.close();
    const said: LogLine[] = [];
    const broker = new EmbeddedBroker({
      port: await freePort(),
      host: '127.0.0.1',
      retained: new RetainedStore(file),
      log: createLogger({ level: 'warn', sink: (line) => said.push(line) }),
    });
    await broker.start();
    try {
      const client = await mqtt.connectAsync(broker.url, { reconnectPeriod: 0 });
      const heard = listen(client);
      await client.subscribeAsync('zigbee2mqtt/#', { qos: 1 });
      await eventually(() => heard.find((m) => m.topic === 'zigbee2mqtt/plug'), { what: 'the plug' });
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.deepEqual(
        heard.map((m) => m.topic),
        ['zigbee2mqtt/plug'],
      );
      await client.endAsync();
      assert.equal(said.filter((l) => l.fields?.topic === 'zigbee2mqtt/huge').length, 1);
    } finally {
      await broker.stop();
    }
    const after = new RetainedStore(file);
    assert.deepEqual(
      after.load().map((m) => m.topic),
      ['zigbee2mqtt/plug'],
      'and gone from the file',
    );
    after.close();
  });
});

describe("the first household's view of another broker (Mosquitto) leaves out $SYS", {
  skip: await needService('mqtt'),
}, () => {
  it('a subscription of the first household to $SYS hears nothing of it', async () => {
    const hub = createTriad({
      dataDir: await tempDir(),
      http: { port: 0, host: '127.0.0.1' },
      mqtt: { url: services.mqtt },
      log: createLogger({ level: 'silent' }),
    });
    await hub.start();
    try {
      const link = hub.services.mqttFor(hub.householdId);
      const heard: string[] = [];
      // Mosquitto keeps `$SYS/broker/version` retained: a subscription that reaches it gets it at once.
      await link.subscribe('$SYS/broker/#', (topic) => heard.push(topic));
      const marker = `triad-test/sys-${process.pid}-${Date.now()}`;
      await link.subscribe(marker, (topic) => heard.push(topic));
      await link.publish(marker, 'after', { qos: 1 });
      await eventually(() => heard.includes(marker), { what: 'the marker' });
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.deepEqual(heard, [marker]);
    } finally {
      await hub.stop();
    }
  });
});
