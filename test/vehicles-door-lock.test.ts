import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { VirtualClock } from '../src/core/clock.ts';
import type { Hub } from '../src/core/hub.ts';
import { CarSimulator } from '../src/sim/car/index.ts';
import { eventually, eventuallyPasses } from './helpers/hub-process.ts';
import { type ApiAnswer, startVehicleHub } from './helpers/vehicle-hub.ts';
import { VissTestClient } from './helpers/viss-client.ts';

/**
 * A VISS client's `set` on one door's lock, through the hub's VISS server. The car's doors and
 * trunk lock together, the driver's door speaking for them (`lock.locked`): a set on another door
 * or the trunk must not lock or unlock the whole car behind the client's back. It is refused,
 * naming the signal and the central lock, and the car stays as it was.
 */

const START = Date.parse('2026-01-05T07:00:00Z');
const DOORS = ['Row1.DriverSide', 'Row1.PassengerSide', 'Row2.DriverSide', 'Row2.PassengerSide'];
const DRIVER_LOCK = 'Vehicle.Cabin.Door.Row1.DriverSide.IsLocked';
const REAR_LOCK = 'Vehicle.Cabin.Door.Row2.PassengerSide.IsLocked';
const TRUNK_LOCK = 'Vehicle.Body.Trunk.Rear.IsLocked';

/** Lets the real sockets deliver what a command set going. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 100));

describe('vehicles: a VISS set on one door lock', () => {
  const clock = new VirtualClock(START);
  let sim: CarSimulator;
  let hub: Hub;
  let client: VissTestClient;

  const locks = () =>
    [...DOORS.map((door) => `Vehicle.Cabin.Door.${door}.IsLocked`), TRUNK_LOCK].map(
      (path) => sim.car.read(path)?.value,
    );
  let call: (path: string) => Promise<ApiAnswer>;
  const api = async (path: string) => (await call(path)).body;
  const commands = () => api('/api/events?type=command');

  before(async () => {
    sim = new CarSimulator({ clock, vissPort: 0 });
    await sim.start();
    ({ hub, api: call } = await startVehicleHub({
      clock,
      viss: sim.url,
      name: 'Family car',
      commandTimeoutMs: 30_000,
    }));
    await eventually(
      async () => ((await api('/api/things/family-car')).state as Record<string, unknown>)['lock.locked'] === true,
    );
    client = await VissTestClient.open(`${hub.httpUrl.replace('http', 'ws')}/viss/family-car`, {
      protocol: 'VISSv3',
      token: hub.ownerToken,
    });
  });

  after(async () => {
    client?.close();
    await hub?.stop();
    await sim?.stop();
  });

  it('another door or the trunk alone is refused, naming the signal and the central lock, and nothing unlocks', async () => {
    assert.deepEqual(locks(), ['true', 'true', 'true', 'true', 'true'], 'parked at home, locked');
    const before = await commands();
    for (const path of [REAR_LOCK, TRUNK_LOCK]) {
      const answer = await client.ask({ action: 'set', path, value: 'false' });
      const error = answer.error as { number: string; description: string } | undefined;
      assert.equal(error?.number, '403', JSON.stringify(answer));
      assert.ok(error.description.includes(path), error.description);
      assert.match(error.description, /central lock/);
      assert.ok(error.description.includes(DRIVER_LOCK), error.description);
    }
    await clock.advance(2_000);
    await settle();
    assert.deepEqual(locks(), ['true', 'true', 'true', 'true', 'true'], 'every door and the trunk still locked');
    assert.deepEqual(await commands(), before, 'no command was issued');
  });

  it("the driver's door is the central lock: it unlocks and locks the car, as the lock actions do", async () => {
    const unlocked = await client.ask({ action: 'set', path: DRIVER_LOCK, value: 'false' });
    assert.equal(unlocked.error, undefined, JSON.stringify(unlocked));
    await eventuallyPasses(() => assert.deepEqual(locks(), ['false', 'false', 'false', 'false', 'false']));
    const locked = await client.ask({ action: 'set', path: DRIVER_LOCK, value: 'true' });
    assert.equal(locked.error, undefined, JSON.stringify(locked));
    await eventuallyPasses(() => assert.deepEqual(locks(), ['true', 'true', 'true', 'true', 'true']));
  });
});
