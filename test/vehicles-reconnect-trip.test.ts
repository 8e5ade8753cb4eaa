import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { VirtualClock } from '../src/core/clock.ts';
import { Hub } from '../src/core/hub.ts';
import { createLogger } from '../src/core/log.ts';
import { VehicleService } from '../src/vehicles/index.ts';
import { eventuallyPasses, tempDir } from './helpers/hub-process.ts';
import { CAR_SIGNALS, driveCar, parkedCarValues, type ScriptedCar, startScriptedCar } from './helpers/scripted-car.ts';

/**
 * A car that drops off the network mid-drive (a tunnel, an underground car park) and is heard of
 * again only once it has parked: the hub reads all its signals at once when it reconnects, and
 * the trip must end where and how the car really ended it. The car is a bare VISS server scripted
 * by the test, on the hub's virtual clock.
 */

const START = Date.parse('2026-03-02T08:00:00Z');
const GRACE_MS = 60_000;
const P = CAR_SIGNALS;

const until = eventuallyPasses;

describe('vehicles: a car out of reach while it ends its trip', () => {
  const clock = new VirtualClock(START);
  const values = parkedCarValues('80');
  /** Out of reach, the car's gateway drops every connection at once (car.reachable). */
  let car: ScriptedCar;
  let hub: Hub;

  /** The car's signals change; a connected hub hears each in an event of its own, as it subscribed. */
  const drive = (changes: Record<string, string>) => driveCar(car, values, clock, changes);

  /** Out of reach: the connection drops and the car changes unheard. */
  const goAway = async () => {
    car.reachable = false;
    car.drop();
    await until(async () => assert.equal((await vehicle()).connected, false));
  };
  /** Back in reach: the hub reconnects and reads everything in one go. */
  const comeBack = async () => {
    const before = car.connections;
    car.reachable = true;
    await clock.advance(1_500);
    await until(() => assert.equal(car.connections, before + 1));
    await until(async () => assert.equal((await vehicle()).connected, true));
  };

  const api = async <T>(path: string) => {
    const res = await fetch(hub.httpUrl + path, { headers: { authorization: `Bearer ${hub.ownerToken}` } });
    return (await res.json()) as T;
  };
  type Row = Record<string, unknown>;
  const vehicle = () => api<{ connected: boolean; state: Row }>('/api/vehicles/car');
  const trips = () => api<Row[]>('/api/vehicles/car/trips');
  const sessions = () => api<Row[]>('/api/vehicles/car/charging-sessions');

  before(async () => {
    // The car names each subscription by its signal's path, and grants one to anything.
    car = await startScriptedCar({ clock, values, subscriptionId: (path) => path, refuseUnknownSubscriptions: false });
    hub = new Hub({
      dataDir: await tempDir(),
      http: { port: 0, host: '127.0.0.1' },
      mqtt: { port: 0, host: '127.0.0.1' },
      clock,
      log: createLogger({ level: 'silent' }),
    }).use(new VehicleService({ tripStopGraceMs: GRACE_MS, backoff: { initialMs: 1_000, maxMs: 1_000 } }));
    await hub.start();
    const res = await fetch(`${hub.httpUrl}/api/vehicles`, {
      method: 'POST',
      headers: { authorization: `Bearer ${hub.ownerToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'Car', viss: car.url }),
    });
    assert.equal(res.status, 201);
    await until(async () => assert.equal((await vehicle()).state['battery.level'], 80));
  });

  after(async () => {
    await hub?.stop();
    await car?.close();
  });

  it('ends the trip at the odometer, place and charge the car reports when it is back', async () => {
    await clock.advance(1_000);
    drive({ [P.moving]: 'true', [P.speed]: '40' });
    await clock.advance(60_000);
    drive({ [P.odometer]: '1001000', [P.latitude]: '52.01', [P.level]: '79', [P.consumed]: '100.2' });
    await until(async () => assert.equal((await trips())[0]?.distanceM, 1000));

    // Into the car park: the connection drops, and the car drives on and parks unheard.
    await goAway();
    await clock.advance(120_000);
    Object.assign(values, {
      [P.speed]: '0',
      [P.moving]: 'false',
      [P.odometer]: '1004000',
      [P.latitude]: '52.04',
      [P.longitude]: '5.02',
      [P.level]: '76',
      [P.consumed]: '101.0',
    });
    await comeBack();
    await until(async () => assert.equal((await vehicle()).state['vehicle.moving'], false));
    await clock.advance(GRACE_MS);
    await until(async () => assert.equal((await trips())[0]?.underWay, undefined));

    const all = await trips();
    assert.equal(all.length, 1, JSON.stringify(all));
    const [trip] = all;
    assert.equal(trip.distanceM, 4000, 'the whole way, to where it parked');
    assert.equal(trip.energyKwh, 1, 'all the energy it used');
    assert.equal(trip.endLevel, 76);
    assert.deepEqual(trip.to, { latitude: 52.04, longitude: 5.02 });
  });

  it('starts a trip the car began while out of reach where it stood, not where it is heard of again', async () => {
    await goAway();
    await clock.advance(60_000);
    Object.assign(values, {
      [P.speed]: '30',
      [P.moving]: 'true',
      [P.odometer]: '1006000',
      [P.latitude]: '52.06',
      [P.level]: '75',
      [P.consumed]: '101.5',
    });
    await comeBack();
    await until(async () => assert.equal((await trips())[0]?.underWay, true));
    const [underWay] = await trips();
    assert.equal(underWay.distanceM, 2000, 'from where it parked');
    assert.equal(underWay.startLevel, 76);
    assert.deepEqual(underWay.from, { latitude: 52.04, longitude: 5.02 });
    assert.equal(underWay.energyKwh, 0.5);
    drive({ [P.odometer]: '1007000', [P.consumed]: '101.8', [P.speed]: '0', [P.moving]: 'false' });
    await clock.advance(GRACE_MS + 1_000);
    await until(async () => assert.equal((await trips()).length, 2));
    const [trip] = await trips();
    assert.equal(trip.distanceM, 3000);
    assert.equal(trip.energyKwh, 0.8);
  });

  it('records all the energy of a charge that ended while the car was out of reach', async () => {
    drive({ [P.charging]: 'true' });
    await until(async () => assert.equal((await vehicle()).state['charging.charging'], true));
    await clock.advance(60_000);
    drive({ [P.charged]: '52', [P.level]: '78' });
    await goAway();
    await clock.advance(3_600_000);
    Object.assign(values, { [P.charged]: '62', [P.level]: '90', [P.charging]: 'false' });
    await comeBack();
    await until(async () => assert.equal((await sessions()).length, 1));
    const [session] = await sessions();
    assert.equal(session.energyKwh, 12, 'from 50 to 62 kWh on the counter');
    assert.equal(session.endLevel, 90);
  });

  it('does not send an unlock that waited for the car once the car is back on the road', async () => {
    await goAway();
    const res = await fetch(`${hub.httpUrl}/api/things/car/actions/unlock`, {
      method: 'POST',
      headers: { authorization: `Bearer ${hub.ownerToken}`, 'content-type': 'application/json' },
      body: '{}',
    });
    assert.equal(res.status, 202, 'parked when last heard of: the unlock waits for the car');
    const { commandId } = (await res.json()) as { commandId: string };
    // Meanwhile the driver got in with the key and drove off.
    Object.assign(values, { [P.moving]: 'true', [P.speed]: '60' });
    await comeBack();
    const command = () => api<{ status: string; error: string | null }>(`/api/commands/${commandId}`);
    await until(async () => assert.equal((await command()).status, 'failed'));
    assert.match((await command()).error ?? '', /while it is moving/);
    assert.deepEqual(car.sets, [], 'nothing was sent to the car');
    drive({ [P.speed]: '0', [P.moving]: 'false' });
    await clock.advance(GRACE_MS + 1_000);
  });

  it('measures a trip of a car attached while already on the road by its odometer and battery', async () => {
    Object.assign(values, { [P.charging]: 'false', [P.speed]: '50', [P.moving]: 'true', [P.odometer]: '1010000' });
    const res = await fetch(`${hub.httpUrl}/api/vehicles`, {
      method: 'POST',
      headers: { authorization: `Bearer ${hub.ownerToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'Second car', viss: car.url }),
    });
    assert.equal(res.status, 201);
    const secondTrips = () => api<Row[]>('/api/vehicles/second-car/trips');
    await until(async () =>
      assert.equal((await api<{ state: Row }>('/api/vehicles/second-car')).state['vehicle.moving'], true),
    );
    await clock.advance(60_000);
    drive({ [P.odometer]: '1011000', [P.latitude]: '52.1', [P.consumed]: '102.2', [P.level]: '88' });
    await clock.advance(1_000);
    drive({ [P.speed]: '0', [P.moving]: 'false' });
    await clock.advance(GRACE_MS + 1_000);
    await until(async () => assert.equal((await secondTrips()).length, 1));
    const [trip] = await secondTrips();
    assert.equal(trip.distanceM, 1000, 'by the odometer, from its first reading');
    assert.equal(trip.energyKwh, 0.4, 'by the consumed-energy counter, from its first reading');
    assert.equal(trip.startLevel, 90);
    assert.deepEqual(trip.from, { latitude: 52.06, longitude: 5.02 });
  });

  it('measures a charge of a car attached while already charging by its charged-energy counter', async () => {
    Object.assign(values, { [P.speed]: '0', [P.moving]: 'false', [P.charging]: 'true', [P.charged]: '62' });
    const res = await fetch(`${hub.httpUrl}/api/vehicles`, {
      method: 'POST',
      headers: { authorization: `Bearer ${hub.ownerToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'Third car', viss: car.url }),
    });
    assert.equal(res.status, 201);
    const thirdSessions = () => api<Row[]>('/api/vehicles/third-car/charging-sessions');
    await until(async () =>
      assert.equal((await api<{ state: Row }>('/api/vehicles/third-car')).state['charging.charging'], true),
    );
    await clock.advance(600_000);
    drive({ [P.charged]: '64.5', [P.level]: '93' });
    await clock.advance(1_000);
    drive({ [P.charging]: 'false' });
    await until(async () => assert.equal((await thirdSessions()).length, 1));
    const [session] = await thirdSessions();
    assert.equal(session.energyKwh, 2.5, 'from its first reading of the counter');
    assert.equal(session.startLevel, 88);
  });
});
