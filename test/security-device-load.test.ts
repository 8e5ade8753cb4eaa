import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import mqtt from 'mqtt';
import { defaultAcl, type MqttDevice } from '../src/auth/devices.ts';
import type { Hub } from '../src/core/hub.ts';
import { createLogger, type LogLine } from '../src/core/log.ts';
import { openStore } from '../src/store/index.ts';
import { createTriad } from '../src/triad.ts';
import { tempDir } from './helpers/hub-process.ts';

type Json = Record<string, unknown>;

/**
 * Device accounts stored by an older Triad, which let a name or base topic holding + or # become
 * a wildcard in the account's ACL: the hub restarted on that data gives them no topic at all, and
 * says so, while accounts made correctly carry on.
 */

const PASSWORD = 'an-old-device-password-0123456789';
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/** An account as an older Triad stored it: no base topic kept, lists made from `base`. */
function oldAccount(householdId: string, name: string, base: string, nodeId: string): MqttDevice {
  return {
    id: `dev_old_${sha256(name).slice(0, 8)}`,
    householdId,
    name,
    username: `old-${sha256(name).slice(0, 6)}`,
    secretHash: sha256(PASSWORD),
    ...defaultAcl(base, nodeId),
    createdAt: Date.parse('2025-06-01T00:00:00Z'),
  };
}

