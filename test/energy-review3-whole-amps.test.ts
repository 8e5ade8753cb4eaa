import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import mqtt from 'mqtt';
import { VirtualClock } from '../src/core/clock.ts';
import type { Hub } from '../src/core/hub.ts';
import { startEnergyHub } from './helpers/energy-hub.ts';
import { eventually } from './helpers/hub-process.ts';

/**
 * A simple MQTT wallbox that takes whole amperes: told 10.4 A, it sets and reports 10 A. The hub
 * sends a tenth of an ampere it is short of (a plan counts on it), but once the wallbox has
 * answered the same request with its own rounding, asking again at every control step changes
 * nothing: it is asked once, and again only when what is wanted or what the wallbox holds moves.
 */

const START = Date.UTC(2026, 5, 10, 18);

describe('energy review 3: a charger that rounds to whole amperes is not asked again every step', () => {
  const clock = new VirtualClock(START);
  let hub: Hub;
  let send: Awaited<ReturnType<typeof startEnergyHub>>['send'];
  let wallbox: mqtt.MqttClient | undefined;
  const asked: number[] = [];
  const device = { identifiers: ['r3wa'], name: 'Whole-amp wallbox' };

  before(async () => {
    ({ hub, send } = await startEnergyHub({ clock, service: { mqttChargers: true, tickMs: 10_000 } }));
    const account = await send('POST', '/api/devices', {
      name: 'wallbox',
      publish: ['homeassistant/#', 'r3wa/#'],
      subscribe: ['r3wa/#'],
    });
    assert.equal(account.status, 201, JSON.stringify(account.body));
    const client = await mqtt.connectAsync(hub.mqttUrl, {
      username: account.body.username as string,
      password: account.body.password as string,
      reconnectPeriod: 0,
      connectTimeout: 5000,
    });
    wallbox = client;
    client.on('message', (topic, payload) => {
      if (topic !== 'r3wa/current/set') return;
      const amps = Number(payload.toString());
      asked.push(amps);
      // Whole amperes only, as many simple wallboxes take them.
      void client.publishAsync('r3wa/current', String(Math.floor(amps)), { qos: 1 });
    });
    await client.subscribeAsync('r3wa/current/set', { qos: 1 });
  });

  after(async () => {
    await wallbox?.endAsync(true);
    await hub?.stop();
  });

  const announce = async (component: string, object: string, config: Record<string, unknown>) =>
    wallbox?.publishAsync(`homeassistant/${component}/r3wa/${object}/config`, JSON.stringify({ ...config, device }), {
      qos: 1,
      retain: true,
    });

  it('asks for 10.4 A once while the wallbox holds 10 A for it, and again when the wanted current moves', async () => {
    await announce('switch', 'charge', {
      name: 'Charge',
      command_topic: 'r3wa/switch/set',
      state_topic: 'r3wa/switch',
    });
    await announce('sensor', 'power', { name: 'Power', state_topic: 'r3wa/power', unit_of_measurement: 'W' });
    await announce('number', 'current', {
      name: 'Current',
      command_topic: 'r3wa/current/set',
      state_topic: 'r3wa/current',
      unit_of_measurement: 'A',
      min: 6,
      max: 16,
    });
    const charger = await eventually(async () => {
      const list = (await send('GET', '/api/chargers')).body as unknown as Array<Record<string, unknown>>;
      return list.find((c) => c.id === 'charger-r3wa');
    });
    await wallbox?.publishAsync('r3wa/current', '16', { qos: 1 });
    await eventually(() => hub.core.getValue(hub.householdId, 'charger-r3wa', 'charging.current_limit') === 16);
    // The fuse leaves the wallbox part of what it wants: a share in tenths of an ampere.
    const phases = (charger.phases as number | undefined) ?? 1;
    const wattsPerAmp = 230 * phases;
    const limitKw = (10.45 * wattsPerAmp) / 1000;
    assert.equal((await send('PUT', '/api/energy/site', { limitKw })).status, 200);
    assert.equal((await send('PUT', '/api/chargers/charger-r3wa/mode', { mode: 'now' })).status, 200);

    // Six control steps.
    for (let step = 0; step < 6; step++) {
      await clock.advance(10_000);
      await new Promise((resolve) => setTimeout(resolve, 150));
    }
    await eventually(() => asked.length > 0);
    assert.ok(Math.abs(asked[0] - 10.4) < 0.051, `first asked ${asked[0]} A`);
    assert.equal(hub.core.getValue(hub.householdId, 'charger-r3wa', 'charging.current_limit'), 10);
    assert.deepEqual(asked, [asked[0]], `asked again at every step: ${asked.join(', ')}`);

    // Another share (a bigger fuse): asked at once.
    assert.equal((await send('PUT', '/api/energy/site', { limitKw: (12.45 * wattsPerAmp) / 1000 })).status, 200);
    for (let step = 0; step < 3; step++) {
      await clock.advance(10_000);
      await new Promise((resolve) => setTimeout(resolve, 150));
    }
    await eventually(() => asked.length === 2);
    assert.ok(Math.abs(asked[1] - 12.4) < 0.051, `then asked ${asked[1]} A`);

    // The wallbox set back to 6 A from its own app: asked again, though what is wanted did not move.
    await wallbox?.publishAsync('r3wa/current', '6', { qos: 1 });
    await eventually(() => hub.core.getValue(hub.householdId, 'charger-r3wa', 'charging.current_limit') === 6);
    for (let step = 0; step < 2; step++) {
      await clock.advance(10_000);
      await new Promise((resolve) => setTimeout(resolve, 150));
    }
    await eventually(() => asked.length === 3);
    assert.ok(Math.abs(asked[2] - 12.4) < 0.051, `asked ${asked[2]} A after the app's change`);
  });
});
