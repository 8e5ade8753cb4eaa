import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { VirtualClock } from '../src/core/clock.ts';
import type { StoreChoice } from '../src/core/hub.ts';
import { eventuallyPasses as until } from './helpers/hub-process.ts';
import { carAndItsSuccessor, restartableVehicleHub } from './helpers/restartable-vehicle-hub.ts';
import { CAR_SIGNALS, driveCar, parkedCarValues, type ScriptedCar } from './helpers/scripted-car.ts';
import { needService, services } from './helpers/services.ts';
import { dropSchema, unique } from './helpers/stores.ts';

/**
 * A car removed after it made a trip and a charge, and another attached under the same name: the
 * new car's trips and charging sessions are its own, none of the old car's, on either store. A
 * real hub over real VISS, called over its HTTP API.
 */
const START = Date.parse('2026-04-06T07:00:00Z');
const GRACE_MS = 60_000;
const P = CAR_SIGNALS;
type Row = Record<string, unknown>;

const pgSkip = await needService('pg');
const pgSchema = unique('triad_test_reattached').replace(/-/g, '_');
const backends: { name: string; store?: StoreChoice; skip: false | string }[] = [
  { name: 'SQLite', skip: false },
  { name: 'PostgreSQL', store: { kind: 'postgres', url: services.pg, schema: pgSchema }, skip: pgSkip },
];

for (const backend of backends) {
  describe(`vehicles: the records of a car attached under a removed car’s name (${backend.name})`, {
    skip: backend.skip,
  }, () => {
    const clock = new VirtualClock(START);
    const oldValues = parkedCarValues('40');
    const newValues = parkedCarValues('70');
    const triad = restartableVehicleHub({
      clock,
      store: backend.store,
      service: { tripStopGraceMs: GRACE_MS, backoff: { initialMs: 1_000, maxMs: 1_000 } },
    });
    const { oldCar, newCar, replace } = carAndItsSuccessor(triad, { clock, oldValues, newValues });

    const api = async <T>(path: string) => (await triad.api(path)).body as T;
    const vehicle = () => api<{ state: Row }>('/api/vehicles/car');
    const trips = () => api<Row[]>('/api/vehicles/car/trips');
    const sessions = () => api<Row[]>('/api/vehicles/car/charging-sessions');
    const heard = async (property: string, value: unknown) =>
      until(async () => assert.equal((await vehicle()).state[property], value));
    /** The car sets off, goes 2 km north in a minute and stands still: one trip. */
    const makeTrip = async (car: ScriptedCar, values: Record<string, string>) => {
      await clock.advance(1_000);
      driveCar(car, values, clock, { [P.moving]: 'true', [P.speed]: '50' });
      await heard('vehicle.moving', true);
      await clock.advance(60_000);
      const odometer = String(Number(values[P.odometer]) + 2_000);
      driveCar(car, values, clock, { [P.odometer]: odometer, [P.latitude]: String(Number(values[P.latitude]) + 0.02) });
      await heard('vehicle.odometer', Number(odometer));
      driveCar(car, values, clock, { [P.speed]: '0', [P.moving]: 'false' });
      await heard('vehicle.moving', false);
      await clock.advance(GRACE_MS + 1_000);
    };
    /** The car charges for half an hour, its level up 5 %. */
    const charge = async (car: ScriptedCar, values: Record<string, string>) => {
      await clock.advance(1_000);
      driveCar(car, values, clock, { [P.charging]: 'true' });
      await heard('charging.charging', true);
      await clock.advance(30 * 60_000);
      const level = String(Number(values[P.level]) + 5);
      driveCar(car, values, clock, { [P.level]: level });
      await heard('battery.level', Number(level));
      driveCar(car, values, clock, { [P.charging]: 'false' });
      await heard('charging.charging', false);
    };

    after(async () => {
      if (backend.store?.kind === 'postgres') await dropSchema(pgSchema);
    });

    it('lists the old car’s trip and charge while it is attached', async () => {
      await makeTrip(oldCar(), oldValues);
      await charge(oldCar(), oldValues);
      await until(async () => assert.equal((await trips()).length, 1));
      await until(async () => assert.equal((await sessions()).length, 1));
    });

    it('lists none of them, nor the trip it was removed on, for the car attached under its name', async () => {
      await clock.advance(1_000);
      driveCar(oldCar(), oldValues, clock, { [P.moving]: 'true', [P.speed]: '30' });
      await heard('vehicle.moving', true);
      const odometer = Number(oldValues[P.odometer]) + 1_000;
      driveCar(oldCar(), oldValues, clock, { [P.odometer]: String(odometer) });
      await heard('vehicle.odometer', odometer);
      assert.equal((await trips())[0]?.underWay, true, 'the old car sets off again');
      await clock.advance(1_000);
      await replace();
      assert.deepEqual(await trips(), []);
      assert.deepEqual(await sessions(), []);
    });

    it('lists only the new car’s own trip and charge once it makes them', async () => {
      await makeTrip(newCar(), newValues);
      await charge(newCar(), newValues);
      await until(async () => assert.equal((await sessions()).length, 1));
      const [trip, ...older] = await trips();
      assert.deepEqual(older, [], 'the old car’s trip stays out');
      assert.equal(trip.startLevel, 70);
      const [session] = await sessions();
      assert.equal(session.startLevel, 70);
    });
  });
}