describe('security: device accounts stored before + and # were refused', () => {
  let dataDir: string;
  let hub: Hub;
  const lines: LogLine[] = [];
  let householdId: string;
  let porch: Json;
  let lamp: Json;
  const wildcards: MqttDevice[] = [];
  let oldButSound: MqttDevice;
  let ownLists: MqttDevice;

  const start = () => {
    const next = createTriad({
      dataDir,
      http: { port: 0, host: '127.0.0.1' },
      mqtt: { port: 0, host: '127.0.0.1' },
      log: createLogger({ level: 'error', sink: (line) => lines.push(line) }),
      rateLimits: { api: { burst: 100_000, perSecond: 100_000 } },
    });
    return next.start().then(() => next);
  };
  const call = async (path: string, init: RequestInit & { json?: unknown } = {}) => {
    const headers = new Headers(init.headers);
    headers.set('authorization', `Bearer ${hub.ownerToken}`);
    if (init.json !== undefined) headers.set('content-type', 'application/json');
    const body = init.json === undefined ? init.body : JSON.stringify(init.json);
    const res = await fetch(hub.httpUrl + path, { ...init, headers, body });
    return { status: res.status, body: (await res.json()) as Json & Json[] };
  };
  const connect = (username: string, password: string) =>
    mqtt.connectAsync(hub.mqttUrl, { username, password, reconnectPeriod: 0, connectTimeout: 2000 });
  /** What the broker grants a subscription: its QoS, or 128 when it refuses. */
  const granted = (client: mqtt.MqttClient, filter: string) =>
    client.subscribeAsync(filter).then(
      (grants) => grants[0].qos as number,
      () => 128,
    );

  before(async () => {
    dataDir = await tempDir();
    hub = await start();
    householdId = hub.householdId;
    // Made by this Triad: a plain one, and one whose name holds # but whose base topic was given.
    const made = await call('/api/devices', { method: 'POST', json: { name: 'Porch' } });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    porch = made.body;
    const hashed = await call('/api/devices', {
      method: 'POST',
      json: { name: 'Lamp #2', baseTopic: 'zigbee2mqtt/lamp2' },
    });
    assert.equal(hashed.status, 201, JSON.stringify(hashed.body));
    lamp = hashed.body;
    await hub.stop();

    // What an older Triad wrote, straight into the store the hub keeps its accounts in.
    wildcards.push(
      oldAccount(householdId, '#', 'zigbee2mqtt/#', 'device'),
      oldAccount(householdId, '+', 'zigbee2mqtt/+', 'device'),
      oldAccount(householdId, 'Hall/+', 'zigbee2mqtt/Hall/+', 'hall'),
    );
    oldButSound = oldAccount(householdId, 'Garage #1', 'zigbee2mqtt/garage1', 'garage-1');
    // Lists the owner gave (no default form), under a name holding #: the name never became a topic.
    ownLists = {
      ...oldAccount(householdId, 'Shed #3', 'unused', 'unused'),
      publish: ['shed/three/state'],
      subscribe: ['shed/three/set'],
    };
    const store = await openStore({ kind: 'sqlite', file: join(dataDir, 'triad.db') });
    try {
      for (const device of [...wildcards, oldButSound, ownLists]) {
        await store.saveAccountRecord({
          kind: 'device',
          householdId,
          id: device.id,
          body: device as unknown as Json,
          createdAt: device.createdAt,
        });
      }
    } finally {
      await store.close();
    }
    hub = await start();
  });
  after(async () => {
    await hub?.stop();
  });

  it('gives an account whose base topic held + or # no topic at all, and the log says to re-create it', async () => {
    const listener = await connect(porch.username as string, porch.password as string);
    assert.equal(await granted(listener, 'zigbee2mqtt/Porch/set'), 0, 'a sound account keeps its own topics');
    const heard: string[] = [];
    listener.on('message', (topic) => heard.push(topic));

    for (const device of wildcards) {
      const client = await connect(device.username, PASSWORD);
      for (const filter of ['#', 'zigbee2mqtt/#', 'zigbee2mqtt/Porch/set', device.subscribe[0], device.publish[0]]) {
        assert.equal(await granted(client, filter), 128, `${device.name} may not subscribe to ${filter}`);
      }
      // A refused publish ends the connection; what it sent reaches nobody.
      const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
      client.publish('zigbee2mqtt/Porch/set', JSON.stringify({ state: 'ON' }), { qos: 1 });
      await closed;
      await client.endAsync(true);

      const logged = lines.filter((l) => l.level === 'error' && l.fields?.id === device.id);
      assert.equal(logged.length, 1, `one error for ${device.name}: ${JSON.stringify(lines)}`);
      assert.match(logged[0].message, /must be re-created/);
      assert.match(logged[0].message, /\+ or #/);
      assert.ok(logged[0].message.includes(JSON.stringify(device.name)), logged[0].message);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.deepEqual(heard, [], 'no wildcard account reached another device');
    await listener.endAsync();
  });

  it('keeps the stored accounts (the owner removes or re-creates them), listed with no topics', async () => {
    const listed = (await call('/api/devices')).body as unknown as Json[];
    for (const device of wildcards) {
      const entry = listed.find((d) => d.id === device.id);
      assert.ok(entry, `${device.name} is still listed`);
      assert.deepEqual([entry.publish, entry.subscribe], [[], []]);
    }
    const store = await openStore({ kind: 'sqlite', file: join(dataDir, 'triad.db') });
    try {
      const stored = await store.listAccountRecords('device', householdId);
      for (const device of wildcards) {
        assert.deepEqual(
          stored.find((r) => r.id === device.id)?.body,
          device as unknown as Json,
          'unchanged in the store',
        );
      }
    } finally {
      await store.close();
    }
  });

  it('leaves sound accounts alone, old or new, even when their name holds + or #', async () => {
    assert.equal(lines.filter((l) => [lamp.id, porch.id, oldButSound.id].includes(l.fields?.id)).length, 0);
    const newer = await connect(lamp.username as string, lamp.password as string);
    assert.equal(await granted(newer, 'zigbee2mqtt/lamp2/set'), 0);
    await newer.publishAsync('zigbee2mqtt/lamp2', JSON.stringify({ state: 'OFF' }), { qos: 1 });
    assert.ok(newer.connected, 'its own state is allowed');
    await newer.endAsync();
    const older = await connect(oldButSound.username, PASSWORD);
    assert.equal(await granted(older, 'zigbee2mqtt/garage1/set'), 0);
    assert.equal(await granted(older, 'zigbee2mqtt/Porch/set'), 128, 'and nothing beyond them');
    await older.endAsync();
    assert.equal(lines.filter((l) => l.fields?.id === ownLists.id).length, 0, 'lists of its own, name with #: kept');
    const shed = await connect(ownLists.username, PASSWORD);
    assert.equal(await granted(shed, 'shed/three/set'), 0);
    assert.equal(await granted(shed, 'shed/#'), 128);
    await shed.endAsync();
  });
});
