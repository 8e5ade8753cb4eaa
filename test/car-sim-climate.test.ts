import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { VirtualClock } from '../src/core/clock.ts';
import { CarSimulator } from '../src/sim/car/index.ts';
import { VSS } from '../src/vehicles/signals.ts';
import { VissTestClient } from './helpers/viss-client.ts';

/**
 * The simulated driver and the climate control, read and set as any VISS client does, on the
 * January morning commute (about 3 °C outside): the driver turns the heating on towards the set
 * point as the drive begins, as real drivers do, the cabin warms within minutes, the heating draws
 * from the battery, and it goes off with the car at the destination. A climate turned off
 * remotely on the way stays off; that car arrives cold and having used less.
 */

const START = Date.parse('2026-01-05T07:59:00Z');

interface Reading {
  at: number;
  moving: boolean;
  hvac: boolean;
  cabin: number;
  outside: number;
  setPoint: number;
  consumedKwh: number;
  range: number;
  charging: boolean;
}

/** One simulated car behind its VISS server, and the driver's morning read each second. */
class Commute {
  readonly clock = new VirtualClock(START);
  sim!: CarSimulator;
  client!: VissTestClient;
  readonly readings: Reading[] = [];

  async open(): Promise<void> {
    this.sim = new CarSimulator({ clock: this.clock, vissPort: 0, level: 60 });
    await this.sim.start();
    this.client = await VissTestClient.open(this.sim.url, { protocol: 'VISSv3' });
  }

  async close(): Promise<void> {
    this.client?.close();
    await this.sim?.stop();
  }

  /** A VISS request, its answer taken as it arrives. */
  ask(body: Record<string, unknown>): Promise<Record<string, unknown>> {
    return this.client.ask(body);
  }

  async read(): Promise<Reading> {
    const answer = await this.ask({
      action: 'get',
      path: 'Vehicle',
      filter: {
        variant: 'paths',
        parameter: [
          'IsMoving',
          'Cabin.HVAC.IsAirConditioningActive',
          'Cabin.HVAC.AmbientAirTemperature',
          'Exterior.AirTemperature',
          'Cabin.HVAC.Station.Row1.Driver.Temperature',
          'Powertrain.TractionBattery.AccumulatedConsumedEnergy',
          'Powertrain.TractionBattery.Range',
          'Powertrain.TractionBattery.Charging.IsCharging',
        ],
      },
    });
    assert.ok(Array.isArray(answer.data), JSON.stringify(answer));
    const v = new Map((answer.data as Array<{ path: string; dp: { value: string } }>).map((d) => [d.path, d.dp.value]));
    return {
      at: this.clock.now(),
      moving: v.get(VSS.moving) === 'true',
      hvac: v.get(VSS.hvacActive) === 'true',
      cabin: Number(v.get(VSS.cabinTemperature)),
      outside: Number(v.get(VSS.outsideTemperature)),
      setPoint: Number(v.get(VSS.driverSetPoint)),
      consumedKwh: Number(v.get(VSS.consumedEnergy)),
      range: Number(v.get(VSS.range)),
      charging: v.get(VSS.isCharging) === 'true',
    };
  }

  /** Runs the clock to `until` a second at a time, reading the car after each; `each` may act on it. */
  async runTo(until: string, each?: (r: Reading) => Promise<void>): Promise<void> {
    const end = Date.parse(until);
    while (this.clock.now() < end) {
      await this.clock.advance(1_000);
      const reading = await this.read();
      this.readings.push(reading);
      await each?.(reading);
    }
  }

  get driving(): Reading[] {
    return this.readings.filter((r) => r.moving);
  }

  /** The energy the drive used, kWh: from the last reading before it set off to the first after it stopped. */
  get driveKwh(): number {
    const first = this.readings.findIndex((r) => r.moving);
    const last = this.readings.findLastIndex((r) => r.moving);
    return this.readings[last + 1].consumedKwh - this.readings[Math.max(0, first - 1)].consumedKwh;
  }
}

describe('car simulator: the driver uses the climate control (over VISS)', () => {
  const heated = new Commute();
  const unheated = new Commute();

  before(async () => {
    await heated.open();
    await unheated.open();
    heated.readings.push(await heated.read());
    await heated.runTo('2026-01-05T08:25:00Z');
    // The same morning, with the climate turned off remotely once the driver had turned it on.
    let turnedOff = false;
    await unheated.runTo('2026-01-05T08:25:00Z', async (r) => {
      if (turnedOff || !r.hvac) return;
      turnedOff = true;
      const set = await unheated.ask({ action: 'set', path: VSS.hvacActive, value: 'false' });
      assert.equal(set.error, undefined, JSON.stringify(set));
    });
  });

  after(async () => {
    await heated.close();
    await unheated.close();
  });

  it('drove to work on a cold morning, with the cabin cold at the start', () => {
    const start = heated.readings[0];
    assert.ok(heated.driving.length > 300, `on the road for ${heated.driving.length} s`);
    assert.ok(start.outside < 8, `${start.outside} °C outside`);
    assert.ok(start.setPoint - start.cabin > 10, `cabin ${start.cabin} °C, set point ${start.setPoint} °C`);
    assert.equal(start.hvac, false, 'parked, the climate is off');
  });

  it('heats the cabin towards the set point while driving', () => {
    const driving = heated.driving;
    const off = driving.filter((r) => !r.hvac);
    assert.ok(off.length <= 2, `the climate was off for ${off.length} s of the drive`);
    const arrived = driving.at(-1)!;
    // A ten-minute drive from about 3 °C: the heating closes most of the gap (time constant 4 min).
    assert.ok(
      arrived.cabin > 15 && arrived.cabin - driving[0].cabin > 10,
      `the cabin went from ${driving[0].cabin} °C to ${arrived.cabin} °C (set point ${arrived.setPoint} °C)`,
    );
    // The unheated car's cabin, on the same drive, barely warmed.
    assert.ok(unheated.driving.at(-1)!.cabin < arrived.cabin - 10);
  });

  it('draws the heating from the battery', () => {
    const extra = heated.driveKwh - unheated.driveKwh;
    // Several kW for the first minutes, about 1 kW to hold it: a quarter more than the drive alone.
    assert.ok(
      extra > 0.15 && extra > unheated.driveKwh * 0.15,
      `heated drive used ${heated.driveKwh.toFixed(2)} kWh, unheated ${unheated.driveKwh.toFixed(2)} kWh`,
    );
  });

  it('turns the climate off with the car at the destination', () => {
    const parked = heated.readings.filter((r) => r.at > heated.driving.at(-1)!.at + 5_000);
    assert.ok(parked.length > 60);
    assert.ok(
      parked.every((r) => !r.hvac),
      'off once parked',
    );
  });

  it('leaves a climate turned off on the way off: that cabin stays cold', () => {
    assert.ok(unheated.driving.filter((r) => r.hvac).length <= 2);
    assert.ok(unheated.driving.at(-1)!.cabin < 10, `${unheated.driving.at(-1)!.cabin} °C`);
  });

  it('never raises the range estimate while driving with the heating on', () => {
    for (let i = 1; i < heated.readings.length; i++) {
      const [before, now] = [heated.readings[i - 1], heated.readings[i]];
      if (before.charging || now.charging) continue;
      assert.ok(now.range <= before.range, `range rose from ${before.range} to ${now.range} m`);
    }
  });
});
