import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import mqtt, { type MqttClient } from 'mqtt';
import { LOCK_FILE } from '../src/core/data-lock.ts';
import {
  deviceLogin,
  eventually,
  type HubProcess,
  restartableHub,
  startHubProcess,
  tempDir,
} from './helpers/hub-process.ts';

/**
 * "Nothing acknowledged is lost": a real `triad start` is killed with SIGKILL (a Raspberry Pi losing
 * power, as far as the process can tell) in the middle of load, and started again on the same data
 * folder. Every command that got its 202 is there with a sensible status, a rule's delay that came
 * due while the hub was down fires once (not twice, not never), history committed before the crash
 * is all there, the dead hub's lock is taken over, and the database is sound.
 */
describe('a hub killed mid-load and started again', () => {
  const hubs: HubProcess[] = [];
  let device: MqttClient | undefined;
  let dataDir = '';

  after(async () => {
    await device?.endAsync(true);
    for (const hub of hubs) if (hub.child.exitCode === null && hub.child.signalCode === null) await hub.stop('SIGKILL');
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('keeps every acknowledged command, its history and its timers across a SIGKILL', async () => {
    dataDir = await tempDir('triad-crash-');
    const { args, mqttUrl } = await restartableHub(dataDir, {
      commandTimeoutMs: 3000,
      rateLimits: { api: { burst: 10000, perSecond: 10000 } },
    });
    let hub = await startHubProcess({ dataDir, args });
    hubs.push(hub);

    const login = await deviceLogin(hub, 'crash devices', {
      publish: ['crash/#', 'homeassistant/#'],
      subscribe: ['crash/#'],
    });

    // A lamp that obeys and reports, a switch that never answers, and a counter sensor.
    const lampSets: Array<{ at: number; brightness?: number }> = [];
    const dev = (id: string) => ({ identifiers: [`crash_${id}`], name: id, manufacturer: 'T', model: 'T' });
    const announce = (client: MqttClient) => {
      const configs: Record<string, unknown> = {
        'homeassistant/light/crash-lamp/light/config': {
          unique_id: 'crash_lamp',
          name: null,
          schema: 'json',
          brightness: true,
          brightness_scale: 254,
          supported_color_modes: ['brightness'],
          command_topic: 'crash/lamp/set',
          state_topic: 'crash/lamp',
          device: dev('lamp'),
        },
        'homeassistant/switch/crash-dead/switch/config': {
          unique_id: 'crash_dead',
          name: null,
          command_topic: 'crash/dead/set',
          state_topic: 'crash/dead',
          payload_on: 'ON',
          payload_off: 'OFF',
          device: dev('dead'),
        },
        'homeassistant/sensor/crash-counter/count/config': {
          unique_id: 'crash_counter',
          object_id: 'counter',
          name: 'Count',
          state_topic: 'crash/counter',
          value_template: '{{ value_json.n }}',
          state_class: 'measurement',
          device: dev('counter'),
        },
      };
      for (const [topic, body] of Object.entries(configs))
        client.publish(topic, JSON.stringify(body), { retain: true, qos: 1 });
      client.subscribe('crash/lamp/set', { qos: 1 });
    };
    device = await mqtt.connectAsync(mqttUrl, {
      clientId: `crash-devices-${randomBytes(3).toString('hex')}`,
      username: login.username,
      password: login.password,
      reconnectPeriod: 100,
    });
    const client = device;
    client.on('connect', () => announce(client));
    client.on('message', (topic, payload) => {
      if (topic !== 'crash/lamp/set') return;
      const body = JSON.parse(payload.toString()) as { state?: string; brightness?: number };
      lampSets.push({ at: Date.now(), brightness: body.brightness });
      client.publish('crash/lamp', JSON.stringify({ state: body.state ?? 'ON', brightness: body.brightness ?? 254 }));
    });
    announce(client);
    await eventually(
      async () => {
        const ids = ((await (await hub.api('/api/things')).json()) as Array<{ id: string }>).map((t) => t.id);
        return ['lamp', 'dead', 'counter'].every((id) => ids.includes(id));
      },
      { what: 'the devices in /api/things', timeoutMs: 10_000 },
    );

    // A rule whose delay comes due while the hub is down.
    const rule = await hub.api('/api/automations', {
      method: 'POST',
      body: JSON.stringify({
        id: 'crash-delay',
        mode: 'parallel',
        max: 10,
        triggers: [{ trigger: 'webhook', webhook_id: 'crash-delay-hook' }],
        actions: [{ delay: '2s' }, { action: 'turn_on', thing: 'lamp', data: { brightness: 42 } }],
      }),
    });
    assert.equal(rule.status, 201, await rule.clone().text());
    const fired = await hub.api('/api/automations/webhooks/crash-delay-hook', { method: 'POST', body: '{}' });
    assert.equal(fired.status, 200);
    const firedAt = Date.now();

    // History: 1..200 is committed (seen through the API) before the crash; 201..300 are in flight.
    for (let n = 1; n <= 200; n++) await client.publishAsync('crash/counter', JSON.stringify({ n }), { qos: 1 });
    const history = async () => {
      const response = await hub.api('/api/things/counter/history?property=sensor.count&limit=10000');
      return ((await response.json()) as { points: Array<{ value: number }> }).points.map((p) => p.value);
    };
    await eventually(async () => (await history()).includes(200), { what: 'report 200 in history' });
    for (let n = 201; n <= 300; n++) client.publish('crash/counter', JSON.stringify({ n }));

    // Commands: each 202 is a promise; the hub dies right after the last one.
    const acked: Array<{ id: string; thing: string }> = [];
    await Promise.all(
      Array.from({ length: 30 }, async (_, i) => {
        const thing = i % 3 === 0 ? 'dead' : 'lamp';
        const response = await hub.api(`/api/things/${thing}/actions/${i % 2 ? 'turn_on' : 'turn_off'}`, {
          method: 'POST',
          body: '{}',
        });
        assert.equal(response.status, 202, await response.clone().text());
        acked.push({ id: ((await response.json()) as { commandId: string }).commandId, thing });
      }),
    );
    const killed = hub.child.pid;
    assert.equal(await hub.stop('SIGKILL'), null);
    assert.ok(existsSync(join(dataDir, LOCK_FILE)), 'the killed hub left its lock behind');
    const setsBeforeRestart = lampSets.filter((s) => s.brightness === 107).length;
    assert.equal(setsBeforeRestart, 0, 'the delay had not come due before the crash');

    // Down past the delay's deadline; then a start on the same folder takes the dead hub's lock over.
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, firedAt + 2500 - Date.now())));
    const started = Date.now();
    hub = await startHubProcess({ dataDir, args });
    hubs.push(hub);
    assert.ok(Date.now() - started < 10_000, `the hub started again within seconds (${Date.now() - started} ms)`);
    assert.notEqual(hub.child.pid, killed);

    for (const { id, thing } of acked) {
      const response = await hub.api(`/api/commands/${id}`);
      assert.equal(response.status, 200, `acknowledged command ${id} (${thing}) survived the crash`);
      const command = (await response.json()) as { status: string };
      assert.ok(['pending', 'sent', 'confirmed', 'expired'].includes(command.status), command.status);
    }
    const values = await history();
    for (let n = 1; n <= 200; n++) assert.ok(values.includes(n), `history row ${n}, committed before the crash`);
    assert.equal(new Set(values).size, values.length, 'no history row twice');

    // The overdue delay fires once, a few seconds after the start (devices reconnect first).
    await eventually(() => lampSets.some((s) => s.brightness === 107), {
      what: 'the delayed rule to turn the lamp on after the restart',
      timeoutMs: 10_000,
    });
    // The switch never answers: its commands end as expired, with the reason.
    await eventually(
      async () => {
        for (const { id, thing } of acked) {
          if (thing !== 'dead') continue;
          const command = (await (await hub.api(`/api/commands/${id}`)).json()) as { status: string; error: string };
          if (command.status !== 'expired' || !command.error) return false;
        }
        return true;
      },
      { what: 'the unanswered commands to expire', timeoutMs: 6000 },
    );
    await new Promise((resolve) => setTimeout(resolve, 1000));
    assert.equal(lampSets.filter((s) => s.brightness === 107).length, 1, 'the delayed action ran exactly once');

    assert.equal(await hub.stop('SIGTERM'), 0);
    assert.equal(existsSync(join(dataDir, LOCK_FILE)), false, 'a stopped hub lets the folder go');
    const db = new Database(join(dataDir, 'triad.db'), { readonly: true });
    try {
      assert.deepEqual(db.pragma('integrity_check'), [{ integrity_check: 'ok' }]);
      const timers = db.prepare("SELECT count(*) AS n FROM timers WHERE owner = 'automations'").get() as { n: number };
      assert.equal(timers.n, 0, 'the run left no timer behind');
    } finally {
      db.close();
    }
  });
});
