import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { VirtualClock } from '../src/core/clock.ts';
import { VSS } from '../src/vehicles/signals.ts';
import { eventuallyPasses as until } from './helpers/hub-process.ts';
import { restartableVehicleHub } from './helpers/restartable-vehicle-hub.ts';
import { CAR_SIGNALS, driveCar, parkedCarValues, type ScriptedCar, startScriptedCar } from './helpers/scripted-car.ts';

/**
 * A car's charging power is what its charge puts into the battery, and nothing while it does not
 * charge. VSS has no such signal: the battery's own power (CurrentPower, W, into the battery) is
 * positive whenever anything fills it, such as braking on the road or a plugged-in car whose cabin
 * the wallbox heats. Taken as it was, that showed the car "charging at 20 kW" down a hill, and a
 * charge that stopped kept its last power until the car next sent its battery's. A real hub over
 * real VISS, with a car scripted by the test.
 */
const START = Date.parse('2026-01-12T06:30:00Z');
const P = CAR_SIGNALS;

describe('vehicles: charging power is the charge’s, not the battery’s', () => {
  const clock = new VirtualClock(START);
  const values: Record<string, string> = {
    ...parkedCarValues('60'),
    [VSS.batteryPower]: '0',
    [VSS.cableConnected]: 'true',
    [VSS.hvacActive]: 'false',
  };
  const triad = restartableVehicleHub({ clock });
  let car: ScriptedCar;

  const api = async <T>(path: string) => (await triad.api(path)).body as T;
  const state = async () => (await api<{ state: Record<string, unknown> }>('/api/vehicles/car')).state;
  const sessions = () => api<Record<string, unknown>[]>('/api/vehicles/car/charging-sessions');
  /** The car's signals change, one message each; the hub has heard the last of them. */
  const send = async (changes: Record<string, string>, heard: [string, unknown]) => {
    await clock.advance(1_000);
    driveCar(car, values, clock, changes);
    await until(async () => assert.equal((await state())[heard[0]], heard[1]));
  };

  before(async () => {
    car = await startScriptedCar({ clock, values, subscriptionId: (path) => path, refuseUnknownSubscriptions: false });
    await triad.start();
    await triad.attach(car.url);
    await until(async () => assert.equal((await state())['battery.level'], 60));
  });

  after(async () => {
    await triad.stop();
    await car?.close();
  });

  it('shows no charging power while the plugged-in car preconditions without charging', async () => {
    // The wallbox heats the cabin, and the battery takes the little it has over.
    await send({ [VSS.batteryPower]: '400', [VSS.hvacActive]: 'true' }, ['climate.mode', 'auto']);
    const now = await state();
    assert.equal(now['charging.charging'], false);
    assert.equal(now['charging.power'], 0, 'the cabin’s heating is not a charge');
  });

  it('shows no charging power while braking fills the battery on the road', async () => {
    await send({ [VSS.cableConnected]: 'false', [VSS.hvacActive]: 'false' }, ['charging.connected', false]);
    await send({ [P.moving]: 'true', [P.speed]: '60' }, ['vehicle.moving', true]);
    await send({ [VSS.batteryPower]: '20000', [P.speed]: '45' }, ['location.speed', 45]);
    assert.equal((await state())['charging.power'], 0, 'braking is not a charge');
    await send({ [VSS.batteryPower]: '-3000', [P.speed]: '0', [P.moving]: 'false' }, ['vehicle.moving', false]);
  });

  it('shows the charge’s power while charging, and none once it stops', async () => {
    await send({ [VSS.cableConnected]: 'true' }, ['charging.connected', true]);
    // The battery's power rises before the car says it charges, as the simulator's does.
    await send({ [VSS.batteryPower]: '7000', [P.charging]: 'true' }, ['charging.charging', true]);
    assert.equal((await state())['charging.power'], 7);
    // Preconditioning while charging: the battery takes what the cabin leaves of the charge.
    await send({ [VSS.hvacActive]: 'true', [VSS.batteryPower]: '4500' }, ['charging.power', 4.5]);
    // The car says the charge stopped before it says its battery's power fell.
    await send({ [P.charging]: 'false' }, ['charging.charging', false]);
    assert.equal((await state())['charging.power'], 0, 'a charge that stopped has no power');
    await send({ [VSS.batteryPower]: '300' }, ['vehicle.battery_power', 0.3]);
    assert.equal((await state())['charging.power'], 0, 'the heating after the charge is not one');
  });

  it('records only the charge as a session, at the charge’s peak', async () => {
    await until(async () => assert.equal((await sessions()).length, 1));
    const [session] = await sessions();
    assert.equal(session.maxPowerKw, 7);
  });
});
