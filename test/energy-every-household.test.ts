import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import mqtt from 'mqtt';
import { VirtualClock } from '../src/core/clock.ts';
import { Hub } from '../src/core/hub.ts';
import { createLogger } from '../src/core/log.ts';
import { EnergyService, SITE_THING } from '../src/energy/index.ts';
import { vocabularyProperties } from '../src/model/thing.ts';
import { startEnergyHub } from './helpers/energy-hub.ts';
import { eventually } from './helpers/hub-process.ts';

/**
 * Energy management in every household of one real hub (real SQLite, the embedded broker, the
 * real API): the first household and one created after the start each have a simple MQTT wallbox
 * (the same device id, so the same charger id, on topics of their own) and a car (the same id),
 * each sets its own site, tariff, prices and mode and makes its own plan, and neither reads nor
 * changes the other's. The second household's wallbox is found and commanded through its own view
 * of the broker only. What the second household set is on its own site thing, and comes back after
 * a restart.
 */

type Json = Record<string, unknown>;
interface Answer {
  status: number;
  text: string;
  body: Json;
}
interface Household {
  id: string;
  token: string;
  /** The wallbox's own MQTT topics, under which the household's devices know it. */
  base: string;
  wallbox?: mqtt.MqttClient;
  heard: Array<{ topic: string; payload: string }>;
}

const START = Date.UTC(2026, 2, 3, 12);

