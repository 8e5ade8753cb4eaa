import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { isVissError } from '../src/adapters/viss/errors.ts';
import { fromWire } from '../src/adapters/viss/tree.ts';
import { VSS_NODES } from '../src/adapters/viss/vss-nodes.ts';
import { VirtualClock } from '../src/core/clock.ts';
import { Hub } from '../src/core/hub.ts';
import { createLogger } from '../src/core/log.ts';
import { VehicleService } from '../src/vehicles/index.ts';
import { eventuallyPasses, tempDir } from './helpers/hub-process.ts';
import { type ScriptedCar, startScriptedCar } from './helpers/scripted-car.ts';

/**
 * A car gateway Triad cannot trust: a bare VISS server scripted by the test, which answers the
 * hub's gets and subscriptions and then sends whatever events the test writes, late or with a
 * clock that is not set.
 */

const NOW = Date.parse('2026-03-02T09:00:00Z');
const SPEED = 'Vehicle.Speed';
const MOVING = 'Vehicle.IsMoving';
const TEMPERATURE = 'Vehicle.Exterior.AirTemperature';
const LIMIT = 'Vehicle.Powertrain.TractionBattery.Charging.ChargeLimit';
/** Not offered at first: the car's first word on it comes in an event. */
const CABIN = 'Vehicle.Cabin.HVAC.AmbientAirTemperature';

const until = eventuallyPasses;

describe('vehicles: a car whose values come late or with a wrong clock', () => {
  const clock = new VirtualClock(NOW);
  const values: Record<string, string> = { [SPEED]: '0', [MOVING]: 'false', [TEMPERATURE]: '5', [LIMIT]: '80' };
  let car: ScriptedCar;
  let hub: Hub;
  /** Every outside temperature the twin took, in order. */
  const temperatures: unknown[] = [];

  const iso = (ms: number) => new Date(ms).toISOString();
  /** The car tells of new values, captured at `ts` (its own clock). */
  const event = (points: Array<[string, string]>, ts: string) =>
    car.send({
      action: 'subscription',
      subscriptionId: '1',
      data: points.map(([path, value]) => ({ path, dp: { value, ts } })),
    });

  const api = async (path: string, init: RequestInit = {}) => {
    const headers = new Headers(init.headers);
    headers.set('authorization', `Bearer ${hub.ownerToken}`);
    if (init.body !== undefined) headers.set('content-type', 'application/json');
    const res = await fetch(hub.httpUrl + path, { ...init, headers });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  const property = async (name: string) => {
    const { properties } = (await api('/api/things/car')).body as {
      properties: Record<string, { value: unknown; ts: string | null }>;
    };
    return properties[name];
  };

  before(async () => {
    // One subscription id for every signal, granted for anything, as some gateways do.
    car = await startScriptedCar({ clock, values, subscriptionId: () => '1', refuseUnknownSubscriptions: false });
    hub = new Hub({
      dataDir: await tempDir(),
      http: { port: 0, host: '127.0.0.1' },
      mqtt: { port: 0, host: '127.0.0.1' },
      clock,
      log: createLogger({ level: 'silent' }),
    }).use(new VehicleService());
    await hub.start();
    hub.bus.subscribe((e) => {
      if (e.type === 'state' && e.property === 'vehicle.outside_temperature') temperatures.push(e.to);
    });
    const created = await api('/api/vehicles', {
      method: 'POST',
      body: JSON.stringify({ name: 'Car', viss: car.url }),
    });
    assert.equal(created.status, 201);
    await until(async () => assert.equal((await property('vehicle.outside_temperature')).value, 5));
  });

  after(async () => {
    await hub?.stop();
    await car?.close();
  });

  it('keeps the newest state when an older value arrives late: no unlock at speed', async () => {
    await clock.advance(10_000);
    event(
      [
        [MOVING, 'true'],
        [SPEED, '50'],
      ],
      iso(clock.now()),
    );
    await until(async () => assert.equal((await property('location.speed')).value, 50));
    // "Standing still", captured 30 s before "moving at 50", overtaken on the way.
    event(
      [
        [MOVING, 'false'],
        [SPEED, '0'],
      ],
      iso(clock.now() - 30_000),
    );
    event([[TEMPERATURE, '6']], iso(clock.now()));
    await until(async () => assert.equal((await property('vehicle.outside_temperature')).value, 6));
    assert.equal((await property('location.speed')).value, 50);
    assert.equal((await property('vehicle.moving')).value, true);
    const unlock = await api('/api/things/car/actions/unlock', { method: 'POST', body: '{}' });
    assert.equal(unlock.status, 409, JSON.stringify(unlock.body));
    assert.equal((unlock.body.error as { code: string }).code, 'vehicle_moving');
    event(
      [
        [MOVING, 'false'],
        [SPEED, '0'],
      ],
      iso(clock.now()),
    );
    await until(async () => assert.equal((await property('vehicle.moving')).value, false));
  });

  it('takes a value stamped by a clock that is not set (1970) as captured when it came', async () => {
    await clock.advance(10_000);
    event([[CABIN, '7']], '1970-01-01T00:00:05Z');
    await until(async () => assert.equal((await property('climate.current_temperature')).value, 7));
    assert.equal((await property('climate.current_temperature')).ts, iso(clock.now()));
    // …and once the car's clock is set, its values are taken as usual.
    await clock.advance(1_000);
    event([[CABIN, '8']], iso(clock.now()));
    await until(async () => assert.equal((await property('climate.current_temperature')).value, 8));
    assert.equal((await property('climate.current_temperature')).ts, iso(clock.now()));
  });

  it('takes a value stamped far in the future as captured when it came, and the next ones still count', async () => {
    await clock.advance(10_000);
    event([[TEMPERATURE, '9']], '2999-01-01T00:00:00Z');
    await until(async () => assert.equal((await property('vehicle.outside_temperature')).value, 9));
    assert.equal((await property('vehicle.outside_temperature')).ts, iso(clock.now()));
    await clock.advance(1_000);
    event([[TEMPERATURE, '10']], iso(clock.now()));
    await until(async () => assert.equal((await property('vehicle.outside_temperature')).value, 10));
  });

  it('refuses numbers written in hex, binary or octal, from the car and from a client', async () => {
    for (const text of ['0x10', '0b10000', '0o20', ' 0x10 ']) {
      assert.ok(isVissError(fromWire(VSS_NODES[TEMPERATURE], text)), `${JSON.stringify(text)} is not a float`);
      assert.ok(isVissError(fromWire(VSS_NODES[LIMIT], text)), `${JSON.stringify(text)} is not a uint8`);
    }
    for (const [text, value] of [
      ['16', 16],
      [' 16 ', 16],
      ['-1.5', -1.5],
      ['1e1', 10],
      ['.5', 0.5],
      ['+3', 3],
    ] as const) {
      assert.equal(fromWire(VSS_NODES[TEMPERATURE], text), value, JSON.stringify(text));
    }
    event([[TEMPERATURE, '0x10']], iso(clock.now()));
    await clock.advance(1_000);
    event([[TEMPERATURE, '12']], iso(clock.now()));
    await until(async () => assert.equal((await property('vehicle.outside_temperature')).value, 12));
    assert.ok(!temperatures.includes(16), `the twin read 0x10 as 16: ${temperatures.join(', ')}`);
  });
});
