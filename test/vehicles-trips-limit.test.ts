import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { VirtualClock } from '../src/core/clock.ts';
import type { HubEvent } from '../src/core/events.ts';
import { Hub } from '../src/core/hub.ts';
import { newId } from '../src/core/ids.ts';
import { createLogger } from '../src/core/log.ts';
import { CarSimulator } from '../src/sim/car/index.ts';
import { VehicleService } from '../src/vehicles/index.ts';
import { TRIP_EVENT, type TripRecord } from '../src/vehicles/trips.ts';
import { eventually, tempDir } from './helpers/hub-process.ts';

/**
 * `?limit=N` on a car's trips counts recorded trips: the trip the car is on is listed first in
 * addition to them, so a page of the last five trips is five trips whether the car is out or not.
 */
const START = Date.parse('2026-01-05T07:58:00Z');
const DAY = 86_400_000;

describe('vehicles: the trips list and its limit, with a trip under way', () => {
  const clock = new VirtualClock(START);
  let sim: CarSimulator;
  let hub: Hub;
  /** Ids of the recorded trips, newest first. */
  const recorded: string[] = [];

  const api = async (path: string, init: RequestInit = {}, status = 200) => {
    const headers = new Headers(init.headers);
    headers.set('authorization', `Bearer ${hub.ownerToken}`);
    if (init.body !== undefined) headers.set('content-type', 'application/json');
    const res = await fetch(hub.httpUrl + path, { ...init, headers });
    const body = await res.json();
    assert.equal(res.status, status, `${init.method ?? 'GET'} ${path}: ${JSON.stringify(body)}`);
    return body as Array<Record<string, unknown>>;
  };

  before(async () => {
    sim = new CarSimulator({ clock, vissPort: 0 });
    await sim.start();
    const dataDir = await tempDir();
    const hubOn = (at: VirtualClock) =>
      new Hub({
        dataDir,
        http: { port: 0, host: '127.0.0.1' },
        mqtt: { port: 0, host: '127.0.0.1' },
        clock: at,
        log: createLogger({ level: (process.env.TEST_LOG ?? 'silent') as 'silent' }),
      }).use(new VehicleService({ tripStopGraceMs: 60_000 }));
    // The car was attached two years ago, before every trip below: a car's list holds only what
    // was recorded since it was attached (one attached later under its name starts afresh).
    hub = hubOn(new VirtualClock(START - 730 * DAY));
    await hub.start();
    await api('/api/vehicles', { method: 'POST', body: JSON.stringify({ name: 'Family car', viss: sim.url }) }, 201);
    await hub.stop();
    hub = hubOn(clock);
    await hub.start();
    // Seven trips of the days before, as the recorder writes them.
    const trips: HubEvent[] = [];
    for (let day = 7; day >= 1; day--) {
      const end = START - day * DAY + 3_600_000;
      const data: TripRecord = {
        start: new Date(end - 900_000).toISOString(),
        end: new Date(end).toISOString(),
        durationS: 900,
        distanceM: 7_000 + day,
        energyKwh: 1.2,
        startLevel: 80,
        endLevel: 78,
        averageSpeedKmh: 28,
        from: null,
        to: null,
        route: [],
      };
      const id = newId(end, 'evt_');
      trips.push({
        type: TRIP_EVENT,
        id,
        householdId: hub.householdId,
        ts: end,
        cause: null,
        thing: 'family-car',
        data,
      } as unknown as HubEvent);
      recorded.unshift(id);
    }
    await hub.store.appendEvents(trips);
  });

  after(async () => {
    await hub?.stop();
    await sim?.stop();
  });

  it('gives `limit` recorded trips, newest first, and the trip under way before them', async () => {
    const parked = await api('/api/vehicles/family-car/trips?limit=5');
    assert.deepEqual(
      parked.map((trip) => trip.id),
      recorded.slice(0, 5),
      'parked: the five newest recorded trips',
    );

    // 07:58 → 08:03: the car leaves home at 08:00 and is on the road.
    for (let s = 0; s < 5 * 60; s++) {
      await clock.advance(1000);
      if (s % 10 === 9) await new Promise((resolve) => setTimeout(resolve, 2));
    }
    await eventually(async () => (await api('/api/vehicles/family-car/trips?limit=1'))[0]?.underWay === true, {
      what: 'the trip under way',
    });

    const driving = await api('/api/vehicles/family-car/trips?limit=5');
    assert.equal(driving.length, 6, 'the trip under way and five recorded ones');
    assert.equal(driving[0].underWay, true);
    assert.equal(driving[0].id, null);
    assert.equal(driving[0].end, null);
    assert.deepEqual(
      driving.slice(1).map((trip) => trip.id),
      recorded.slice(0, 5),
      'the same five recorded trips as when the car was parked',
    );

    const one = await api('/api/vehicles/family-car/trips?limit=1');
    assert.deepEqual(
      one.map((trip) => trip.id),
      [null, recorded[0]],
    );
    const all = await api('/api/vehicles/family-car/trips');
    assert.deepEqual(
      all.map((trip) => trip.id),
      [null, ...recorded],
    );
  });

  it('still gives the newest trips when the car has made more than ten thousand', async () => {
    // Years of driving before the seven: they are older, so they must not push the seven out.
    const older: HubEvent[] = [];
    const first = START - 8 * DAY;
    for (let n = 0; n < 10_050; n++) {
      const end = first - n * 3_600_000;
      older.push({
        type: TRIP_EVENT,
        id: newId(end, 'evt_'),
        householdId: hub.householdId,
        ts: end,
        cause: null,
        thing: 'family-car',
        data: { start: new Date(end - 600_000).toISOString(), end: new Date(end).toISOString(), distanceM: 1000 },
      } as unknown as HubEvent);
    }
    await hub.store.appendEvents(older);
    const latest = await api('/api/vehicles/family-car/trips?limit=5');
    assert.deepEqual(
      latest.filter((trip) => trip.id !== null).map((trip) => trip.id),
      recorded.slice(0, 5),
    );
  });
});
