import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import mqtt from 'mqtt';
import { VirtualClock } from '../src/core/clock.ts';
import type { Hub } from '../src/core/hub.ts';
import { startEnergyHub } from './helpers/energy-hub.ts';
import { eventually } from './helpers/hub-process.ts';

/**
 * A simple MQTT wallbox whose discovery and payloads are not what they should be: a current
 * setting announced from 32 A down to 16 A, or up to 1000 A, and a power sensor that sends a blank
 * payload. Its limits are taken within what the API itself allows (so its mode can still be set),
 * and a blank is passed over, never read as 0 W.
 */

const START = Date.UTC(2026, 5, 10, 18);

describe('energy review: a simple MQTT charger announced carelessly', () => {
  const clock = new VirtualClock(START);
  let hub: Hub;
  let send: Awaited<ReturnType<typeof startEnergyHub>>['send'];
  let wallbox: mqtt.MqttClient | undefined;
  const device = { identifiers: ['rwb'], name: 'Review wallbox' };

  before(async () => {
    ({ hub, send } = await startEnergyHub({ clock, service: { mqttChargers: true } }));
    const account = await send('POST', '/api/devices', {
      name: 'wallbox',
      publish: ['homeassistant/#', 'review/#'],
      subscribe: ['review/#'],
    });
    assert.equal(account.status, 201, JSON.stringify(account.body));
    wallbox = await mqtt.connectAsync(hub.mqttUrl, {
      username: account.body.username as string,
      password: account.body.password as string,
      reconnectPeriod: 0,
      connectTimeout: 5000,
    });
  });

  after(async () => {
    await wallbox?.endAsync(true);
    await hub?.stop();
  });

  const announce = async (component: string, object: string, config: Record<string, unknown>) =>
    wallbox?.publishAsync(`homeassistant/${component}/rwb/${object}/config`, JSON.stringify({ ...config, device }), {
      qos: 1,
      retain: true,
    });

  it('takes a current setting announced 32 A down to 16 A within bounds, so its mode can be set', async () => {
    await announce('switch', 'charge', {
      name: 'Charge',
      command_topic: 'review/switch/set',
      state_topic: 'review/switch',
    });
    await announce('sensor', 'power', { name: 'Power', state_topic: 'review/power', unit_of_measurement: 'W' });
    await announce('number', 'current', {
      name: 'Current',
      command_topic: 'review/current/set',
      state_topic: 'review/current',
      unit_of_measurement: 'A',
      min: 32,
      max: 16,
    });
    const charger = await eventually(async () => {
      const list = (await send('GET', '/api/chargers')).body as unknown as Array<Record<string, unknown>>;
      return list.find((c) => c.id === 'charger-rwb');
    });
    assert.ok((charger.minCurrentA as number) <= (charger.maxCurrentA as number), JSON.stringify(charger));
    const mode = await send('PUT', '/api/chargers/charger-rwb/mode', { mode: 'smart' });
    assert.equal(mode.status, 200, JSON.stringify(mode.body));
  });

  it('passes over a blank power payload rather than reading it as 0 W', async () => {
    await wallbox?.publishAsync('review/power', '7400', { qos: 1 });
    await eventually(() => hub.core.getValue(hub.householdId, 'charger-rwb', 'charging.power') === 7.4);
    await wallbox?.publishAsync('review/power', '', { qos: 1 });
    await wallbox?.publishAsync('review/power', '0x10', { qos: 1 });
    // A report after them, to know they were heard.
    await wallbox?.publishAsync('review/switch', 'ON', { qos: 1 });
    await eventually(() => hub.core.getValue(hub.householdId, 'charger-rwb', 'charging.charging') === true);
    assert.equal(hub.core.getValue(hub.householdId, 'charger-rwb', 'charging.power'), 7.4);
  });
});
