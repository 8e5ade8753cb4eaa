import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { VirtualClock } from '../src/core/clock.ts';
import { eventuallyPasses } from './helpers/hub-process.ts';
import { scriptedCarOnRestartableHub } from './helpers/restartable-vehicle-hub.ts';
import { CAR_SIGNALS, parkedCarValues } from './helpers/scripted-car.ts';

/**
 * A car whose odometer goes back mid-drive (an instrument cluster replaced, a reset, a wrong
 * reading): the trip it is on is not lost, listed or recorded, and counts on from the new reading.
 * A real hub over real VISS with a car scripted by the test on the hub's virtual clock, restarted
 * where a trip under way has to be read back from history.
 */
const START = Date.parse('2026-03-02T08:00:00Z');
const GRACE_MS = 60_000;
const HOUR = 3_600_000;
const P = CAR_SIGNALS;
const until = eventuallyPasses;

describe('vehicles: an odometer that goes back mid-trip', () => {
  const clock = new VirtualClock(START);
  const values = parkedCarValues('80');
  const { triad, car, vehicle, trips, drive, driveOn, park, restart, setOff } = scriptedCarOnRestartableHub({
    clock,
    values,
    service: { tripStopGraceMs: GRACE_MS, backoff: { initialMs: 1_000, maxMs: 1_000 } },
    /** The hub has heard the car once its odometer reads what the car says. */
    heard: async (changes, vehicle) => {
      const odometer = Number(changes[P.odometer] ?? values[P.odometer]);
      await until(async () => assert.equal((await vehicle()).state['vehicle.odometer'], odometer));
      const moving = changes[P.moving];
      if (moving) await until(async () => assert.equal((await vehicle()).state['vehicle.moving'], moving === 'true'));
    },
  });
  const resetWarnings = () => triad.warnings.filter((line) => /went back/.test(line.message));

  it('keeps the trip under way listed and records it, counting on from the new reading, with one warning', async () => {
    await setOff();
    await drive({ [P.odometer]: '1002000', [P.consumed]: '100.4', [P.latitude]: '52.02' });
    // The cluster is replaced: its odometer reads 50 km less, its energy counter starts again.
    await clock.advance(60_000);
    await drive({ [P.odometer]: '952000', [P.consumed]: '0' });
    const [sameTrip] = await trips();
    assert.equal(sameTrip?.underWay, true, `the trip is still listed: ${JSON.stringify(sameTrip)}`);
    assert.equal(sameTrip.distanceM, 2000, 'what it had come before the odometer went back');
    await clock.advance(60_000);
    await drive({ [P.odometer]: '954000', [P.consumed]: '0.3', [P.latitude]: '52.04' });
    assert.equal((await trips())[0]?.distanceM, 4000);
    // Reset once more: still one warning for the trip.
    await clock.advance(30_000);
    await drive({ [P.odometer]: '0' });
    await clock.advance(30_000);
    await drive({ [P.odometer]: '1000' });

    const trip = await park(1);
    assert.equal(trip.distanceM, 5000, '2 km, then 2 km, then 1 km: the stretches it went forward');
    assert.equal(trip.energyKwh, 0.7, '0.4 kWh, then 0.3 kWh from the counter started again');
    assert.ok((trip.averageSpeedKmh as number) > 0);
    assert.equal(resetWarnings().length, 1, JSON.stringify(triad.warnings));
    assert.equal(resetWarnings()[0].level, 'warn');
  });

  it('counts nothing for one wrong reading that the next one undoes', async () => {
    await drive({ [P.odometer]: '100000', [P.consumed]: '10' });
    await setOff();
    await drive({ [P.odometer]: '101000' });
    await clock.advance(1_000);
    await drive({ [P.odometer]: '7' });
    await clock.advance(1_000);
    await drive({ [P.odometer]: '101500' });
    const trip = await park(2);
    assert.equal(trip.distanceM, 1500, 'not the whole jump back up from the wrong reading');
  });

  it('counts a drive on from an odometer that went back while the car stood within the grace', async () => {
    await drive({ [P.odometer]: '400000', [P.consumed]: '40' });
    await setOff();
    await drive({ [P.odometer]: '401000' });
    // Stopped, the car is restarted with its new cluster and drives on 10 s later.
    await drive({ [P.speed]: '0', [P.moving]: 'false' });
    await drive({ [P.odometer]: '351000' });
    await clock.advance(10_000);
    await driveOn();
    await drive({ [P.odometer]: '352000' });
    const trip = await park(3);
    assert.equal(trip.distanceM, 2000, '1 km before the restart, 1 km after it');
  });

  it('measures a trip across a reset and a restart of the hub mid-drive', async () => {
    await drive({ [P.odometer]: '200000', [P.consumed]: '20' });
    await setOff();
    await drive({ [P.odometer]: '203000', [P.consumed]: '20.5' });
    await clock.advance(60_000);
    await drive({ [P.odometer]: '153000', [P.consumed]: '0' });
    await clock.advance(60_000);
    await drive({ [P.odometer]: '154000', [P.consumed]: '0.2' });
    // The hub is down for ten minutes; the car drives on 2 km more meanwhile.
    Object.assign(values, { [P.odometer]: '156000', [P.consumed]: '0.6' });
    await restart(10 * 60_000);
    await until(async () => assert.equal((await trips())[0]?.underWay, true));
    assert.equal((await trips())[0].distanceM, 6000, 'the trip under way, read back from history');
    const trip = await park(4);
    assert.equal(trip.distanceM, 6000, '3 km before the reset, 3 km after it');
    assert.equal(trip.energyKwh, 1.1);
  });

  it('keeps a trip under way whose car has not been heard of for over a day across a restart', async () => {
    await drive({ [P.odometer]: '300000' });
    await clock.advance(1_000);
    const setOffAt = clock.now();
    await drive({ [P.moving]: 'true', [P.speed]: '50' });
    await clock.advance(60_000);
    await drive({ [P.odometer]: '302000' });
    // Out of reach, and the hub down, for more than a day; the car is still on the road.
    car().reachable = false;
    car().drop();
    Object.assign(values, { [P.odometer]: '340000' });
    await triad.stop();
    await clock.advance(25 * HOUR);
    car().reachable = true;
    await triad.start();
    await until(async () => assert.equal((await vehicle()).connected, true));
    await until(async () => assert.equal((await trips())[0]?.underWay, true));
    const trip = await park(5);
    assert.equal(trip.start, new Date(setOffAt).toISOString(), 'from when it set off');
    assert.equal(trip.distanceM, 40_000);
  });
});
