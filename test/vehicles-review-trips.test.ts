import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { VirtualClock } from '../src/core/clock.ts';
import { distanceMetres } from '../src/people/geo.ts';
import { signalForPath } from '../src/vehicles/signals.ts';
import { CounterReadings, FASTEST_PER_HOUR } from '../src/vehicles/trips.ts';
import { eventuallyPasses } from './helpers/hub-process.ts';
import { restartableVehicleHub, scriptedCarOnRestartableHub } from './helpers/restartable-vehicle-hub.ts';
import { CAR_SIGNALS, driveCar, parkedCarValues, type ScriptedCar, startScriptedCar } from './helpers/scripted-car.ts';

/**
 * Trips measured from what real cars send: a charge that rises on the way, a counter reading far
 * too high for a moment, a position fix that comes as two signals, a car that lacks a counter. A
 * real hub over real VISS with a car scripted by the test on the hub's virtual clock.
 */
const START = Date.parse('2026-03-02T08:00:00Z');
const GRACE_MS = 60_000;
const P = CAR_SIGNALS;
const until = eventuallyPasses;

type Row = Record<string, unknown>;

/**
 * A hub (that the test may restart) following a parked car that lacks the signals `lacking`, with
 * the steps the tests drive it by. Call inside a describe: it starts and stops them around it.
 */
function carOnTheRoad(lacking: string[]) {
  const clock = new VirtualClock(START);
  const values = parkedCarValues('80');
  for (const path of lacking) delete values[path];
  const { trips, drive, driveOn, park, restart, setOff } = scriptedCarOnRestartableHub({
    clock,
    values,
    service: { tripStopGraceMs: GRACE_MS, backoff: { initialMs: 1_000, maxMs: 1_000 } },
    /** The hub has heard the car once its state says what the car says. */
    heard: (changes, vehicle) =>
      until(async () => {
        const { state } = await vehicle();
        for (const [path, text] of Object.entries(changes)) {
          const signal = signalForPath(path);
          const value = text === 'true' || text === 'false' ? text === 'true' : Number(text);
          assert.equal(state[signal?.property ?? path], signal?.fromVss ? signal.fromVss(value) : value, path);
        }
      }),
  });
  /**
   * The car stops, charges to `level` % for `chargingMs` as it stands, and drives on for a minute
   * once `meanwhile` has passed the rest of the stop (within the grace).
   */
  const topUpAndDriveOn = async (level: string, chargingMs: number, meanwhile: () => Promise<void>) => {
    await drive({ [P.speed]: '0', [P.moving]: 'false' });
    await clock.advance(chargingMs);
    await drive({ [P.level]: level });
    await meanwhile();
    await driveOn();
  };
  return { clock, trips, drive, park, restart, setOff, topUpAndDriveOn };
}

