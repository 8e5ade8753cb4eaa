import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { VirtualClock } from '../src/core/clock.ts';
import type { Hub } from '../src/core/hub.ts';
import { startEnergyHub } from './helpers/energy-hub.ts';

/**
 * Prices as a user or a file can get them wrong: a CSV cell left blank or written in hex, a CO₂
 * figure below zero, a price so large its cost overflows, a time of day past midnight. Each is
 * refused with 400 naming it, and the prices and tariff kept are those from before.
 */

const HOUR = 3_600_000;
const START = Date.UTC(2026, 5, 10, 18);

describe('energy review: prices and tariffs refused up front', () => {
  const clock = new VirtualClock(START);
  let hub: Hub;
  let send: Awaited<ReturnType<typeof startEnergyHub>>['send'];
  let charger = '';
  const message = (body: Record<string, unknown>) => (body.error as { message?: string } | undefined)?.message ?? '';
  const csv = async (text: string) => {
    const res = await fetch(`${hub.httpUrl}/api/energy/prices?currency=EUR`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${hub.ownerToken}`, 'content-type': 'text/csv' },
      body: text,
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  const prices = async () =>
    ((await send('GET', '/api/energy/prices')).body.slots as Array<{ price: number }>).map((s) => s.price);

  before(async () => {
    ({ hub, send } = await startEnergyHub({ clock }));
    const registered = await send('POST', '/api/chargers', { chargePointId: 'review', name: 'Garage' });
    assert.equal(registered.status, 201, JSON.stringify(registered.body));
    charger = registered.body.id as string;
    const slots = [0.3, 0.2].map((price, i) => ({
      start: new Date(START + i * HOUR).toISOString(),
      end: new Date(START + (i + 1) * HOUR).toISOString(),
      price,
    }));
    assert.equal((await send('PUT', '/api/energy/prices', { currency: 'EUR', slots })).status, 200);
  });

  after(async () => {
    await hub?.stop();
  });

  it('refuses a CSV price cell left blank or not a plain decimal, rather than reading it as free power', async () => {
    const blank = await csv('start,price\n2026-06-10T18:00:00Z,\n2026-06-10T19:00:00Z,0.3\n');
    assert.equal(blank.status, 400, JSON.stringify(blank.body));
    assert.match(message(blank.body), /slot 0 \(line 2\) has no numeric price/);
    const hex = await csv('start;price\n2026-06-10T18:00:00Z;0x10\n');
    assert.equal(hex.status, 400, JSON.stringify(hex.body));
    // A decimal comma, as European spreadsheets write it, is still read.
    const comma = await csv('start;price\n2026-06-10T18:00:00Z;0,25\n');
    assert.equal(comma.status, 200, JSON.stringify(comma.body));
    assert.deepEqual(await prices(), [0.25]);
  });

  it('refuses a CSV CO₂ intensity that is not a number ≥ 0, as the JSON form does', async () => {
    const negative = await csv('start,price,co2\n2026-06-10T18:00:00Z,0.1,-5\n');
    assert.equal(negative.status, 400, JSON.stringify(negative.body));
    assert.match(message(negative.body), /CO₂ intensity that is not a number ≥ 0/);
    const word = await csv('start,price,co2\n2026-06-10T18:00:00Z,0.1,high\n');
    assert.equal(word.status, 400, JSON.stringify(word.body));
    assert.deepEqual(await prices(), [0.25]);
  });

  it('refuses a price so large a plan’s cost would overflow, keeping the prices and tariff it had', async () => {
    const slot = { start: '2026-06-10T18:00:00Z', end: '2026-06-10T19:00:00Z', price: 1e308 };
    const series = await send('PUT', '/api/energy/prices', { currency: 'EUR', slots: [slot] });
    assert.equal(series.status, 400, JSON.stringify(series.body));
    assert.deepEqual(await prices(), [0.25]);
    const fixed = await send('PUT', '/api/energy/tariff', { currency: 'EUR', fixed: 1e308 });
    assert.equal(fixed.status, 400, JSON.stringify(fixed.body));
    const feedIn = await send('PUT', '/api/energy/tariff', { currency: 'EUR', feedIn: -1e308 });
    assert.equal(feedIn.status, 400, JSON.stringify(feedIn.body));
    const rule = await send('PUT', '/api/energy/tariff', {
      currency: 'EUR',
      timeOfUse: [{ from: '00:00', to: '24:00', price: 1e300 }],
    });
    assert.equal(rule.status, 400, JSON.stringify(rule.body));
    assert.equal((await send('GET', '/api/energy/tariff')).body.fixed, undefined);
    // A plan's cost is a number, never null.
    const plan = await send('POST', '/api/energy/plans', {
      vehicle: 'car',
      charger,
      energyKwh: 20,
      by: new Date(START + 5 * HOUR).toISOString(),
    });
    assert.equal(plan.status, 201, JSON.stringify(plan.body));
    assert.equal(typeof plan.body.cost, 'number');
    assert.equal((await send('DELETE', `/api/energy/plans/${charger}`)).status, 204);
  });

  it('refuses a time-of-use time past midnight (24:30), taking 24:00 as the end of the day', async () => {
    const late = await send('PUT', '/api/energy/tariff', {
      currency: 'EUR',
      timeOfUse: [{ from: '22:00', to: '24:30', price: 0.1 }],
    });
    assert.equal(late.status, 400, JSON.stringify(late.body));
    assert.match(message(late.body), /times are HH:MM, not "24:30"/);
    assert.equal((await send('GET', '/api/energy/tariff')).body.timeOfUse, undefined);
    const midnight = await send('PUT', '/api/energy/tariff', {
      currency: 'EUR',
      timeOfUse: [{ from: '22:00', to: '24:00', price: 0.1 }],
    });
    assert.equal(midnight.status, 200, JSON.stringify(midnight.body));
  });
});
