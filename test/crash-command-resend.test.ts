import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import mqtt, { type MqttClient } from 'mqtt';
import {
  deviceLogin,
  eventually,
  type HubProcess,
  restartableHub,
  startHubProcess,
  tempDir,
} from './helpers/hub-process.ts';

/**
 * A command acknowledged (202) moments before the hub was killed is still `pending` after the
 * restart (its `sent` is written within a short window the crash took). The hub sends it again:
 * then, not at once, when the devices have had time to reconnect to the embedded broker that
 * starts with the hub. Sent at once, nobody heard it and the acknowledged command expired.
 */
describe('a command left pending by a killed hub', () => {
  const hubs: HubProcess[] = [];
  let device: MqttClient | undefined;
  const dirs: string[] = [];

  after(async () => {
    await device?.endAsync(true);
    for (const hub of hubs) if (hub.child.exitCode === null && hub.child.signalCode === null) await hub.stop('SIGKILL');
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  it('is sent again once devices are back, and confirmed by the device', async () => {
    const dataDir = await tempDir('triad-crash-resend-');
    dirs.push(dataDir);
    const { args, mqttUrl } = await restartableHub(dataDir, { commandTimeoutMs: 20_000 });
    let hub = await startHubProcess({ dataDir, args });
    hubs.push(hub);
    const login = await deviceLogin(hub, 'lamp', { publish: ['resend/#', 'homeassistant/#'], subscribe: ['resend/#'] });

    // The lamp: cut off when the power goes (it hears nothing then), obeys and reports afterwards.
    let listening = false;
    const heard: number[] = [];
    const announce = (client: MqttClient) => {
      client.publish(
        'homeassistant/switch/resend-lamp/switch/config',
        JSON.stringify({
          unique_id: 'resend_lamp',
          name: null,
          command_topic: 'resend/lamp/set',
          state_topic: 'resend/lamp',
          payload_on: 'ON',
          payload_off: 'OFF',
          device: { identifiers: ['resend_lamp'], name: 'lamp', manufacturer: 'T', model: 'T' },
        }),
        { retain: true, qos: 1 },
      );
      client.subscribe('resend/lamp/set', { qos: 1 });
    };
    device = await mqtt.connectAsync(mqttUrl, {
      clientId: `resend-${randomBytes(3).toString('hex')}`,
      username: login.username,
      password: login.password,
      reconnectPeriod: 100,
    });
    const client = device;
    client.on('connect', () => announce(client));
    client.on('message', (topic, payload) => {
      if (topic !== 'resend/lamp/set' || !listening) return;
      heard.push(Date.now());
      client.publish('resend/lamp', payload.toString());
    });
    announce(client);
    await eventually(async () => (await hub.api('/api/things/lamp')).status === 200, {
      what: 'the lamp in /api/things',
      timeoutMs: 10_000,
    });
    await client.publishAsync('resend/lamp', 'OFF', { qos: 1 });
    await eventually(async () => {
      const lamp = (await (await hub.api('/api/things/lamp')).json()) as { state: Record<string, unknown> };
      return lamp.state['switch.on'] === false;
    });

    const response = await hub.api('/api/things/lamp/actions/turn_on', { method: 'POST', body: '{}' });
    assert.equal(response.status, 202);
    hub.child.kill('SIGKILL');
    const { commandId } = (await response.json()) as { commandId: string };
    await hub.stop('SIGKILL');

    // What the dead hub left: the command, acknowledged and stored, still pending.
    const copy = mkdtempSync(join(tmpdir(), 'triad-crash-copy-'));
    dirs.push(copy);
    cpSync(dataDir, copy, { recursive: true });
    const db = new Database(join(copy, 'triad.db'));
    const row = db.prepare('SELECT status FROM commands WHERE id = ?').get(commandId) as { status: string };
    db.close();
    assert.equal(row?.status, 'pending', 'the crash came before its `sent` was written');

    listening = true;
    hub = await startHubProcess({ dataDir, args });
    hubs.push(hub);
    await eventually(
      async () => {
        const command = (await (await hub.api(`/api/commands/${commandId}`)).json()) as { status: string };
        return command.status === 'confirmed';
      },
      { what: `command ${commandId} to be confirmed after the restart`, timeoutMs: 12_000 },
    );
    assert.equal(heard.length, 1, 'the lamp heard the command once, after the restart');
    assert.equal(await hub.stop('SIGTERM'), 0);
  });
});