describe('vehicles: trip energy from the charge, when the charge rises on the way', () => {
  // No consumed-energy counter: a trip's energy is the charge it used.
  const { clock, trips, drive, park, restart, setOff, topUpAndDriveOn } = carOnTheRoad([P.consumed]);

  it('never records a negative energy for a trip that ends with more charge than it began (downhill)', async () => {
    await setOff();
    await drive({ [P.odometer]: '1001000', [P.level]: '79', [P.latitude]: '52.01' });
    await clock.advance(60_000);
    await drive({ [P.odometer]: '1003000', [P.level]: '81', [P.latitude]: '52.03' });
    const [underWay] = await trips();
    assert.equal(underWay?.underWay, true);
    assert.ok((underWay.energyKwh as number) >= 0, `under way: ${underWay.energyKwh} kWh`);
    const trip = await park(1);
    assert.equal(trip.distanceM, 3000);
    assert.equal(trip.energyKwh, 0, 'regenerated more than it used: nothing used, not less than nothing');
  });

  it('does not take a charge at a stop shorter than the grace off what the drive used', async () => {
    await setOff();
    // 81 % → 71 %: 10 % of 60 kWh.
    await drive({ [P.odometer]: '1010000', [P.level]: '71', [P.latitude]: '52.1' });
    // A quick top-up within the grace: the car stands and charges to 91 %.
    await topUpAndDriveOn('91', 20_000, () => clock.advance(20_000));
    // 91 % → 86 %: 5 % more.
    await drive({ [P.odometer]: '1015000', [P.level]: '86', [P.latitude]: '52.15' });
    const [underWay] = await trips();
    assert.equal(underWay?.underWay, true);
    assert.equal(underWay.energyKwh, 9, `under way: ${JSON.stringify(underWay)}`);
    const trip = await park(2);
    assert.equal(trip.distanceM, 12000);
    assert.equal(trip.energyKwh, 9, '15 % of 60 kWh used driving; the 20 % charged at the stop is not subtracted');
  });

  it('counts so across a restart of the hub: the trip is read back from history by the same rule', async () => {
    await setOff();
    // 86 % → 76 %, a top-up at a stop to 96 %, the hub restarted, then on to 91 %: 15 % used.
    await drive({ [P.odometer]: '1020000', [P.level]: '76', [P.latitude]: '52.2' });
    await topUpAndDriveOn('96', 10_000, () => restart(10_000));
    await drive({ [P.odometer]: '1025000', [P.level]: '91', [P.latitude]: '52.25' });
    const trip = await park(3);
    assert.equal(trip.distanceM, 10000);
    assert.equal(trip.energyKwh, 9, JSON.stringify(trip));
  });
});

describe('vehicles: a counter reading far too high for a moment, undone by the next', () => {
  const { clock, trips, drive, park, setOff } = carOnTheRoad([]);

  it('records the trip as driven: the jump in the odometer and the energy counter counts nothing', async () => {
    await setOff();
    await drive({ [P.odometer]: '1001000', [P.consumed]: '100.2' });
    await clock.advance(1_000);
    // The cluster's "not available" (uint32's largest) for a moment, read as a distance.
    await drive({ [P.odometer]: '4294967295', [P.consumed]: '9999' });
    await clock.advance(60_000);
    await drive({ [P.odometer]: '1003000', [P.consumed]: '100.6' });
    const [underWay] = await trips();
    assert.equal(underWay?.distanceM, 3000, JSON.stringify(underWay));
    const trip = await park(1);
    assert.equal(trip.distanceM, 3000);
    assert.equal(trip.energyKwh, 0.6);
  });
});

describe('vehicles: the distance of a car with no odometer', () => {
  const { clock, trips, drive, park } = carOnTheRoad([P.odometer]);

  it('goes fix to fix, not round the corner half a fix (its latitude alone) makes', async () => {
    await clock.advance(1_000);
    await drive({ [P.moving]: 'true', [P.speed]: '80' });
    // North-east: over VISS each fix comes as a latitude, then a longitude, stamped alike.
    const fixes = [1, 2, 3, 4, 5].map((i) => ({ latitude: 52 + i * 0.005, longitude: 5 + i * 0.008 }));
    for (const fix of fixes) {
      await clock.advance(30_000);
      await drive({ [P.latitude]: String(fix.latitude), [P.longitude]: String(fix.longitude) });
    }
    const straight = distanceMetres({ latitude: 52, longitude: 5 }, fixes[4]);
    const [underWay] = await trips();
    assert.ok(Math.abs((underWay.distanceM as number) - straight) < 10, `${underWay.distanceM} m, not ${straight}`);
    const trip = await park(1);
    assert.ok(Math.abs((trip.distanceM as number) - straight) < 10, `${trip.distanceM} m, not ${straight}`);
    assert.equal((trip.route as unknown[]).length, 6, 'the start and each fix, no corners');
  });
});

