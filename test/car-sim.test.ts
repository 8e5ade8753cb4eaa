import assert from 'node:assert/strict';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { VirtualClock } from '../src/core/clock.ts';
import { createLogger } from '../src/core/log.ts';
import { distanceMetres } from '../src/people/geo.ts';
import { SimulatedCar, savedCarFrom } from '../src/sim/car/car.ts';
import { chargePowerKw, secondsToReach, tractionPowerW } from '../src/sim/car/physics.ts';
import { DEMO_WORK } from '../src/sim/car/route.ts';
import { DEMO_HOME } from '../src/sim/people.ts';
import { SavedStateFile } from '../src/sim/saved-state.ts';
import { tempDir } from './helpers/hub-process.ts';

/** The car simulator on its own: physics and a commuting day on the virtual clock. */

const value = (car: SimulatedCar, path: string) => car.read(path)?.value;
const num = (car: SimulatedCar, path: string) => Number(value(car, path));
const round1 = (n: number) => Math.round(n * 10) / 10;
const round2 = (n: number) => Math.round(n * 100) / 100;

describe('car simulator', () => {
  it('uses more energy per kilometre at motorway speed and in the cold', () => {
    const perKm = (kmh: number, celsius: number) => tractionPowerW(kmh / 3.6, 0, celsius) / kmh;
    assert.ok(perKm(100, 20) > perKm(50, 20) * 1.3);
    assert.ok(perKm(50, -5) > perKm(50, 20) * 1.2);
  });

  it('charges at full AC power up to 80 % and tapers above', () => {
    assert.equal(chargePowerKw(50), chargePowerKw(80));
    assert.ok(chargePowerKw(90) < chargePowerKw(80) * 0.6);
    assert.ok(secondsToReach(80, 100) > secondsToReach(60, 80));
  });

  it('commutes to work at eight, spending charge, then charges at home to its limit', async () => {
    const clock = new VirtualClock(Date.parse('2026-01-05T07:55:00Z'));
    const car = new SimulatedCar({ clock, level: 60 });
    car.start();
    const startOdometer = num(car, 'Vehicle.TraveledDistance');
    await clock.advance(30 * 60_000);
    assert.equal(value(car, 'Vehicle.IsMoving'), 'false');
    const at = {
      latitude: num(car, 'Vehicle.CurrentLocation.Latitude'),
      longitude: num(car, 'Vehicle.CurrentLocation.Longitude'),
    };
    assert.ok(distanceMetres(at, DEMO_WORK) < 20, 'parked at work');
    assert.ok(num(car, 'Vehicle.TraveledDistance') - startOdometer > 6_000);
    const atWork = num(car, 'Vehicle.Powertrain.TractionBattery.StateOfCharge.Current');
    assert.equal(value(car, 'Vehicle.Cabin.Door.Row1.DriverSide.IsLocked'), 'true', 'locks itself on walk-away');

    // Home at 17:30, plugged in; by the next morning it reached the 80 % limit and stopped.
    await clock.advance(9.5 * 3_600_000);
    const home = {
      latitude: num(car, 'Vehicle.CurrentLocation.Latitude'),
      longitude: num(car, 'Vehicle.CurrentLocation.Longitude'),
    };
    assert.ok(distanceMetres(home, DEMO_HOME) < 20, 'parked at home');
    assert.equal(
      value(car, 'Vehicle.Powertrain.TractionBattery.Charging.ChargingPort.AnyPosition.IsChargingCableConnected'),
      'true',
    );
    await clock.advance(12 * 3_600_000);
    assert.ok(atWork < 60);
    assert.equal(num(car, 'Vehicle.Powertrain.TractionBattery.StateOfCharge.Current'), 80);
    assert.equal(value(car, 'Vehicle.Powertrain.TractionBattery.Charging.IsCharging'), 'false');
    car.stop();
  });

  it('starts where it is parked, whatever the hour, and without the commute stays there', async () => {
    const where = (car: SimulatedCar) => ({
      latitude: num(car, 'Vehicle.CurrentLocation.Latitude'),
      longitude: num(car, 'Vehicle.CurrentLocation.Longitude'),
    });
    const cable = 'Vehicle.Powertrain.TractionBattery.Charging.ChargingPort.AnyPosition.IsChargingCableConnected';
    // Office hours: by the commute a new car is at work, without its cable.
    const clock = new VirtualClock(Date.parse('2026-01-05T10:00:00Z'));
    const commuter = new SimulatedCar({ clock, level: 60 });
    assert.ok(distanceMetres(where(commuter), DEMO_WORK) < 20, 'by the commute, at work at ten');
    assert.equal(value(commuter, cable), 'false');

    const parked = new SimulatedCar({ clock, level: 60, parkedAt: 'home', commute: false });
    parked.start();
    assert.ok(distanceMetres(where(parked), DEMO_HOME) < 20, 'parked at home at ten');
    assert.equal(value(parked, cable), 'true');
    assert.equal(value(parked, 'Vehicle.Powertrain.TractionBattery.Charging.IsCharging'), 'true');
    const odometer = num(parked, 'Vehicle.TraveledDistance');
    // Through the 17:00 and the next 08:00 departures: it never leaves.
    await clock.advance(24 * 3_600_000);
    assert.equal(num(parked, 'Vehicle.TraveledDistance'), odometer, 'no commute');
    assert.ok(distanceMetres(where(parked), DEMO_HOME) < 20);
    parked.stop();

    // Parked at work over a saved car that was at home: the place asked for wins, the rest is kept.
    const saved = { ...new SimulatedCar({ clock, level: 60, parkedAt: 'home' }).saved(), odometer: 20_000_000 };
    const moved = new SimulatedCar({ clock, resume: saved, parkedAt: 'work', commute: false });
    assert.ok(distanceMetres(where(moved), DEMO_WORK) < 20);
    assert.equal(value(moved, cable), 'false');
    assert.equal(num(moved, 'Vehicle.TraveledDistance'), 20_000_000);
  });

  it('locks its doors itself once it gets going, as a car does, and again when the driver walks away', async () => {
    const clock = new VirtualClock(Date.parse('2026-01-05T07:59:55Z'));
    const car = new SimulatedCar({ clock, level: 60 });
    car.start();
    const locked = () =>
      ['Row1.DriverSide', 'Row1.PassengerSide', 'Row2.DriverSide', 'Row2.PassengerSide']
        .map((door) => value(car, `Vehicle.Cabin.Door.${door}.IsLocked`))
        .concat(value(car, 'Vehicle.Body.Trunk.Rear.IsLocked'));
    await clock.advance(6_000);
    assert.ok(car.isDriving);
    assert.deepEqual(new Set(locked()), new Set(['false']), 'the driver unlocked to get in');
    while (num(car, 'Vehicle.Speed') < 15) await clock.advance(1_000);
    assert.deepEqual(new Set(locked()), new Set(['true']), `locked at ${num(car, 'Vehicle.Speed')} km/h`);
    // Unlocked on the road (the car's own remote, say), it stays so: the car locks once per drive.
    assert.equal(await car.write('Vehicle.Cabin.Door.Row2.PassengerSide.IsLocked', false), null);
    await clock.advance(10_000);
    assert.equal(value(car, 'Vehicle.Cabin.Door.Row2.PassengerSide.IsLocked'), 'false');
    // A car resumed mid-drive had got going: it is locked.
    const resumed = new SimulatedCar({ clock, resume: car.saved() });
    assert.equal(value(resumed, 'Vehicle.Cabin.Door.Row1.DriverSide.IsLocked'), 'true');
    car.stop();
  });

  it('without self-charging takes only what a charge point meters into it, tapering and stopping at its limit', async () => {
    const clock = new VirtualClock(Date.parse('2026-01-05T20:00:00Z'));
    const car = new SimulatedCar({ clock, level: 70, selfCharging: false });
    car.start();
    const level = () => num(car, 'Vehicle.Powertrain.TractionBattery.StateOfCharge.Current');
    assert.equal(car.plugged(), true, 'plugged in at home in the evening');
    await clock.advance(10 * 60_000);
    assert.equal(level(), 70, 'no charge without a charge point');
    assert.equal(value(car, 'Vehicle.Powertrain.TractionBattery.Charging.IsCharging'), 'false');

    assert.equal(car.acceptKw(7.4), 7.4, 'below 80 % the car takes what is offered, up to its charger');
    assert.equal(car.acceptKw(22), 11);
    assert.equal(value(car, 'Vehicle.Powertrain.TractionBattery.Charging.IsCharging'), 'true');
    car.charged(6.4);
    // 70 % + 6.4 kWh × 0.92 of a 64 kWh battery.
    assert.equal(level(), 79.2, 'the battery gains the metered energy less its losses');
    car.charged(1);
    assert.ok(car.soc() > 80);
    assert.equal(car.acceptKw(11), 0, 'at its 80 % limit the car takes nothing');
    assert.equal(value(car, 'Vehicle.Powertrain.TractionBattery.Charging.IsCharging'), 'false');

    assert.equal(await car.write('Vehicle.Powertrain.TractionBattery.Charging.ChargeLimit', 100), null);
    assert.equal(await car.write('Vehicle.Powertrain.TractionBattery.Charging.StartStopCharging', 'START'), null);
    const tapered = car.acceptKw(11);
    assert.ok(tapered > 0 && tapered < 11, `above 80 % the car takes less: ${tapered} kW`);
    car.depart();
    assert.equal(car.plugged(), false, 'unplugged when it leaves');
    assert.equal(car.acceptKw(11), 0);
    car.stop();
  });

  it('refuses to start charging at its charge limit, saying why, rather than taking a start it ignores', async () => {
    const clock = new VirtualClock(Date.parse('2026-01-05T20:00:00Z'));
    const car = new SimulatedCar({ clock, level: 85 });
    car.start();
    assert.equal(car.plugged(), true, 'plugged in at home in the evening');
    const refused = await car.write('Vehicle.Powertrain.TractionBattery.Charging.StartStopCharging', 'START');
    assert.equal(refused?.number, 403);
    assert.match(refused?.description ?? '', /85 %.*charge limit of 80 %/);
    assert.equal(value(car, 'Vehicle.Powertrain.TractionBattery.Charging.IsCharging'), 'false');
    assert.equal(await car.write('Vehicle.Powertrain.TractionBattery.Charging.ChargeLimit', 90), null);
    assert.equal(await car.write('Vehicle.Powertrain.TractionBattery.Charging.StartStopCharging', 'START'), null);
    assert.equal(value(car, 'Vehicle.Powertrain.TractionBattery.Charging.IsCharging'), 'true');
    car.stop();
  });

  it('brings the cabin to the set point within minutes while the HVAC draws power', async () => {
    const clock = new VirtualClock(Date.parse('2026-01-05T06:00:00Z'));
    const car = new SimulatedCar({ clock });
    car.start();
    const cold = num(car, 'Vehicle.Cabin.HVAC.AmbientAirTemperature');
    assert.equal(await car.write('Vehicle.Cabin.HVAC.Station.Row1.Driver.Temperature', 22), null);
    car.plugIn(false);
    assert.equal(await car.write('Vehicle.Cabin.HVAC.IsAirConditioningActive', true), null);
    await clock.advance(60_000);
    assert.ok(num(car, 'Vehicle.Powertrain.TractionBattery.CurrentPower') < -1_000, 'the HVAC draws from the battery');
    await clock.advance(14 * 60_000);
    assert.ok(cold < 10 && num(car, 'Vehicle.Cabin.HVAC.AmbientAirTemperature') > 21);
    car.stop();
  });

  it('made again from what it saved mid-drive, carries on: same odometer, charge, place on the road', async () => {
    const clock = new VirtualClock(Date.parse('2026-01-05T07:55:00Z'));
    const first = new SimulatedCar({ clock, level: 60 });
    first.start();
    await clock.advance(8 * 60_000);
    assert.ok(first.isDriving, 'on the way to work');
    const saved = first.saved();
    first.stop();
    // Through JSON, as the demo's state file keeps it.
    const read = savedCarFrom(JSON.parse(JSON.stringify(saved)));
    assert.ok(read, 'a saved car reads back');

    const later = new VirtualClock(clock.now() + 3_600_000);
    const second = new SimulatedCar({ clock: later, resume: read });
    assert.equal(num(second, 'Vehicle.TraveledDistance'), Math.round(saved.odometer));
    assert.equal(num(second, 'Vehicle.Powertrain.TractionBattery.StateOfCharge.Current'), round1(saved.level));
    const at = {
      latitude: num(second, 'Vehicle.CurrentLocation.Latitude'),
      longitude: num(second, 'Vehicle.CurrentLocation.Longitude'),
    };
    assert.ok(distanceMetres(at, saved.position) < 5, 'where it was on the road');
    assert.equal(num(second, 'Vehicle.Powertrain.TractionBattery.AccumulatedChargedEnergy'), round2(saved.chargedKwh));
    second.start();
    await later.advance(20 * 60_000);
    assert.equal(second.isDriving, false);
    const parked = {
      latitude: num(second, 'Vehicle.CurrentLocation.Latitude'),
      longitude: num(second, 'Vehicle.CurrentLocation.Longitude'),
    };
    assert.ok(distanceMetres(parked, DEMO_WORK) < 20, 'finished the drive to work');
    assert.ok(num(second, 'Vehicle.TraveledDistance') > saved.odometer, 'the odometer only counts up');
    second.stop();
  });

  it('refuses a saved car it cannot trust, so a damaged file means a fresh car, not nonsense', () => {
    const clock = new VirtualClock(Date.parse('2026-01-05T12:00:00Z'));
    const good = new SimulatedCar({ clock }).saved();
    assert.ok(savedCarFrom(good));
    for (const bad of [
      null,
      'car',
      { ...good, odometer: -1 },
      { ...good, level: 140 },
      { ...good, position: { latitude: 'x', longitude: 4 } },
      { ...good, place: 'moon' },
      { ...good, place: null, drive: null },
      { ...good, chargeLimit: Number.NaN },
    ])
      assert.equal(savedCarFrom(bad), null, JSON.stringify(bad));
  });

  it('keeps its state file whole: written by rename, read back, and a broken one starts afresh', async () => {
    const dir = await tempDir();
    const lines: string[] = [];
    const log = createLogger({ level: 'warn', sink: (line) => lines.push(line.message) });
    const file = new SavedStateFile(join(dir, 'demo-state.json'), log);
    assert.deepEqual(await file.read(), {}, 'nothing saved yet');
    await Promise.all([file.write({ n: 1 }), file.write({ n: 2 })]);
    assert.deepEqual(await file.read(), { n: 2 }, 'saves land in order');
    assert.deepEqual(await readdir(dir), ['demo-state.json'], 'no temporary file left');
    await writeFile(file.path, '{"n": 3');
    assert.deepEqual(await file.read(), {});
    assert.ok(lines.some((line) => /starting afresh/.test(line)));
    // Saved every second, a file that cannot be written says so once, not at every save.
    const nowhere = new SavedStateFile(join(dir, 'no-such-folder', 'car.json'), log);
    assert.equal(await file.write({ n: 4 }), true);
    assert.deepEqual([await nowhere.write({ n: 1 }), await nowhere.write({ n: 2 })], [false, false]);
    assert.equal(lines.filter((line) => /could not save the simulator state/.test(line)).length, 1);
  });
});
