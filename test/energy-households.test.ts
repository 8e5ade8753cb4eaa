import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { VirtualClock } from '../src/core/clock.ts';
import type { Hub } from '../src/core/hub.ts';
import { vocabularyProperties } from '../src/model/thing.ts';
import { startEnergyHub } from './helpers/energy-hub.ts';
import { freePort, type HubProcess, startHubProcess } from './helpers/hub-process.ts';

/**
 * Two households in one real hub (real SQLite, the embedded broker, the real API and OCPP over a
 * WebSocket): the second household has energy management of its own, and neither reads nor
 * changes the first's site, tariff, prices or plans; a car removed is no charger's car any more; the second household's charge point is let
 * in after a restart (the hub started again as `triad start`, on the same data).
 */

const H1_PASSWORD = 'h1h1h1h1h1h1h1h1h1';
const H2_PASSWORD = 'h2onlyh2onlyh2only';

interface Answer {
  status: number;
  text: string;
  body: Record<string, unknown> & { error?: { message: string } };
}

describe('energy with two households in one hub', () => {
  const clock = new VirtualClock(Date.UTC(2026, 2, 3, 12));
  let hub: Hub;
  let restarted: HubProcess | undefined;
  let tokenH2 = '';

  const call = async (method: string, path: string, body?: unknown, token = hub.ownerToken): Promise<Answer> => {
    const headers: Record<string, string> = { authorization: `Bearer ${token}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(hub.httpUrl + path, { method, headers, body: JSON.stringify(body) });
    const text = await res.text();
    return { status: res.status, text, body: text ? JSON.parse(text) : {} };
  };

  /** What household 1 reads of its energy settings (the site without its live reading). */
  const household1Energy = async () => {
    const site = await call('GET', '/api/energy/site');
    const { reading: _reading, ...settings } = site.body;
    return {
      site: settings,
      tariff: (await call('GET', '/api/energy/tariff')).body,
      prices: (await call('GET', '/api/energy/prices')).body,
      plans: ((await call('GET', '/api/energy/plans')).body as unknown as Array<{ charger: string }>).map(
        (p) => p.charger,
      ),
    };
  };

  before(async () => {
    // With the vehicle `car` (40 % of 60 kWh) in household 1.
    ({ hub } = await startEnergyHub({ clock }));
    const meter = { id: 'grid-meter', name: 'Grid meter', kind: 'device', adapter: 'core', actions: {} } as const;
    await hub.core.upsertThing({
      ...meter,
      householdId: hub.householdId,
      properties: vocabularyProperties(['sensor.power']),
    });
    const charger = await call('POST', '/api/chargers', {
      chargePointId: 'CP-H1',
      name: 'h1 charger',
      password: H1_PASSWORD,
    });
    assert.equal(charger.status, 201, charger.text);
    for (const [method, path, body] of [
      ['PUT', '/api/energy/site', { grid: 'grid-meter', limitKw: 17 }],
      ['PUT', '/api/energy/tariff', { currency: 'EUR', fixed: 0.31, feedIn: 0.08 }],
      [
        'PUT',
        '/api/energy/prices',
        {
          currency: 'EUR',
          slots: [
            { start: '2026-03-03T12:00:00Z', end: '2026-03-03T13:00:00Z', price: 0.2 },
            { start: '2026-03-03T13:00:00Z', end: '2026-03-03T14:00:00Z', price: 0.1 },
          ],
        },
      ],
      [
        'POST',
        '/api/energy/plans',
        { vehicle: 'car', charger: 'charger-cp-h1', targetSoc: 80, by: '2026-03-03T18:00:00Z' },
      ],
    ] as const) {
      const res = await call(method, path, body);
      assert.ok(res.status < 300, `${method} ${path}: ${res.text}`);
    }
    const made = await call('POST', '/api/households', { name: 'Neighbours' });
    assert.equal(made.status, 201, made.text);
    tokenH2 = made.body.token as string;
  });

  after(async () => {
    await restarted?.stop();
    await hub.stop();
  });

  it("the second household has its own site, tariff, prices and plans, and neither reads nor changes the first's", async () => {
    const before = await household1Energy();
    assert.equal(before.site.limitKw, 17);
    assert.deepEqual(before.plans, ['charger-cp-h1']);
    // Each answers with household 2's own (its defaults, then what it set), never household 1's.
    const tries = [
      ['GET', '/api/energy/site', undefined, 200],
      ['PUT', '/api/energy/site', { limitKw: 1 }, 200],
      ['GET', '/api/energy/tariff', undefined, 200],
      ['PUT', '/api/energy/tariff', { currency: 'USD', fixed: 9 }, 200],
      ['GET', '/api/energy/prices', undefined, 200],
      [
        'PUT',
        '/api/energy/prices',
        { currency: 'USD', slots: [{ start: '2026-03-03T12:00:00Z', end: '2026-03-03T13:00:00Z', price: 9 }] },
        200,
      ],
      ['GET', '/api/energy/plans', undefined, 200],
      ['GET', '/api/energy/plans/charger-cp-h1', undefined, 404],
      ['DELETE', '/api/energy/plans/charger-cp-h1', undefined, 404],
    ] as const;
    for (const [method, path, body, status] of tries) {
      const res = await call(method, path, body, tokenH2);
      assert.equal(res.status, status, `${method} ${path} as household 2: ${res.text}`);
      // A 404 names the charger asked for, as for any other thing: that is no leak.
      const leaks = ['grid-meter', '"limitKw":17', '0.31'].concat(status === 404 ? [] : ['charger-cp-h1']);
      for (const leaked of leaks)
        assert.ok(!res.text.includes(leaked), `${method} ${path} answered household 2 with ${leaked}`);
    }
    assert.equal((await call('GET', '/api/energy/site', undefined, tokenH2)).body.limitKw, 1);
    assert.equal((await call('GET', '/api/energy/tariff', undefined, tokenH2)).body.fixed, 9);
    assert.deepEqual((await call('GET', '/api/energy/plans', undefined, tokenH2)).body, []);
    assert.deepEqual(await household1Energy(), before, 'household 1 reads its own, unchanged');
  });

  it("the second household's charger shows none of the first's settings, and takes a mode of its own", async () => {
    const made = await call(
      'POST',
      '/api/chargers',
      { chargePointId: 'CP-H2ONLY', name: 'h2 charger', password: H2_PASSWORD },
      tokenH2,
    );
    assert.equal(made.status, 201, made.text);
    const listed = (await call('GET', '/api/chargers', undefined, tokenH2)).body as unknown as Array<{
      id: string;
      plan: unknown;
    }>;
    assert.deepEqual(
      listed.map((c) => [c.id, c.plan]),
      [['charger-cp-h2only', null]],
    );
    const mode = await call('PUT', '/api/chargers/charger-cp-h2only/mode', { mode: 'solar' }, tokenH2);
    assert.equal(mode.status, 200, mode.text);
    assert.equal(mode.body.mode, 'solar');
    // Household 1's charger is not household 2's to set: to household 2 it is not there.
    const other = await call('PUT', '/api/chargers/charger-cp-h1/mode', { mode: 'off' }, tokenH2);
    assert.equal(other.status, 404, other.text);
    const mine = (await call('GET', '/api/chargers')).body as unknown as Array<{ id: string; mode: string }>;
    assert.deepEqual(
      mine.map((c) => [c.id, c.mode]),
      [['charger-cp-h1', 'smart']],
    );
  });

  it("a removed car is no charger's car, and its plan goes with it", async () => {
    const set = await call('PUT', '/api/chargers/charger-cp-h1/mode', { vehicle: 'car' });
    assert.equal(set.status, 200, set.text);
    assert.equal(set.body.vehicle, 'car');
    // What DELETE /api/vehicles/{id} does once the car's link is closed.
    await hub.core.removeThing(hub.householdId, 'car');
    const chargers = (await call('GET', '/api/chargers')).body as unknown as Array<Record<string, unknown>>;
    assert.equal(chargers.length, 1);
    assert.equal(chargers[0].vehicle, undefined, JSON.stringify(chargers[0]));
    assert.equal(chargers[0].plan, null);
    assert.deepEqual((await call('GET', '/api/energy/plans')).body, []);
  });

  it("the second household's charge point connects after a restart", async () => {
    const { dataDir } = hub.services;
    await hub.stop();
    restarted = await startHubProcess({ dataDir, args: ['--mqtt-port', String(await freePort())] });
    const url = `${restarted.url.replace('http', 'ws')}/ocpp/CP-H2ONLY`;
    const socket = await new Promise<WebSocket>((resolve, reject) => {
      const ws = new WebSocket(url, ['ocpp1.6'], {
        headers: { authorization: `Basic ${Buffer.from(`CP-H2ONLY:${H2_PASSWORD}`).toString('base64')}` },
      });
      ws.once('open', () => resolve(ws));
      ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
      ws.once('error', reject);
    });
    try {
      const answer = new Promise<unknown[]>((resolve) =>
        socket.once('message', (data) => resolve(JSON.parse(String(data)) as unknown[])),
      );
      socket.send('[2, "b1", "BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"}]');
      const boot = await answer;
      assert.equal(boot[1], 'b1');
      assert.equal((boot[2] as { status: string }).status, 'Accepted');
    } finally {
      socket.close();
    }
  });
});