describe('vehicles: a car detached mid-trip, and another attached under its name', () => {
  const clock = new VirtualClock(START);
  const triad = restartableVehicleHub({ clock, service: { tripStopGraceMs: GRACE_MS } });
  const cars: ScriptedCar[] = [];
  const trips = async () => (await triad.api('/api/vehicles/car/trips')).body as unknown as Row[];
  const state = async () => ((await triad.api('/api/vehicles/car')).body.state ?? {}) as Row;
  const attach = async (values: Record<string, string>) => {
    const car = await startScriptedCar({ clock, values, subscriptionId: (path) => path });
    cars.push(car);
    await triad.attach(car.url);
    await until(async () => assert.equal((await state())['vehicle.odometer'], Number(values[P.odometer])));
    return car;
  };
  const drive = async (car: ScriptedCar, values: Record<string, string>, changes: Record<string, string>) => {
    driveCar(car, values, clock, changes);
    await until(async () => assert.equal((await state())['vehicle.odometer'], Number(values[P.odometer])));
  };

  before(() => triad.start());
  after(async () => {
    await triad.stop();
    for (const car of cars) await car.close();
  });

  it('starts the new car on a trip of its own, not on the one the old car was on', async () => {
    const oldValues = parkedCarValues('80');
    const old = await attach(oldValues);
    await clock.advance(1_000);
    await drive(old, oldValues, { [P.moving]: 'true', [P.speed]: '50' });
    await clock.advance(60_000);
    await drive(old, oldValues, { [P.odometer]: '1005000', [P.latitude]: '52.05' });
    assert.equal((await trips())[0]?.underWay, true);
    const { hub } = triad;
    const headers = { authorization: `Bearer ${hub.ownerToken}` };
    assert.equal((await fetch(`${hub.httpUrl}/api/vehicles/car`, { method: 'DELETE', headers })).status, 204);
    await clock.advance(3_600_000);

    // Another car, 4,000 km further on its clock, parked elsewhere, then driven 2 km.
    const newValues = { ...parkedCarValues('60'), [P.odometer]: '5000000', [P.latitude]: '48.0' };
    const other = await attach(newValues);
    assert.deepEqual(await trips(), [], 'a parked car is on no trip');
    const setOff = clock.now() + 1_000;
    await clock.advance(1_000);
    await drive(other, newValues, { [P.moving]: 'true', [P.speed]: '50' });
    await clock.advance(60_000);
    await drive(other, newValues, { [P.odometer]: '5002000', [P.latitude]: '48.02' });
    await drive(other, newValues, { [P.speed]: '0', [P.moving]: 'false' });
    await clock.advance(GRACE_MS + 1_000);
    await until(async () => assert.equal((await trips()).length, 1));
    const [trip] = await trips();
    assert.equal(trip.distanceM, 2000, JSON.stringify(trip));
    assert.equal(trip.start, new Date(setOff).toISOString());
    assert.deepEqual(trip.from, { latitude: 48, longitude: 5 });
  });
});

describe('CounterReadings', () => {
  it('counts a counter going forward with single wrong readings (too high or too low) as the forward run alone', () => {
    // A run of true readings going forward; some are followed by one wrong reading, high or low.
    const reading = fc.record({
      step: fc.integer({ min: 0, max: 1_000 }),
      wrong: fc.option(fc.oneof(fc.integer({ min: 2_000_000, max: 9_000_000 }), fc.integer({ min: 0, max: 500 }))),
    });
    fc.assert(
      fc.property(fc.integer({ min: 1_000, max: 1_000_000 }), fc.array(reading, { maxLength: 30 }), (first, run) => {
        // An odometer read each second: up to 1 km a second is the car, millions of metres a glitch.
        let at = START;
        const counter = new CounterReadings(first, { at, perHour: FASTEST_PER_HOUR.odometer });
        const read = (value: number) => {
          at += 1_000;
          counter.read(value, at);
        };
        let now = first;
        for (const { step, wrong } of run) {
          now += step;
          read(now);
          if (wrong !== null) read(wrong);
        }
        // One more true reading undoes the last wrong one.
        now += 1;
        read(now);
        assert.equal(counter.total(now), now - first);
      }),
    );
  });
});
