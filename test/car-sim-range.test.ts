import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { VirtualClock } from '../src/core/clock.ts';
import { CarSimulator } from '../src/sim/car/index.ts';
import { VSS } from '../src/vehicles/signals.ts';
import { VissTestClient } from './helpers/viss-client.ts';

/**
 * The simulated car's range estimate, read as any VISS client reads it, over a commuting day on a
 * virtual clock: it falls as the drives use the battery, rises only while the car charges, and
 * keeps to its state of charge (the same kWh per km through the day until it charges again).
 */

const START = Date.parse('2026-01-05T07:59:00Z');
const CAPACITY_KWH = 64;

interface Reading {
  at: number;
  range: number;
  soc: number;
  speed: number;
  moving: boolean;
  charging: boolean;
}

describe('car simulator: range estimate over VISS', () => {
  const clock = new VirtualClock(START);
  let sim: CarSimulator;
  let client: VissTestClient;
  const readings: Reading[] = [];

  const ask = (body: Record<string, unknown>) => client.ask(body);

  /** One VISS get of the signals a driver watches, as the car reports them now. */
  const read = async (): Promise<Reading> => {
    const answer = await ask({
      action: 'get',
      path: 'Vehicle',
      filter: {
        variant: 'paths',
        parameter: [
          'Powertrain.TractionBattery.Range',
          'Powertrain.TractionBattery.StateOfCharge.Current',
          'Speed',
          'IsMoving',
          'Powertrain.TractionBattery.Charging.IsCharging',
        ],
      },
    });
    assert.ok(Array.isArray(answer.data), JSON.stringify(answer));
    const byPath = new Map(
      (answer.data as Array<{ path: string; dp: { value: string } }>).map((d) => [d.path, d.dp.value]),
    );
    return {
      at: clock.now(),
      range: Number(byPath.get(VSS.range)),
      soc: Number(byPath.get(VSS.stateOfCharge)),
      speed: Number(byPath.get(VSS.speed)),
      moving: byPath.get(VSS.moving) === 'true',
      charging: byPath.get(VSS.isCharging) === 'true',
    };
  };

  /** Runs the clock to `until` in steps of `stepMs`, reading the car after each. */
  const runTo = async (until: string, stepMs: number) => {
    const end = Date.parse(until);
    while (clock.now() < end) {
      await clock.advance(stepMs);
      readings.push(await read());
    }
  };

  before(async () => {
    sim = new CarSimulator({ clock, vissPort: 0, level: 60 });
    await sim.start();
    client = await VissTestClient.open(sim.url, { protocol: 'VISSv3' });
    readings.push(await read());
    // The commute: to work at 08:00 and home at 17:00, each second while it may be on the road.
    await runTo('2026-01-05T08:20:00Z', 1_000);
    await runTo('2026-01-05T16:59:00Z', 60_000);
    // Warm cabin for the drive home: the HVAC draws from the battery as well.
    const set = await ask({ action: 'set', path: VSS.hvacActive, value: 'true' });
    assert.equal(set.error, undefined, JSON.stringify(set));
    await runTo('2026-01-05T17:20:00Z', 1_000);
    await ask({ action: 'set', path: VSS.hvacActive, value: 'false' });
    // Plugged in at home, it charges through the evening.
    await runTo('2026-01-05T21:00:00Z', 60_000);
  });

  after(async () => {
    client?.close();
    await sim?.stop();
  });

  it('drove both ways, spending charge, and charged in the evening', () => {
    const drivingAt = readings.filter((r) => r.moving);
    assert.ok(drivingAt.length > 600, `on the road for ${drivingAt.length} s`);
    assert.ok(Math.max(...drivingAt.map((r) => r.speed)) >= 79, 'at ring-road speed');
    assert.ok(readings.some((r) => r.charging && Date.parse('2026-01-05T17:20:00Z') < r.at));
  });

  it('never raises its range while it drives (or stands) without charging', () => {
    for (let i = 1; i < readings.length; i++) {
      const [before, now] = [readings[i - 1], readings[i]];
      if (before.charging || now.charging) continue;
      assert.ok(
        now.range <= before.range,
        `range rose from ${before.range} m to ${now.range} m at ${new Date(now.at).toISOString()} ` +
          `(${now.moving ? `driving at ${now.speed} km/h` : 'parked'}, ${now.soc} %)`,
      );
    }
  });

  it('loses range on each drive in step with the charge it used', () => {
    const morning = readings.filter((r) => r.at <= Date.parse('2026-01-05T08:20:00Z') && !r.charging);
    const first = morning[0];
    const last = morning.at(-1)!;
    assert.ok(last.soc < first.soc, 'the drive used charge');
    // Energy used over what the estimate says each km costs: the range lost (m), within rounding.
    const kwhPerKm = (first.soc / 100) * CAPACITY_KWH * (1000 / first.range);
    const expected = (((first.soc - last.soc) / 100) * CAPACITY_KWH) / kwhPerKm;
    const lost = (first.range - last.range) / 1000;
    assert.ok(Math.abs(lost - expected) < 1.5, `lost ${lost.toFixed(1)} km for ${expected.toFixed(1)} km of charge`);
  });

  it('keeps to its state of charge between charges: the same kWh per km the whole day', () => {
    const untilCharging = readings.filter((r) => r.at < Date.parse('2026-01-05T17:20:00Z') && !r.charging);
    const perKm = untilCharging.map((r) => ((r.soc / 100) * CAPACITY_KWH) / (r.range / 1000));
    const [low, high] = [Math.min(...perKm), Math.max(...perKm)];
    assert.ok(high / low < 1.01, `the estimate used ${low.toFixed(3)}–${high.toFixed(3)} kWh/km`);
  });

  it('rises only while charging, and then with the charge', () => {
    const evening = readings.filter((r) => r.at > Date.parse('2026-01-05T17:20:00Z'));
    const charging = evening.filter((r) => r.charging);
    assert.ok(charging.length > 10);
    assert.ok(charging.at(-1)!.range > charging[0].range, 'the range grew as it charged');
    assert.ok(charging.at(-1)!.soc > charging[0].soc);
    // Charged, it estimates with what the day's drives used: a realistic figure for a hatchback.
    const last = charging.at(-1)!;
    const perKm = ((last.soc / 100) * CAPACITY_KWH) / (last.range / 1000);
    assert.ok(perKm > 0.1 && perKm < 0.25, `${perKm.toFixed(3)} kWh/km`);
  });
});
