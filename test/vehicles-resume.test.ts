import assert from 'node:assert/strict';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { HubEvent } from '../src/core/events.ts';
import type { Store } from '../src/store/store.ts';
import { TRIP_EVENT } from '../src/vehicles/trips.ts';
import { tempDir } from './helpers/hub-process.ts';
import { bootVehicleParts, PARTS_CAR, PARTS_HOUSEHOLD, PARTS_STOP_GRACE_MS } from './helpers/vehicle-parts.ts';

/**
 * A restart in the middle of a drive: the recorder that comes up after it reads the drive so far
 * from history (a real SQLite file, written and reopened) and ends the trip where the car stops,
 * as one trip, not none.
 */
const HOUSEHOLD = PARTS_HOUSEHOLD;
const CAR = PARTS_CAR;
const GRACE_MS = PARTS_STOP_GRACE_MS;
const T0 = Date.UTC(2026, 10, 2, 8, 0, 0);

describe('vehicles: a trip or a charge under way survives a restart', () => {
  let file: string;

  beforeEach(async () => {
    file = join(await tempDir(), 'triad.db');
  });

  /** A hub's worth of vehicle parts over the test's store file (see bootVehicleParts). */
  const boot = (now: number, attachedAt = 0) => bootVehicleParts(file, now, attachedAt);

  /** A hub before the restart, the car parked with this odometer reading and then driving off at T0. */
  async function setOff(odometer: number) {
    const hub = await boot(T0);
    hub.recorder.start();
    await hub.report(T0 - 60_000, {
      'vehicle.moving': false,
      'vehicle.odometer': odometer,
      'battery.level': 80,
      'battery.capacity': 60,
      'location.latitude': 52.0,
      'location.longitude': 4.0,
    });
    await hub.report(T0, { 'vehicle.moving': true });
    return hub;
  }

  /** The first half of a drive: parked, then moving, 3 km along, with positions. */
  async function driveAndStop(stopBeforeRestart: boolean): Promise<Store> {
    const hub = await setOff(10_000);
    for (let i = 1; i <= 6; i++) {
      await hub.report(T0 + i * 60_000, {
        'vehicle.odometer': 10_000 + i * 500,
        'location.latitude': 52.0 + i * 0.004,
        'battery.level': 80 - i,
      });
    }
    if (stopBeforeRestart) await hub.report(T0 + 7 * 60_000, { 'vehicle.moving': false });
    hub.recorder.stop();
    assert.deepEqual(hub.trips, [], 'no trip has ended before the restart');
    await hub.store.close();
    return hub.store;
  }

  let open: Store | null = null;
  afterEach(async () => {
    await open?.close();
    open = null;
  });

  /** The hub started again at `now`: its store closed after the test, one recorder resumed (not started). */
  async function restart(now: number, resume: 'recorder' | 'charging', attachedAt?: number) {
    const hub = await boot(now, attachedAt);
    open = hub.store;
    await hub[resume].resume(hub.store, [HOUSEHOLD]);
    return hub;
  }

  it('a car driving when the hub stopped is still on the same trip after it starts again', async () => {
    await driveAndStop(false);
    const hub = await restart(T0 + 10 * 60_000, 'recorder');
    hub.recorder.start();
    await hub.report(T0 + 11 * 60_000, { 'vehicle.odometer': 14_000, 'location.latitude': 52.03 });
    await hub.report(T0 + 12 * 60_000, { 'vehicle.moving': false });
    await hub.clock.advance(GRACE_MS);
    assert.equal(hub.trips.length, 1, 'one trip, from before the restart to after it');
    const [trip] = hub.trips;
    assert.equal(trip.start, new Date(T0).toISOString());
    assert.equal(trip.end, new Date(T0 + 12 * 60_000).toISOString());
    assert.equal(trip.distanceM, 4000, 'odometer at the start (read from history) to the stop');
    assert.equal(trip.startLevel, 80);
    assert.deepEqual(trip.from, { latitude: 52.0, longitude: 4.0 });
    assert.ok(trip.route.length >= 7, `the route keeps the points from before the restart (${trip.route.length})`);
  });

  it('a car attached under the name of one detached mid-drive does not take up its trip after a restart', async () => {
    await driveAndStop(false);
    // The car on the road was detached, and another attached under its name, before the restart.
    const attachedAt = T0 + 8 * 60_000;
    const hub = await restart(T0 + 10 * 60_000, 'recorder', attachedAt);
    hub.recorder.start();
    await hub.report(T0 + 11 * 60_000, { 'vehicle.moving': false, 'vehicle.odometer': 50_000 });
    await hub.clock.advance(GRACE_MS);
    assert.deepEqual(hub.trips, [], 'the new car, parked, has made no trip');
  });

  it('reads a long drive from history page by page', async () => {
    const first = await setOff(0);
    // 6,000 reports a second apart, several properties each: more than one page of history.
    for (let i = 1; i <= 6000; i += 100) {
      for (let j = i; j < i + 100; j++) {
        await first.report(T0 + j * 1000, { 'vehicle.odometer': j * 10, 'location.latitude': 52 + j * 0.0001 });
      }
    }
    first.recorder.stop();
    await first.store.close();
    const hub = await restart(T0 + 6001 * 1000, 'recorder');
    hub.recorder.start();
    await hub.report(T0 + 6002 * 1000, { 'vehicle.moving': false });
    await hub.clock.advance(GRACE_MS);
    assert.equal(hub.trips.length, 1);
    assert.equal(hub.trips[0].distanceM, 60_000);
    assert.ok(hub.trips[0].route.length > 1000, `route points: ${hub.trips[0].route.length}`);
  });

  it('a car that stopped before the restart has its trip ended where it stopped', async () => {
    await driveAndStop(true);
    // Down longer than the grace period: the trip ends as soon as the hub is back.
    const hub = await restart(T0 + 30 * 60_000, 'recorder');
    assert.equal(hub.trips.length, 1);
    assert.equal(hub.trips[0].end, new Date(T0 + 7 * 60_000).toISOString());
    assert.equal(hub.trips[0].distanceM, 3000);
    hub.recorder.start();
    hub.recorder.stop();
  });

  it('a trip already recorded is not recorded again, and a stop inside its grace waits out the rest', async () => {
    await driveAndStop(true);
    // Back 30 s after the car stopped: 30 s of the 60 s grace are left.
    const hub = await restart(T0 + 7 * 60_000 + 30_000, 'recorder');
    hub.recorder.start();
    assert.equal(hub.trips.length, 0, 'not yet: the car may drive on');
    await hub.clock.advance(29_000);
    assert.equal(hub.trips.length, 0);
    await hub.clock.advance(1_000);
    assert.equal(hub.trips.length, 1, 'ended when the grace ran out');
    // Recorded as an event; a later restart finds it and does not record the trip twice.
    await hub.store.appendEvents([
      {
        type: TRIP_EVENT,
        id: 'evt_trip_1',
        householdId: HOUSEHOLD,
        ts: T0 + 7 * 60_000,
        cause: null,
        thing: CAR,
        data: { ...hub.trips[0] },
      } as unknown as HubEvent,
    ]);
    hub.recorder.stop();
    await hub.store.close();
    const again = await boot(T0 + 60 * 60_000);
    open = again.store;
    await again.recorder.resume(again.store, [HOUSEHOLD]);
    assert.equal(again.trips.length, 0);
  });

  it('a car charging when the hub stopped has its whole session recorded when it stops charging', async () => {
    const first = await boot(T0);
    first.charging.start();
    await first.report(T0 - 60_000, {
      'charging.charging': false,
      'vehicle.charged_energy': 1000,
      'battery.level': 40,
      'battery.capacity': 60,
    });
    await first.report(T0, { 'charging.charging': true, 'charging.power': 7 });
    await first.report(T0 + 30 * 60_000, { 'charging.power': 11, 'vehicle.charged_energy': 1005, 'battery.level': 48 });
    first.charging.stop();
    await first.store.close();

    const hub = await restart(T0 + 45 * 60_000, 'charging');
    hub.charging.start();
    await hub.report(T0 + 60 * 60_000, { 'vehicle.charged_energy': 1009, 'battery.level': 55, 'charging.power': 6 });
    await hub.report(T0 + 61 * 60_000, { 'charging.charging': false });
    assert.equal(hub.charges.length, 1, 'one session, from before the restart to after it');
    const [session] = hub.charges;
    assert.equal(session.start, new Date(T0).toISOString());
    assert.equal(session.energyKwh, 9, 'from the counter as it was when charging started');
    assert.equal(session.startLevel, 40);
    assert.equal(session.maxPowerKw, 11, 'the peak from before the restart counts');
    hub.charging.stop();
  });
});
