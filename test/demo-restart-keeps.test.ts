import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { type Clock, VirtualClock } from '../src/core/clock.ts';
import type { Hub } from '../src/core/hub.ts';
import { createLogger } from '../src/core/log.ts';
import { createTriad } from '../src/triad.ts';
import { eventually, tempDir } from './helpers/hub-process.ts';
import { ownerJson } from './helpers/owner-api.ts';

const HOUR = 3_600_000;

interface Slot {
  start: string;
  end: string;
  price: number;
}
interface Person {
  id: string;
  name: string;
  trackers: Array<{ id: string; name: string; username: string; lastSeen: string | null }>;
}

/** `triad start --demo` in this process on `dataDir`, as createTriad composes it. */
async function startDemo(dataDir: string, clock?: Clock): Promise<Hub> {
  const hub = createTriad({
    dataDir,
    ...(clock ? { clock } : {}),
    http: { port: 0, host: '127.0.0.1' },
    mqtt: { port: 0, host: '127.0.0.1' },
    demo: true,
    log: createLogger({ level: (process.env.TEST_LOG ?? 'silent') as 'silent' }),
  });
  await hub.start();
  return hub;
}

/** Hourly slots from `from` for `hours`, at `price(hour of day)`. */
function series(from: number, hours: number, price: (hour: number) => number): Slot[] {
  return Array.from({ length: hours }, (_, i) => {
    const start = from + i * HOUR;
    return {
      start: new Date(start).toISOString(),
      end: new Date(start + HOUR).toISOString(),
      price: price(new Date(start).getUTCHours()),
    };
  });
}

const trackersOf = (people: Person[]) =>
  people
    .filter((p) => p.name === 'Alex' || p.name === 'Sam')
    .map((p) => ({ person: p.id, trackers: p.trackers.map(({ id, name, username }) => ({ id, name, username })) }));

/**
 * The demo started again on the same data folder carries on with what the household has: prices
 * and site settings the user set, and the phones' trackers (same ids and user names), rather than
 * setting itself up afresh over them.
 */
describe('the demo started again on the same data folder', () => {
  let dataDir = '';
  let hub: Hub | null = null;
  const today = Date.now() - (Date.now() % (24 * HOUR));
  // 72 hours from today's midnight (UTC): 0.30 from 04:00 to 08:00, 0.21 otherwise.
  const userPrices = series(today, 72, (hour) => (hour >= 4 && hour < 8 ? 0.3 : 0.21));
  let trackersBefore: ReturnType<typeof trackersOf> = [];
  let restartedAt = 0;

  before(async () => {
    dataDir = await tempDir('triad-demo-keeps-');
    hub = await startDemo(dataDir);
    const demoPrices = await ownerJson<{ slots: Slot[] }>(hub, '/api/energy/prices');
    assert.equal(demoPrices.slots.length, 48, 'the demo put its own prices at its first start');
    await ownerJson(hub, '/api/energy/prices', 'PUT', { currency: 'EUR', slots: userPrices });
    const site = await ownerJson<Record<string, unknown>>(hub, '/api/energy/site');
    await ownerJson(hub, '/api/energy/site', 'PUT', {
      grid: site.grid,
      solar: site.solar,
      house: site.house,
      limitKw: 25,
      houseReserveKw: 1.5,
    });
    trackersBefore = trackersOf(await ownerJson<Person[]>(hub, '/api/people'));
    // The user has no use for the demo's workplaces.
    for (const zone of await ownerJson<Array<{ id: string; name: string }>>(hub, '/api/zones'))
      if (zone.name !== 'Home') await ownerJson(hub, `/api/zones/${zone.id}`, 'DELETE');
    await hub.stop();
    restartedAt = Date.now();
    hub = await startDemo(dataDir);
  });

  after(async () => {
    await hub?.stop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it("keeps the site's fuse limit and reserve the user set", async () => {
    const site = await ownerJson<{ limitKw: number; houseReserveKw: number; grid: string }>(hub!, '/api/energy/site');
    assert.equal(site.limitKw, 25);
    assert.equal(site.houseReserveKw, 1.5);
    assert.equal(site.grid, 'grid-meter');
  });

  it('does not bring back the zones the user removed', async () => {
    const zones = await ownerJson<Array<{ name: string }>>(hub!, '/api/zones');
    assert.deepEqual(
      zones.map((zone) => zone.name),
      ['Home'],
    );
  });

  it('finds the same trackers, with the same user names, and the phones report on them', async () => {
    assert.equal(trackersBefore.length, 2, 'Alex and Sam');
    for (const person of trackersBefore) assert.equal(person.trackers.length, 1, `${person.person} has one phone`);
    assert.deepEqual(trackersOf(await ownerJson<Person[]>(hub!, '/api/people')), trackersBefore);
    // Their saved passwords still open the hub: each phone's fix after the restart lands on its tracker.
    await eventually(
      async () => {
        const trackers = (await ownerJson<Person[]>(hub!, '/api/people')).flatMap((p) => p.trackers);
        return trackers.every((t) => t.lastSeen !== null && Date.parse(t.lastSeen) >= restartedAt - 1_000);
      },
      { what: 'both phones reporting after the restart', timeoutMs: 10_000 },
    );
  });

  it("keeps the user's prices while they last, and puts the demo's own again once they have run out", async () => {
    const prices = await ownerJson<{ currency: string; slots: Slot[] }>(hub!, '/api/energy/prices');
    assert.equal(prices.currency, 'EUR');
    assert.deepEqual(prices.slots, userPrices);

    await hub!.stop();
    // Started again four days on, when the user's 72 hours of prices are all in the past.
    const later = new VirtualClock(today + 4 * 24 * HOUR + 10 * HOUR);
    hub = await startDemo(dataDir, later);
    const renewed = await ownerJson<{ slots: Slot[] }>(hub, '/api/energy/prices');
    assert.equal(renewed.slots.length, 48);
    assert.equal(renewed.slots[0].start, new Date(today + 4 * 24 * HOUR).toISOString(), 'from that day on');

    // The demo's own prices are its to renew: a day later they start from that day, not the one before.
    await hub.stop();
    hub = await startDemo(dataDir, new VirtualClock(today + 5 * 24 * HOUR + 10 * HOUR));
    const nextDay = await ownerJson<{ slots: Slot[] }>(hub, '/api/energy/prices');
    assert.equal(nextDay.slots[0].start, new Date(today + 5 * 24 * HOUR).toISOString());
  });
});
