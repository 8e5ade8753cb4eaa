import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { VirtualClock } from '../src/core/clock.ts';
import { eventuallyPasses } from './helpers/hub-process.ts';
import { restartableVehicleHub } from './helpers/restartable-vehicle-hub.ts';
import { CAR_SIGNALS, driveCar, parkedCarValues, type ScriptedCar, startScriptedCar } from './helpers/scripted-car.ts';

/**
 * A car whose charged-energy counter goes back mid-charge (a reset, a replaced battery module's
 * controller): the session counts on from the new reading, never records less than nothing, and
 * is measured the same across a restart of the hub. A real hub over real VISS with a car scripted
 * by the test on the hub's virtual clock.
 */
const START = Date.parse('2026-03-02T18:00:00Z');
const P = CAR_SIGNALS;
const until = eventuallyPasses;

type Row = Record<string, unknown>;

describe('vehicles: a charged-energy counter that goes back mid-charge', () => {
  const clock = new VirtualClock(START);
  const values = parkedCarValues('40');
  const triad = restartableVehicleHub({ clock, service: { backoff: { initialMs: 1_000, maxMs: 1_000 } } });
  let car: ScriptedCar;

  const api = async <T>(path: string, init?: RequestInit) => (await triad.api(path, init)).body as T;
  const vehicle = () => api<{ connected: boolean; state: Row }>('/api/vehicles/car');
  const sessions = () => api<Row[]>('/api/vehicles/car/charging-sessions');
  const resetWarnings = () => triad.warnings.filter((line) => /went back/.test(line.message));

  /** The car's charged-energy counter (and anything else) changes; the hub has heard it. */
  const charge = async (changes: Record<string, string>) => {
    driveCar(car, values, clock, changes);
    const charged = Number(changes[P.charged] ?? values[P.charged]);
    await until(async () => assert.equal((await vehicle()).state['vehicle.charged_energy'], charged));
    const charging = changes[P.charging];
    if (charging)
      await until(async () => assert.equal((await vehicle()).state['charging.charging'], charging === 'true'));
  };

  before(async () => {
    car = await startScriptedCar({ clock, values, subscriptionId: (path) => path, refuseUnknownSubscriptions: false });
    await triad.start();
    await triad.attach(car.url);
    await until(async () => assert.equal((await vehicle()).state['battery.level'], 40));
  });

  after(async () => {
    await triad.stop();
    await car?.close();
  });

  it('records the energy charged on either side of a reset, never less than nothing, with one warning', async () => {
    await clock.advance(1_000);
    await charge({ [P.charging]: 'true' });
    await clock.advance(30 * 60_000);
    await charge({ [P.charged]: '55', [P.level]: '48' });
    await clock.advance(60_000);
    await charge({ [P.charged]: '0' });
    assert.equal((await vehicle()).state['charging.energy'], 5, 'the live energy does not fall back to nothing');
    await clock.advance(30 * 60_000);
    await charge({ [P.charged]: '3', [P.level]: '53' });
    await clock.advance(1_000);
    await charge({ [P.charged]: '1' });
    await clock.advance(1_000);
    await charge({ [P.charged]: '1.5' });
    await charge({ [P.charging]: 'false' });
    await until(async () => assert.equal((await sessions()).length, 1));
    const [session] = await sessions();
    assert.equal(session.energyKwh, 8.5, '5 kWh, then 3, then 0.5: the stretches the counter went forward');
    assert.ok((session.averagePowerKw as number) > 0, JSON.stringify(session));
    assert.equal(resetWarnings().length, 1, JSON.stringify(triad.warnings));
  });

  it('measures a session across a reset and a restart of the hub mid-charge', async () => {
    await charge({ [P.charged]: '50' });
    await clock.advance(1_000);
    await charge({ [P.charging]: 'true' });
    await clock.advance(30 * 60_000);
    await charge({ [P.charged]: '56' });
    await clock.advance(60_000);
    await charge({ [P.charged]: '1' });
    // The hub is down for ten minutes while the car charges on.
    await triad.stop();
    await clock.advance(10 * 60_000);
    values[P.charged] = '3';
    await triad.start();
    await until(async () => assert.equal((await vehicle()).connected, true));
    await clock.advance(20 * 60_000);
    await charge({ [P.charged]: '4' });
    await charge({ [P.charging]: 'false' });
    await until(async () => assert.equal((await sessions()).length, 2));
    const [session] = await sessions();
    assert.equal(session.energyKwh, 9, '6 kWh before the reset, 3 after it');
  });
});
