import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
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

type Json = Record<string, unknown>;

/**
 * A command accepted moments before the hub was killed is sent again after the restart, but only
 * if whoever asked for it may still run it then: a guest whose pass ended meanwhile, or a person
 * whose account was removed, must not switch anything by a command the hub kept for them. A real
 * hub process killed and started again on the same data folder, a real MQTT light on its broker.
 */
describe('security: a command resent after a restart is checked again', () => {
  const hubs: HubProcess[] = [];
  let light: MqttClient | undefined;

  after(async () => {
    await light?.endAsync(true);
    for (const hub of hubs) if (hub.child.exitCode === null && hub.child.signalCode === null) await hub.stop('SIGKILL');
  });

  it("fails an ended pass's and a removed person's commands, and still sends the owner's", async () => {
    const dataDir = await tempDir('triad-resend-recheck-');
    const { args, mqttUrl } = await restartableHub(dataDir, { commandTimeoutMs: 25_000 });
    let hub = await startHubProcess({ dataDir, args });
    hubs.push(hub);
    const json = async (response: Promise<Response>, status: number) => {
      const res = await response;
      const text = await res.text();
      assert.equal(res.status, status, text);
      return JSON.parse(text) as Json;
    };
    const post = (path: string, body: unknown, token = hub.token) =>
      hub.api(path, { method: 'POST', body: JSON.stringify(body), headers: { authorization: `Bearer ${token}` } });

    // A Zigbee2MQTT-style light that notes every command it hears after the restart and never answers.
    const login = await deviceLogin(hub, 'Study light', {
      publish: ['zigbee2mqtt/#', 'homeassistant/#'],
      subscribe: ['zigbee2mqtt/#'],
    });
    let listening = false;
    const heard: string[] = [];
    light = await mqtt.connectAsync(mqttUrl, {
      clientId: `recheck-${randomBytes(3).toString('hex')}`,
      ...login,
      reconnectPeriod: 100,
    });
    const client = light;
    client.on('connect', () => client.subscribe('zigbee2mqtt/Study/set', { qos: 1 }));
    client.on('message', (topic, payload) => {
      if (listening) heard.push(`${topic} ${payload.toString()}`);
    });
    await client.subscribeAsync('zigbee2mqtt/Study/set', { qos: 1 });
    const config = {
      name: null,
      unique_id: 'study_light',
      command_topic: 'zigbee2mqtt/Study/set',
      state_topic: 'zigbee2mqtt/Study',
      schema: 'json',
      device: { identifiers: ['study'], name: 'Study' },
    };
    await client.publishAsync('homeassistant/light/study/light/config', JSON.stringify(config), {
      retain: true,
      qos: 1,
    });
    await client.publishAsync('zigbee2mqtt/Study', JSON.stringify({ state: 'OFF' }), { retain: true, qos: 1 });
    const thing = await eventually(
      async () => {
        const things = (await (await hub.api('/api/things')).json()) as Array<Json & { state: Json }>;
        return things.find((t) => t.name === 'Study' && t.state['light.on'] === false);
      },
      { what: 'the study light to be discovered', timeoutMs: 10_000 },
    );
    const action = `/api/things/${thing.id}/actions/turn_on`;

    const sam = await json(post('/api/users', { name: 'Sam', role: 'adult', password: 'Sam-secret-pw-1' }), 201);
    const samToken = (await json(post('/api/tokens', { user: sam.id, name: "Sam's phone" }), 201)).token as string;
    // A pass whose window ends a few seconds from now: before the restarted hub sends anything.
    const pass = await json(
      post('/api/guest-passes', {
        name: 'Plumber',
        things: [thing.id],
        actions: ['turn_on'],
        from: new Date(Date.now() - 60_000).toISOString(),
        to: new Date(Date.now() + 4_000).toISOString(),
      }),
      201,
    );

    const [guests, sams, owners] = await Promise.all(
      [pass.token as string, samToken, hub.token].map(async (token) => {
        const res = await post(action, {}, token);
        assert.equal(res.status, 202);
        return res;
      }),
    );
    hub.child.kill('SIGKILL');
    await hub.stop('SIGKILL');
    const ids = await Promise.all(
      [guests, sams, owners].map(async (r) => ((await r.json()) as Json).commandId as string),
    );
    const db = new Database(join(dataDir, 'triad.db'), { readonly: true });
    for (const id of ids) {
      const row = db.prepare('SELECT status FROM commands WHERE id = ?').get(id) as { status: string };
      assert.equal(row?.status, 'pending', 'the crash came before any `sent` was written');
    }
    db.close();

    listening = true;
    hub = await startHubProcess({ dataDir, args });
    hubs.push(hub);
    const removed = await hub.api(`/api/users/${sam.id}`, { method: 'DELETE' });
    assert.ok(removed.status < 300, await removed.text());

    const [guest, adult, owner] = ids;
    const status = async (id: string) => (await (await hub.api(`/api/commands/${id}`)).json()) as Json;
    await eventually(async () => (await status(owner)).status === 'sent', {
      what: "the owner's command to be sent again",
      timeoutMs: 12_000,
    });
    const guestCommand = await eventually(async () => {
      const command = await status(guest);
      return command.status === 'failed' && command;
    });
    assert.match(String(guestCommand.error), /guest pass/);
    const samCommand = await eventually(async () => {
      const command = await status(adult);
      return command.status === 'failed' && command;
    });
    assert.match(String(samCommand.error), /removed|no longer/);
    // Give any stray resend time to reach the light: only the owner's went out.
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(heard.length, 1, `the light heard only the owner's command: ${heard.join(', ')}`);

    const audit = (await (await hub.api('/api/audit')).json()) as Array<Json & { actor: Json }>;
    const failedGuest = audit.find((l) => l.commandId === guest && l.result === 'failed');
    assert.equal(failedGuest?.actor.kind, 'pass', JSON.stringify(audit));
    assert.match(String(failedGuest?.reason), /guest pass/);
    const failedSam = audit.find((l) => l.commandId === adult && l.result === 'failed');
    assert.equal(failedSam?.actor.id, sam.id, JSON.stringify(audit));
    assert.equal(await hub.stop('SIGTERM'), 0);
  });
});
