import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import mqtt from 'mqtt';
import { VirtualClock } from '../src/core/clock.ts';
import { Hub } from '../src/core/hub.ts';
import { createLogger } from '../src/core/log.ts';
import { eventually, tempDir } from './helpers/hub-process.ts';

type Json = Record<string, unknown>;

/**
 * The audit trail across a restart: a command the owner sent over HTTP to a real MQTT light that
 * never answered, and that ran out while the hub was down, is recorded against the owner and
 * HTTP when the next start expires it, as its acceptance was.
 */
describe('security: the audit trail after a restart', () => {
  const clock = new VirtualClock(Date.UTC(2026, 3, 6, 18, 0));
  let hub: Hub | null = null;

  const start = async (dataDir: string): Promise<Hub> => {
    hub = new Hub({
      dataDir,
      http: { port: 0, host: '127.0.0.1' },
      mqtt: { port: 0, host: '127.0.0.1' },
      clock,
      commandTimeoutMs: 30_000,
      log: createLogger({ level: 'silent' }),
    });
    await hub.start();
    return hub;
  };

  const call = async (on: Hub, path: string, init: RequestInit & { json?: unknown } = {}) => {
    const headers = new Headers({ authorization: `Bearer ${on.ownerToken}` });
    if (init.json !== undefined) headers.set('content-type', 'application/json');
    const body = init.json === undefined ? undefined : JSON.stringify(init.json);
    const res = await fetch(on.httpUrl + path, { ...init, headers, body });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : null) as Json & Json[], text };
  };

  after(async () => {
    await hub?.stop();
  });

  it('names the owner and HTTP for a command of theirs that expired while the hub was down', async () => {
    const dataDir = await tempDir('triad-audit-restart-');
    const first = await start(dataDir);

    // A light that announces itself and its state, then never answers a command.
    const device = await call(first, '/api/devices', { method: 'POST', json: { name: 'Porch' } });
    assert.equal(device.status, 201, device.text);
    const light = await mqtt.connectAsync(first.mqttUrl, {
      username: device.body.username as string,
      password: device.body.password as string,
      reconnectPeriod: 0,
    });
    const config = {
      name: null,
      unique_id: 'porch_light',
      command_topic: 'zigbee2mqtt/Porch/set',
      state_topic: 'zigbee2mqtt/Porch',
      schema: 'json',
      device: { identifiers: ['porch'], name: 'Porch' },
    };
    await light.publishAsync('homeassistant/light/porch/light/config', JSON.stringify(config), {
      retain: true,
      qos: 1,
    });
    await light.publishAsync('zigbee2mqtt/Porch', JSON.stringify({ state: 'OFF' }), { retain: true, qos: 1 });
    const thing = await eventually(
      async () => {
        const things = (await call(first, '/api/things')).body as unknown as Array<Json & { state: Json }>;
        return things.find((t) => t.name === 'Porch' && t.state['light.on'] === false);
      },
      { what: 'the porch light to be discovered' },
    );

    const sent = await call(first, `/api/things/${thing.id}/actions/turn_on`, { method: 'POST', json: {} });
    assert.equal(sent.status, 202, sent.text);
    const commandId = sent.body.commandId as string;
    await light.endAsync();
    await first.stop();

    // Down for longer than the command's 30 s.
    await clock.advance(120_000);
    const second = await start(dataDir);
    const status = await call(second, `/api/commands/${commandId}`);
    assert.equal(status.body.status, 'expired', status.text);

    const audit = (await call(second, '/api/audit')).body as unknown as Array<Json & { actor: Json }>;
    const accepted = audit.find((l) => l.commandId === commandId && l.result === 'accepted');
    const expired = audit.find((l) => l.commandId === commandId && l.result === 'failed');
    assert.ok(accepted, 'the command was accepted on the record');
    assert.ok(expired, "the command's expiry is on the record");
    assert.deepEqual(accepted.actor.kind, 'user');
    assert.equal(accepted.actor.name, 'owner');
    assert.deepEqual(expired.actor, accepted.actor, 'the expiry names who asked, as the acceptance did');
    assert.equal(expired.via, 'http');
    assert.equal(expired.reason, 'the hub restarted after the command expired');
  });
});
