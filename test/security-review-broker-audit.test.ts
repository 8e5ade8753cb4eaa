import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import mqtt from 'mqtt';
import { BROKER_REFUSALS_PER_MINUTE } from '../src/auth/security.ts';
import type { Hub } from '../src/core/hub.ts';
import { ownerFetch } from './helpers/owner-api.ts';
import { startTriad } from './helpers/triad-hub.ts';

type Json = Record<string, unknown>;

/**
 * A device account that asks for topics outside its ACL, over and over with a new topic each
 * time: the broker refuses each, but the household's audit trail must not be the device's to fill.
 */
describe('security review: refused MQTT subscriptions in the audit trail', () => {
  let hub: Hub;

  before(async () => {
    hub = await startTriad();
  });

  after(async () => {
    await hub.stop();
  });

  it('a device refused on hundreds of topics leaves a bounded number of audit lines, saying the rest were left out', async () => {
    const made = await ownerFetch(hub, '/api/devices', 'POST', { name: 'Cheap plug' });
    assert.equal(made.status, 201);
    const device = (await made.json()) as Json;
    const client = await mqtt.connectAsync(hub.mqttUrl, {
      username: device.username as string,
      password: device.password as string,
      reconnectPeriod: 0,
      connectTimeout: 2000,
    });
    const topics = Array.from({ length: 300 }, (_, i) => `zigbee2mqtt/victim-${i}/set`);
    for (let i = 0; i < topics.length; i += 50) {
      // mqtt.js rejects a SUBACK whose grants are refusals (128).
      await assert.rejects(client.subscribeAsync(topics.slice(i, i + 50)), /Subscribe error/);
    }
    await client.endAsync();
    const audit = (await (await ownerFetch(hub, '/api/audit?limit=10000')).json()) as Json[];
    const refused = audit.filter((l) => l.via === 'mqtt' && (l.actor as Json).name === 'Cheap plug');
    assert.ok(refused.length >= 1, 'the refusals are on record');
    assert.equal(refused.length, BROKER_REFUSALS_PER_MINUTE, `audit lines for one device's refusals in a minute`);
    // Newest first: the last line recorded says that what came after it was left out.
    assert.match(refused[0].reason as string, /further refusals are left out of the trail until/);
    assert.match(refused[1].reason as string, /^subscribe on zigbee2mqtt\/victim-\d+\/set is outside/);
  });
});
