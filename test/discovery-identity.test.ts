import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import mqtt, { type MqttClient } from 'mqtt';
import { Hub } from '../src/core/hub.ts';
import { createLogger } from '../src/core/log.ts';
import { openStore } from '../src/store/index.ts';
import { eventually, tempDir } from './helpers/hub-process.ts';

type Json = Record<string, unknown>;

/**
 * A device that announces itself by other identifiers on the same config topic (Zigbee2MQTT's
 * `zigbee2mqtt_0x…` becoming `0x…`) keeps its thing: the same id, so the rules and history on it
 * carry on, and no second thing after a restart. A thing an earlier build left under the hashed
 * id for such a device is swept once the device takes its own id back. A real in-process hub with
 * its embedded broker and a real MQTT client.
 */
describe('discovery: a device that changes its identifiers keeps its thing', () => {
  let dataDir: string;
  let hub: Hub;
  let device: MqttClient;
  const topic = 'homeassistant/switch/kettle/config';
  const removed: string[] = [];

  const start = async () => {
    const next = new Hub({
      dataDir,
      http: { port: 0, host: '127.0.0.1' },
      mqtt: { port: 0, host: '127.0.0.1', allowAnonymous: true },
      log: createLogger({ level: 'error' }),
    });
    await next.start();
    next.bus.subscribe((event) => {
      if (event.type === 'thing.removed' && event.thing?.startsWith('kettle')) removed.push(event.thing);
    });
    device = await mqtt.connectAsync(next.mqttUrl, { reconnectPeriod: 0, connectTimeout: 2000 });
    return next;
  };
  const stop = async () => {
    await device.endAsync(true);
    await hub.stop();
  };
  const announce = (ids: string[]) =>
    device.publishAsync(
      topic,
      JSON.stringify({ name: 'Kettle', stat_t: 'kettle/state', cmd_t: 'kettle/set', dev: { ids, name: 'Kettle' } }),
      { qos: 1, retain: true },
    );
  const kettles = () =>
    hub.twins
      .list(hub.householdId)
      .map((twin) => twin.thing)
      .filter((thing) => thing.id.startsWith('kettle'));
  const identifiers = () => (hub.twins.get(hub.householdId, 'kettle')?.thing.meta?.device as Json)?.identifiers;

  before(async () => {
    dataDir = await tempDir('triad-discovery-identity-');
    hub = await start();
    await announce(['zigbee2mqtt_0x01']);
    await eventually(() => hub.twins.get(hub.householdId, 'kettle'), { what: 'the kettle' });
    await device.publishAsync('kettle/state', 'ON', { qos: 1, retain: true });
    await eventually(() => hub.twins.value(hub.householdId, 'kettle', 'switch.on') === true, { what: 'the kettle on' });
  });

  after(async () => {
    await device?.endAsync(true).catch(() => {});
    await hub?.stop();
  });

  it('keeps the id when the same config topic names the device by other identifiers', async () => {
    const createdAt = hub.twins.get(hub.householdId, 'kettle')?.thing.createdAt;
    await announce(['0x01']);
    await eventually(() => JSON.stringify(identifiers()) === '["0x01"]', { what: 'the new identifiers' });
    assert.deepEqual(
      kettles().map((thing) => thing.id),
      ['kettle'],
    );
    assert.deepEqual(removed, [], 'the thing was never removed');
    assert.equal(hub.twins.get(hub.householdId, 'kettle')?.thing.createdAt, createdAt, 'the same thing');
    assert.equal(hub.twins.value(hub.householdId, 'kettle', 'switch.on'), true, 'its state kept');
  });

  it('is one thing after a restart', async () => {
    await stop();
    hub = await start();
    // Read once its retained config is: its state topic is subscribed only then.
    await device.publishAsync('kettle/state', 'OFF', { qos: 1 });
    await eventually(() => hub.twins.value(hub.householdId, 'kettle', 'switch.on') === false, {
      what: 'the kettle read',
    });
    assert.deepEqual(identifiers(), ['0x01']);
    assert.deepEqual(
      kettles().map((thing) => thing.id),
      ['kettle'],
    );
  });

  it('sweeps the thing an earlier build left under the hashed id, and keeps the readable one', async () => {
    await stop();
    // What an earlier build stored: `kettle` still made for the old identifiers, and the device's
    // current identifiers on a second thing under the hashed id.
    const store = await openStore({ kind: 'sqlite', file: join(dataDir, 'triad.db') });
    const orphan = `kettle-${createHash('sha256').update('device:0x01').digest('hex').slice(0, 6)}`;
    try {
      const kettle = (await store.listThings(hub.householdId)).find((thing) => thing.id === 'kettle');
      assert.ok(kettle?.meta);
      await store.saveThing({ ...kettle, meta: { ...kettle.meta, claimant: 'device:zigbee2mqtt_0x01' } });
      await store.saveThing({ ...kettle, id: orphan, meta: { ...kettle.meta, claimant: 'device:0x01' } });
    } finally {
      await store.close();
    }
    hub = await start();
    await eventually(() => (hub.twins.get(hub.householdId, 'kettle')?.thing.meta?.claimant === 'device:0x01' ? 1 : 0), {
      what: 'the kettle taken back',
    });
    await eventually(() => kettles().length === 1, { what: `${orphan} removed` });
    assert.deepEqual(
      kettles().map((thing) => thing.id),
      ['kettle'],
    );
  });
});
