import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import mqtt, { type MqttClient } from 'mqtt';
import { EmbeddedBroker } from '../src/adapters/mqtt/broker.ts';
import { RetainedStore } from '../src/adapters/mqtt/retained-store.ts';
import { createLogger } from '../src/core/log.ts';
import { createTriad } from '../src/triad.ts';
import { freePort, tempDir } from './helpers/hub-process.ts';

async function client(url: string): Promise<MqttClient> {
  return mqtt.connectAsync(url, { clientId: `retained-${randomBytes(4).toString('hex')}`, reconnectPeriod: 0 });
}

/** What a new subscription to `filter` is handed at once: the retained messages, by topic. */
async function retainedUnder(url: string, filter: string): Promise<Map<string, string>> {
  const c = await client(url);
  const seen = new Map<string, string>();
  c.on('message', (topic, payload, packet) => {
    if (packet.retain) seen.set(topic, payload.toString());
  });
  await c.subscribeAsync(filter, { qos: 1 });
  // Retained messages follow the SUBACK; a round trip of our own on another topic comes after them.
  await c.subscribeAsync(`probe/${randomBytes(3).toString('hex')}`, { qos: 1 });
  await new Promise((r) => setTimeout(r, 100));
  await c.endAsync();
  return seen;
}

describe('the embedded broker keeps retained messages across a restart', () => {
  test('a retained config and state come back; a cleared topic and a plain message do not', async () => {
    const file = join(await tempDir(), 'broker-retained.db');
    const port = await freePort();
    const first = new EmbeddedBroker({ port, host: '127.0.0.1', retained: new RetainedStore(file) });
    await first.start();
    const device = await client(first.url);
    await device.publishAsync('homeassistant/light/x/light/config', '{"state_topic":"z2m/x"}', {
      retain: true,
      qos: 1,
    });
    await device.publishAsync('z2m/x', '{"state":"ON"}', { retain: true, qos: 1 });
    await device.publishAsync('z2m/x', '{"state":"OFF"}', { retain: true, qos: 1 });
    await device.publishAsync('z2m/gone', 'soon cleared', { retain: true, qos: 1 });
    await device.publishAsync('z2m/gone', '', { retain: true, qos: 1 });
    await device.publishAsync('z2m/plain', 'not retained', { qos: 1 });
    await device.endAsync();
    // Stopped at once, within the write interval: what is held is written on the way down.
    await first.stop();

    const second = new EmbeddedBroker({ port, host: '127.0.0.1', retained: new RetainedStore(file) });
    await second.start();
    try {
      const seen = await retainedUnder(second.url, '#');
      assert.deepEqual(
        Object.fromEntries(seen),
        { 'homeassistant/light/x/light/config': '{"state_topic":"z2m/x"}', 'z2m/x': '{"state":"OFF"}' },
        'the latest of each retained topic, nothing cleared, nothing that was not retained',
      );
      // And one retained after the restart is kept for the next one.
      const later = await client(second.url);
      await later.publishAsync('z2m/x', '{"state":"ON"}', { retain: true, qos: 1 });
      await later.endAsync();
    } finally {
      await second.stop();
    }
    const third = new EmbeddedBroker({ port, host: '127.0.0.1', retained: new RetainedStore(file) });
    await third.start();
    try {
      assert.equal((await retainedUnder(third.url, 'z2m/x')).get('z2m/x'), '{"state":"ON"}');
    } finally {
      await third.stop();
    }
  });

  test('changes are written together after the interval, the latest per topic, and a payload is copied', async () => {
    const file = join(await tempDir(), 'broker-retained.db');
    const store = new RetainedStore(file);
    const payload = Buffer.from('one');
    store.record('a', payload, 1);
    payload.write('two'); // the broker's buffer, reused after the call
    store.record('b', Buffer.from('x'), 0);
    store.record('b', Buffer.from(''), 0);
    const reader = new RetainedStore(file);
    assert.deepEqual(reader.load(), [], 'nothing written before the interval');
    await new Promise((r) => setTimeout(r, 1300));
    assert.deepEqual(
      reader.load().map((m) => [m.topic, m.payload.toString(), m.qos]),
      [['a', 'one', 1]],
    );
    store.record('a', Buffer.from(''), 0);
    store.close();
    assert.deepEqual(reader.load(), [], 'close writes what is held: the clear');
    store.record('c', Buffer.from('after close'), 0);
    assert.deepEqual(reader.load(), [], 'nothing is taken once closed');
    reader.close();
  });

  test('a file that is not a database does not keep the hub from starting: its broker runs on memory', async () => {
    const dataDir = await tempDir();
    const file = join(dataDir, 'broker-retained.db');
    await writeFile(file, 'not a database, whatever happened to it');
    assert.throws(() => new RetainedStore(file), /not a database/);
    const lines: string[] = [];
    const hub = createTriad({
      dataDir,
      http: { port: 0, host: '127.0.0.1' },
      mqtt: { port: 0, host: '127.0.0.1' },
      log: createLogger({ level: 'error', sink: (line) => lines.push(line.message) }),
    });
    await hub.start();
    try {
      assert.equal((await fetch(`${hub.httpUrl}/api/health`)).status, 200);
      assert.ok(
        lines.some((line) => line.includes('retained messages are kept in memory only')),
        lines.join('\n'),
      );
    } finally {
      await hub.stop();
    }
  });
});
