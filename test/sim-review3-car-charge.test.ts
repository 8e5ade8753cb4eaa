import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { VirtualClock } from '../src/core/clock.ts';
import { SimulatedCar, savedCarFrom } from '../src/sim/car/car.ts';
import { CAR } from '../src/sim/car/physics.ts';
import { VSS } from '../src/vehicles/signals.ts';

/**
 * The simulated car on a charge point's cable (as in the demo): what it says of its charging agrees
 * at every moment a watcher hears it, its time to full goes by what the charge point offers, and
 * it charges again when the limit it stopped at is raised (unless stopped from its app, which a
 * restart keeps).
 */

/** 21:00 UTC, parked at home with its cable in, fed by a charge point (not its own model). */
const START = Date.parse('2026-01-05T21:00:00Z');
const THREE_PHASE_16A_KW = (16 * 230 * 3) / 1000;
const THREE_PHASE_6A_KW = (6 * 230 * 3) / 1000;

function wallboxCar(level = 60) {
  const clock = new VirtualClock(START);
  const car = new SimulatedCar({ clock, level, selfCharging: false, parkedAt: 'home', commute: false });
  /** Every change as a watcher hears it: path and value, in order. */
  const heard: Array<[string, unknown]> = [];
  car.watch((path) => heard.push([path, car.read(path)?.value]));
  return { clock, car, heard };
}

/** Whether a watcher that applied `heard` in order ever held "charging" with no power into the battery. */
function chargingAtZero(heard: Array<[string, unknown]>, from: Map<string, unknown>): string[] {
  const held = new Map(from);
  const moments: string[] = [];
  for (const [path, value] of heard) {
    held.set(path, value);
    if (held.get(VSS.isCharging) === 'true' && Number(held.get(VSS.batteryPower)) <= 0)
      moments.push(`after ${path}=${String(value)}`);
  }
  return moments;
}

const snapshot = (car: SimulatedCar) =>
  new Map<string, unknown>([VSS.isCharging, VSS.batteryPower].map((path) => [path, car.read(path)?.value]));

describe('simulated car on a charge point', () => {
  it('says it charges and at what power together, as charging starts and stops', async () => {
    const { clock, car, heard } = wallboxCar();
    car.start();
    await clock.advance(5_000);
    const before = snapshot(car);
    heard.length = 0;
    // The charge point's offer comes and goes between the car's own steps (a plan's slot, mode off).
    car.acceptKw(THREE_PHASE_16A_KW);
    assert.equal(car.read(VSS.isCharging)?.value, 'true');
    assert.ok(Number(car.read(VSS.batteryPower)?.value) > 9_000, 'the power is there at once, not a step later');
    await clock.advance(3_000);
    car.acceptKw(0);
    assert.equal(car.read(VSS.isCharging)?.value, 'false');
    await clock.advance(3_000);
    car.acceptKw(THREE_PHASE_16A_KW);
    await clock.advance(3_000);
    assert.deepEqual(chargingAtZero(heard, before), []);
    car.stop();
  });

  it('reckons its time to full by what the charge point offers', () => {
    const full = wallboxCar(60);
    full.car.acceptKw(THREE_PHASE_16A_KW);
    const slow = wallboxCar(60);
    slow.car.acceptKw(THREE_PHASE_6A_KW);
    const fast = Number(full.car.read(VSS.timeToComplete)?.value);
    const six = Number(slow.car.read(VSS.timeToComplete)?.value);
    // 60 → 80 % is 12.8 kWh into the battery: at 11 kW about 21 minutes, at 6 A (4.14 kW) about 56.
    const hours = (kw: number) => (0.2 * CAR.netCapacityKwh) / (kw * CAR.chargerEfficiency);
    assert.ok(Math.abs(fast - hours(THREE_PHASE_16A_KW) * 3_600) < 60, `${fast} s at 16 A`);
    assert.ok(Math.abs(six - hours(THREE_PHASE_6A_KW) * 3_600) < 60, `${six} s at 6 A`);
  });

  it('charges again when its limit is raised above its charge, unless stopped from its app', async () => {
    const { car } = wallboxCar(70);
    assert.equal(await car.write(VSS.chargeLimit, 70), null);
    assert.equal(car.acceptKw(THREE_PHASE_16A_KW), 0, 'at its limit it takes nothing');
    assert.equal(await car.write(VSS.chargeLimit, 90), null);
    assert.ok(car.acceptKw(THREE_PHASE_16A_KW) > 10, 'raised, it takes the offer again');
    assert.equal(await car.write(VSS.startStopCharging, 'STOP'), null);
    assert.equal(await car.write(VSS.chargeLimit, 95), null);
    assert.equal(car.acceptKw(THREE_PHASE_16A_KW), 0, 'stopped from its app, it waits for START');

    // A restart keeps the stop; the cable put in again (a new plug-in) clears it.
    const saved = savedCarFrom(JSON.parse(JSON.stringify(car.saved())));
    assert.ok(saved);
    const clock = new VirtualClock(START);
    const again = new SimulatedCar({ clock, selfCharging: false, resume: saved });
    assert.equal(again.acceptKw(THREE_PHASE_16A_KW), 0);
    again.plugIn(false);
    again.plugIn(true);
    assert.ok(again.acceptKw(THREE_PHASE_16A_KW) > 10);
    assert.equal(savedCarFrom({ ...saved, toldToStop: 'yes' }), null, 'a saved stop must be true or false');
  });

  it('keeps its windows and its climate across a restart', async () => {
    const { car } = wallboxCar(70);
    assert.equal(await car.write(VSS.window('front_driver'), 40), null);
    assert.equal(await car.write(VSS.hvacActive, true), null);
    const saved = savedCarFrom(JSON.parse(JSON.stringify(car.saved())));
    assert.ok(saved);
    const again = new SimulatedCar({ clock: new VirtualClock(START), selfCharging: false, resume: saved });
    assert.equal(again.read(VSS.window('front_driver'))?.value, '40');
    assert.equal(again.read(VSS.window('rear_passenger'))?.value, '0');
    assert.equal(again.read(VSS.hvacActive)?.value, 'true');
    for (const bad of [
      { windows: { front_driver: 140 } },
      { climate: { on: 'yes', cabin: 20 } },
      { climate: { on: true } },
    ])
      assert.equal(savedCarFrom({ ...saved, ...bad }), null, JSON.stringify(bad));
    // A file from before: all windows closed, the climate off.
    const { windows: _w, climate: _c, ...older } = saved;
    const old = new SimulatedCar({ clock: new VirtualClock(START), selfCharging: false, resume: savedCarFrom(older)! });
    assert.equal(old.read(VSS.window('front_driver'))?.value, '0');
    assert.equal(old.read(VSS.hvacActive)?.value, 'false');
  });
});
