import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { VirtualClock } from '../src/core/clock.ts';
import type { StateChanged } from '../src/core/events.ts';
import { newId } from '../src/core/ids.ts';
import { eventuallyPasses as until } from './helpers/hub-process.ts';
import { carAndItsSuccessor, restartableVehicleHub } from './helpers/restartable-vehicle-hub.ts';
import { CAR_SIGNALS, driveCar, parkedCarValues } from './helpers/scripted-car.ts';

/**
 * A car detached mid-charge, and another attached under the same name (a household's new car
 * named as the old one was). The new car starts from nothing of the old one's: not its
 * charged-energy counter, not the energy of its charge, not across a restart of the hub either.
 * The new car has no counter of its own, so its charge is measured by its rising level; the old
 * car's counter, left in its twin, measured it as nothing. A real hub over real VISS.
 */
const START = Date.parse('2026-02-09T19:00:00Z');
const P = CAR_SIGNALS;

describe('vehicles: a car attached under a detached car’s name', () => {
  const clock = new VirtualClock(START);
  const oldValues = parkedCarValues('40');
  const { [P.charged]: _noCounter, ...newValues } = parkedCarValues('50');
  const triad = restartableVehicleHub({ clock, service: { backoff: { initialMs: 1_000, maxMs: 1_000 } } });
  const { oldCar, newCar, replace } = carAndItsSuccessor(triad, { clock, oldValues, newValues });

  const api = async <T>(path: string, init?: RequestInit) => (await triad.api(path, init)).body as T;
  const vehicle = () => api<{ connected: boolean; state: Record<string, unknown> }>('/api/vehicles/car');
  const sessions = () => api<Record<string, unknown>[]>('/api/vehicles/car/charging-sessions');
  const heard = async (property: string, value: unknown) =>
    until(async () => assert.equal((await vehicle()).state[property], value));

  it('detaches the old car mid-charge and attaches the new one under its name', async () => {
    await clock.advance(1_000);
    driveCar(oldCar(), oldValues, clock, { [P.charging]: 'true' });
    await heard('charging.charging', true);
    await clock.advance(30 * 60_000);
    driveCar(oldCar(), oldValues, clock, { [P.charged]: '55', [P.level]: '48' });
    await heard('charging.energy', 5);
    await replace();
    await clock.advance(1_000);
  });

  it('shows nothing of the old car’s on the new one, after a restart too', async () => {
    for (const restart of [false, true]) {
      if (restart) {
        await triad.stop();
        await triad.start();
        await until(async () => assert.equal((await vehicle()).connected, true));
        await heard('battery.level', 50);
      }
      const { state } = await vehicle();
      const label = restart ? 'after a restart' : 'before a restart';
      assert.equal(state['vehicle.charged_energy'] ?? null, null, `${label}: the old car's counter`);
      assert.equal(state['charging.energy'] ?? null, null, `${label}: the old car's charge`);
      assert.equal(state['charging.charging'], false, label);
    }
  });

  it('forgets, at the next start, what an older Triad left of the old car', async () => {
    // Such a Triad committed the old car's last changes after deleting it: they are the car's latest.
    const { hub } = triad;
    const left: StateChanged = {
      type: 'state',
      id: newId(START, 'evt_'),
      householdId: hub.householdId,
      ts: START,
      cause: null,
      thing: 'car',
      property: 'vehicle.charged_energy',
      from: null,
      to: 55,
      source: 'viss',
    };
    await hub.store.appendHistory([left]);
    await triad.stop();
    await triad.start();
    await until(async () => assert.equal((await vehicle()).connected, true));
    await heard('battery.level', 50);
    assert.equal((await vehicle()).state['vehicle.charged_energy'] ?? null, null);
  });

  it('measures the new car’s charge by its own level', async () => {
    await clock.advance(1_000);
    driveCar(newCar(), newValues, clock, { [P.charging]: 'true' });
    await heard('charging.charging', true);
    await clock.advance(60 * 60_000);
    driveCar(newCar(), newValues, clock, { [P.level]: '60' });
    await heard('battery.level', 60);
    await clock.advance(1_000);
    driveCar(newCar(), newValues, clock, { [P.charging]: 'false' });
    await heard('charging.charging', false);
    await until(async () => assert.equal((await sessions()).length, 1));
    const [session] = await sessions();
    assert.equal(session.startLevel, 50);
    assert.equal(session.energyKwh, 6, '10 % of a 60 kWh battery');
  });
});
