import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import mqtt from 'mqtt';
import type { Hub } from '../src/core/hub.ts';
import { eventually } from './helpers/hub-process.ts';
import { startTriad } from './helpers/triad-hub.ts';

/**
 * A device that keeps its MQTT session (`clean: false`) gets the QoS 1 messages that came while it
 * was away when it reconnects. In a household after the first, whose topics live under
 * `households/<id>/` on the broker, those must arrive under the names the device knows, as live
 * ones do, and never another household's.
 */

type Json = Record<string, unknown>;
type Account = { username: string; password: string };
type Heard = { topic: string; payload: string };

describe('MQTT: messages queued for a device that was away', () => {
  let hub: Hub;
  let second = { id: '', token: '' };
  const clients: mqtt.MqttClient[] = [];

  const call = async (token: string, path: string, json: unknown) => {
    const res = await fetch(hub.httpUrl + path, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(json),
    });
    const body = (await res.json()) as Json;
    assert.equal(res.status, 201, JSON.stringify(body));
    return body;
  };
  const device = async (token: string, name: string, topics: Json) =>
    (await call(token, '/api/devices', { name, ...topics })) as unknown as Account;
  /** Connects with a session the broker keeps, and records every message it is handed. */
  const connect = async (account: Account, clientId: string, heard: Heard[] = []) => {
    const client = await mqtt.connectAsync(hub.mqttUrl, {
      ...account,
      clientId,
      clean: false,
      reconnectPeriod: 0,
      connectTimeout: 2000,
    });
    client.on('message', (topic, payload) => heard.push({ topic, payload: payload.toString() }));
    clients.push(client);
    return { client, heard };
  };

  before(async () => {
    hub = await startTriad();
    const made = await call(hub.ownerToken, '/api/households', { name: 'Neighbours' });
    second = { id: (made.household as Json).id as string, token: made.token as string };
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.endAsync(true)));
    await hub.stop();
  });

  it('a device of a later household gets what came while it was away under its own topic names', async () => {
    const lamp = await device(second.token, 'lamp', { subscribe: ['lamp/set'] });
    const remote = await device(second.token, 'remote', { publish: ['lamp/set'] });
    const away = await connect(lamp, 'lamp-2');
    await away.client.subscribeAsync('lamp/set', { qos: 1 });
    await away.client.endAsync();

    const sender = (await connect(remote, 'remote-2')).client;
    await sender.publishAsync('lamp/set', 'ON', { qos: 1 });
    await sender.publishAsync('lamp/set', 'DIM', { qos: 1 });

    // Back, without subscribing again: the broker kept the subscription and the two messages.
    const back = await connect(lamp, 'lamp-2');
    await eventually(() => back.heard.length >= 2 || undefined, { what: 'the two queued messages' });
    assert.deepEqual(back.heard, [
      { topic: 'lamp/set', payload: 'ON' },
      { topic: 'lamp/set', payload: 'DIM' },
    ]);
  });

  it('a device of a later household that kept its session hears live messages after it reconnects', async () => {
    const fan = await device(second.token, 'fan', { subscribe: ['fan/set'] });
    const remote = await device(second.token, 'fan remote', { publish: ['fan/set'] });
    const first = await connect(fan, 'fan-2');
    await first.client.subscribeAsync('fan/set', { qos: 1 });
    await first.client.endAsync();
    // The broker restores the subscription it kept; the device does not subscribe again.
    const back = await connect(fan, 'fan-2');
    assert.equal(
      (back.client as unknown as { connackPacket?: { sessionPresent?: boolean } }).connackPacket?.sessionPresent,
      true,
    );
    const sender = (await connect(remote, 'fan-remote-2')).client;
    await sender.publishAsync('fan/set', 'ON', { qos: 1 });
    await eventually(() => back.heard.length >= 1 || undefined, { what: 'the live message' });
    assert.deepEqual(back.heard, [{ topic: 'fan/set', payload: 'ON' }]);
  });

  it("a first-household device that was away gets none of another household's queued messages", async () => {
    const logger = await device(hub.ownerToken, 'logger', { subscribe: ['#'] });
    const own = await device(hub.ownerToken, 'switch', { publish: ['switch/state'] });
    const neighbour = await device(second.token, 'neighbour', { publish: ['switch/state'] });
    const away = await connect(logger, 'logger-1');
    await away.client.subscribeAsync('#', { qos: 1 });
    await away.client.endAsync();

    await (await connect(neighbour, 'neighbour-1')).client.publishAsync('switch/state', 'THEIRS', { qos: 1 });
    await (await connect(own, 'switch-1')).client.publishAsync('switch/state', 'OURS', { qos: 1 });

    const back = await connect(logger, 'logger-1');
    await eventually(() => back.heard.find((m) => m.payload === 'OURS'), { what: "its own household's message" });
    assert.deepEqual(
      back.heard.filter((m) => m.payload === 'THEIRS' || m.topic.startsWith('households/')),
      [],
    );
  });
});