describe('energy management in every household', () => {
  const clock = new VirtualClock(START);
  let hub: Hub;
  let restarted: Hub | undefined;
  const first: Household = { id: '', token: '', base: 'garage', heard: [] };
  const second: Household = { id: '', token: '', base: 'carport', heard: [] };

  const call = async (who: Household, method: string, path: string, body?: unknown): Promise<Answer> => {
    const headers: Record<string, string> = { authorization: `Bearer ${who.token}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch((restarted ?? hub).httpUrl + path, { method, headers, body: JSON.stringify(body) });
    const text = await res.text();
    return { status: res.status, text, body: text ? (JSON.parse(text) as Json) : {} };
  };
  const ok = async (who: Household, method: string, path: string, body?: unknown): Promise<Json> => {
    const res = await call(who, method, path, body);
    assert.ok(res.status < 300, `${method} ${path}: ${res.status} ${res.text}`);
    return res.body;
  };

  /** What a household reads of its energy (the site without its live reading). */
  const energyOf = async (who: Household) => {
    const { reading: _reading, ...site } = await ok(who, 'GET', '/api/energy/site');
    const chargers = (await ok(who, 'GET', '/api/chargers')) as unknown as Json[];
    return {
      site,
      tariff: await ok(who, 'GET', '/api/energy/tariff'),
      prices: await ok(who, 'GET', '/api/energy/prices'),
      plans: ((await ok(who, 'GET', '/api/energy/plans')) as unknown as Json[]).map((p) => ({
        charger: p.charger,
        vehicle: p.vehicle,
        targetSoc: p.targetSoc,
        neededKwh: p.neededKwh,
        currency: p.currency,
      })),
      chargers: chargers.map((c) => ({ id: c.id, mode: c.mode, maxCurrentA: c.maxCurrentA })),
    };
  };

  /** A wallbox on the household's own MQTT account: a switch and a current setting, announced by discovery. */
  const plugInWallbox = async (who: Household) => {
    const account = await ok(who, 'POST', '/api/devices', {
      name: 'wallbox',
      // Both households' topic names: what one publishes must never reach the other's.
      publish: ['homeassistant/#', 'garage/#', 'carport/#'],
      subscribe: ['garage/#', 'carport/#'],
    });
    const client = await mqtt.connectAsync(hub.mqttUrl, {
      username: account.username as string,
      password: account.password as string,
      clientId: `wallbox-${who.base}`,
      reconnectPeriod: 0,
      connectTimeout: 2000,
    });
    client.on('message', (topic, payload) => {
      who.heard.push({ topic, payload: payload.toString() });
      // As a wallbox does: what it was set to comes back on its state topic.
      if (topic.endsWith('/set')) void client.publishAsync(topic.slice(0, -'/set'.length), payload, { qos: 1 });
    });
    await client.subscribeAsync(['garage/#', 'carport/#'], { qos: 1 });
    who.wallbox = client;
    const device = { identifiers: ['wb'], name: 'Wallbox' };
    await client.publishAsync(
      'homeassistant/switch/wb/charge/config',
      JSON.stringify({
        name: 'Charge',
        command_topic: `${who.base}/switch/set`,
        state_topic: `${who.base}/switch`,
        device,
      }),
      { qos: 1, retain: true },
    );
    await client.publishAsync(
      'homeassistant/number/wb/current/config',
      JSON.stringify({
        name: 'Current',
        command_topic: `${who.base}/current/set`,
        state_topic: `${who.base}/current`,
        unit_of_measurement: 'A',
        min: 6,
        max: 16,
        device,
      }),
      { qos: 1, retain: true },
    );
    await eventually(
      async () => ((await ok(who, 'GET', '/api/chargers')) as unknown as Json[]).some((c) => c.id === 'charger-wb'),
      { what: `the wallbox of the ${who.base} among its household's chargers` },
    );
  };

  /** A car `car` in the household, whose battery the planner reads. */
  const addCar = async (householdId: string, level: number, capacityKwh: number) => {
    await hub.core.upsertThing({
      id: 'car',
      name: 'Car',
      householdId,
      kind: 'vehicle',
      adapter: 'core',
      properties: vocabularyProperties(['battery.level', 'battery.capacity', 'charging.connected']),
      actions: {},
    });
    hub.core.ingest(
      Object.entries({ 'battery.level': level, 'battery.capacity': capacityKwh }).map(([property, value]) => ({
        householdId,
        thing: 'car',
        property,
        value,
        source: 'test',
      })),
    );
  };

  before(async () => {
    // Household 1's car `car` is at 40 % of 60 kWh.
    ({ hub } = await startEnergyHub({ clock, service: { mqttChargers: true } }));
    Object.assign(first, { id: hub.householdId, token: hub.ownerToken });
    // Household 2 comes after the start: no restart before it manages its energy.
    const made = await ok(first, 'POST', '/api/households', { name: 'Neighbours' });
    Object.assign(second, { id: (made.household as Json).id as string, token: made.token as string });
    await addCar(second.id, 70, 50);
    await plugInWallbox(first);
    await plugInWallbox(second);
    // An OCPP charge point household 1 has and household 2 has not.
    await ok(first, 'POST', '/api/chargers', {
      chargePointId: 'CP-ONE',
      name: 'Drive',
      password: 'oneoneoneoneoneone',
    });
  });

  after(async () => {
    await Promise.all([first, second].map((who) => who.wallbox?.endAsync(true)));
    await restarted?.stop();
    await hub.stop();
  });

  it('each household sets its own site, tariff, prices and mode, and plans on its own wallbox', async () => {
    await ok(first, 'PUT', '/api/energy/site', { limitKw: 17 });
    await ok(first, 'PUT', '/api/energy/tariff', { currency: 'EUR', fixed: 0.31 });
    await ok(first, 'PUT', '/api/energy/prices', {
      currency: 'EUR',
      slots: [
        { start: '2026-03-03T12:00:00Z', end: '2026-03-03T13:00:00Z', price: 0.2 },
        { start: '2026-03-03T13:00:00Z', end: '2026-03-03T14:00:00Z', price: 0.1 },
      ],
    });
    await ok(second, 'PUT', '/api/energy/site', { limitKw: 7 });
    await ok(second, 'PUT', '/api/energy/tariff', { currency: 'SEK', fixed: 2.5 });
    await ok(second, 'PUT', '/api/energy/prices', {
      currency: 'SEK',
      slots: [{ start: '2026-03-03T12:00:00Z', end: '2026-03-03T13:00:00Z', price: 1.5 }],
    });
    await ok(second, 'PUT', '/api/chargers/charger-wb/mode', { maxCurrentA: 10 });
    const plan1 = await ok(first, 'POST', '/api/energy/plans', {
      vehicle: 'car',
      charger: 'charger-wb',
      targetSoc: 80,
      by: '2026-03-03T18:00:00Z',
    });
    const plan2 = await ok(second, 'POST', '/api/energy/plans', {
      charger: 'charger-wb',
      vehicle: 'car',
      targetSoc: 90,
      by: '2026-03-03T20:00:00Z',
    });
    // Each from its own car's battery: 40 → 80 % of 60 kWh, and 70 → 90 % of 50 kWh.
    assert.ok(Math.abs((plan1.neededKwh as number) - 24 / 0.9) < 0.1, JSON.stringify(plan1));
    assert.ok(Math.abs((plan2.neededKwh as number) - 10 / 0.9) < 0.1, JSON.stringify(plan2));
    assert.equal(plan1.currency, 'EUR');
    assert.equal(plan2.currency, 'SEK');
    assert.equal(plan1.feasible, true, JSON.stringify(plan1));
    assert.equal(plan2.feasible, true, JSON.stringify(plan2));

    const one = await energyOf(first);
    const two = await energyOf(second);
    assert.equal(one.site.limitKw, 17);
    assert.equal(two.site.limitKw, 7);
    assert.equal(one.tariff.fixed, 0.31);
    assert.equal(two.tariff.fixed, 2.5);
    assert.equal(one.prices.currency, 'EUR');
    assert.equal(two.prices.currency, 'SEK');
    assert.deepEqual(
      one.plans.map((p) => [p.charger, p.targetSoc]),
      [['charger-wb', 80]],
    );
    assert.deepEqual(
      two.plans.map((p) => [p.charger, p.targetSoc]),
      [['charger-wb', 90]],
    );
    // A plan asks its charger to follow it: each household's wallbox is in smart mode, at its own limits.
    assert.deepEqual(
      one.chargers.sort((a, b) => String(a.id).localeCompare(String(b.id))),
      [
        { id: 'charger-cp-one', mode: 'now', maxCurrentA: 16 },
        { id: 'charger-wb', mode: 'smart', maxCurrentA: 16 },
      ],
    );
    assert.deepEqual(two.chargers, [{ id: 'charger-wb', mode: 'smart', maxCurrentA: 10 }]);
    // Kept where the first household's are: on the household's own site thing.
    const stored = hub.core.getThing(second.id, SITE_THING)?.meta?.energy as { site: Json; plans: Json[] };
    assert.equal(stored.site.limitKw, 7);
    assert.deepEqual(
      stored.plans.map((p) => p.targetSoc),
      [90],
    );
  });

  it("household 2 can neither read nor change household 1's energy", async () => {
    const before = await energyOf(first);
    const beforeTwo = await energyOf(second);
    for (const [method, path, body] of [
      ['PUT', '/api/chargers/charger-cp-one/mode', { mode: 'off' }],
      ['DELETE', '/api/chargers/charger-cp-one', undefined],
      ['POST', '/api/chargers/charger-cp-one/availability', { operative: false }],
      ['POST', '/api/chargers/charger-cp-one/trigger', { message: 'Heartbeat' }],
      ['POST', '/api/energy/plans', { vehicle: 'car', charger: 'charger-cp-one', energyKwh: 5, by: '18:00' }],
      ['GET', '/api/energy/plans/charger-cp-one', undefined],
      ['DELETE', '/api/energy/plans/charger-cp-one', undefined],
    ] as const) {
      const res = await call(second, method, path, body);
      assert.equal(res.status, 404, `${method} ${path} as household 2: ${res.text}`);
    }
    // What household 2 reads and changes is its own.
    for (const answer of [
      await call(second, 'GET', '/api/energy/site'),
      await call(second, 'GET', '/api/energy/tariff'),
      await call(second, 'GET', '/api/energy/prices'),
      await call(second, 'GET', '/api/energy/plans'),
      await call(second, 'GET', '/api/chargers'),
      await call(second, 'GET', '/api/energy/sessions'),
    ]) {
      for (const leaked of ['charger-cp-one', '"limitKw":17', '0.31', 'EUR'])
        assert.ok(!answer.text.includes(leaked), `household 2 was shown ${leaked}: ${answer.text}`);
    }
    await ok(second, 'PUT', '/api/energy/site', { limitKw: 9 });
    await ok(second, 'PUT', '/api/chargers/charger-wb/mode', { mode: 'off' });
    assert.equal((await call(second, 'DELETE', '/api/energy/plans/charger-wb')).status, 204);
    assert.deepEqual(await energyOf(first), before, "household 1's energy is as it was");
    const after = await energyOf(second);
    assert.equal(after.site.limitKw, 9);
    assert.deepEqual(after.plans, []);
    assert.deepEqual(after.chargers, [{ ...beforeTwo.chargers[0], mode: 'off' }]);
  });

  it("each wallbox is commanded on its own household's topics only", async () => {
    // Off in household 2: at a control step after the wallbox confirmed its last setting, it is
    // switched off, on the topics its household knows it by.
    await eventually(
      async () => {
        await clock.advance(10_000);
        return second.heard.some((m) => m.topic === 'carport/switch/set' && m.payload === 'OFF');
      },
      { what: "household 2's wallbox switched off" },
    );
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.ok(second.heard.length > 0 && first.heard.length > 0, 'both wallboxes were commanded');
    assert.ok(
      second.heard.every((m) => m.topic.startsWith('carport/')),
      `household 2's wallbox heard ${JSON.stringify(second.heard)}`,
    );
    assert.ok(
      first.heard.every((m) => m.topic.startsWith('garage/')),
      `household 1's wallbox heard ${JSON.stringify(first.heard)}`,
    );
  });

  it('a household that never used energy management is given no site thing, across control steps and reads', async () => {
    const third: Household = { id: '', token: '', base: 'none', heard: [] };
    const made = await ok(first, 'POST', '/api/households', { name: 'Empty' });
    Object.assign(third, { id: (made.household as Json).id as string, token: made.token as string });
    await clock.advance(60_000);
    assert.equal(hub.core.getThing(third.id, SITE_THING), undefined, 'no site thing it did not ask for');
    // Its energy reads as the defaults, without one being made for the asking.
    assert.equal((await ok(third, 'GET', '/api/energy/site')).limitKw, 11);
    assert.deepEqual(await ok(third, 'GET', '/api/chargers'), []);
    assert.equal(hub.core.getThing(third.id, SITE_THING), undefined);
  });

  it("household 2's energy comes back after a restart, and household 1's stays its own", async () => {
    const before = { one: await energyOf(first), two: await energyOf(second) };
    const { dataDir } = hub.services;
    await hub.stop();
    restarted = new Hub({
      dataDir,
      log: createLogger({ level: 'silent' }),
      clock,
      http: { host: '127.0.0.1', port: 0 },
      mqtt: { host: '127.0.0.1', port: 0 },
    }).use(new EnergyService({ mqttChargers: true }));
    await restarted.start();
    assert.deepEqual((await energyOf(first)).site, before.one.site);
    assert.deepEqual((await energyOf(first)).plans, before.one.plans);
    assert.deepEqual((await energyOf(second)).site, before.two.site);
    assert.deepEqual((await energyOf(second)).tariff, before.two.tariff);
    assert.deepEqual((await energyOf(second)).prices, before.two.prices);
    assert.deepEqual((await energyOf(second)).chargers, before.two.chargers);
  });
});
