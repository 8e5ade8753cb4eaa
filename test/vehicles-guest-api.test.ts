import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { VirtualClock } from '../src/core/clock.ts';
import { Hub } from '../src/core/hub.ts';
import { createLogger } from '../src/core/log.ts';
import { vocabularyActions, vocabularyProperties } from '../src/model/thing.ts';
import { CarSimulator } from '../src/sim/car/index.ts';
import { VehicleService } from '../src/vehicles/index.ts';
import { eventually, tempDir } from './helpers/hub-process.ts';
import { VissTestClient } from './helpers/viss-client.ts';

type Json = Record<string, unknown>;

/**
 * A guest given a car sees it under /api/vehicles as under /api/things: exactly the cars their
 * pass names, as they are now, and nothing else. Real guest passes on an in-process hub that
 * follows two cars (both the simulator) and a light.
 */

const START = Date.parse('2026-01-05T07:00:00Z');
const HOUR = 3_600_000;

describe('vehicles: a guest pass for a car, under /api/vehicles', () => {
  const clock = new VirtualClock(START);
  let sim: CarSimulator;
  let hub: Hub;

  const call = async (path: string, init: RequestInit & { json?: unknown; token?: string } = {}) => {
    const headers = new Headers({ authorization: `Bearer ${init.token ?? hub.ownerToken}` });
    if (init.json !== undefined) headers.set('content-type', 'application/json');
    const body = init.json === undefined ? undefined : JSON.stringify(init.json);
    const res = await fetch(hub.httpUrl + path, { ...init, headers, body });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : null) as Json & Json[], text };
  };

  const pass = async (things: string[], actions: string[], fromMs = -60_000, toMs = HOUR) => {
    const made = await call('/api/guest-passes', {
      method: 'POST',
      json: {
        name: 'Valet',
        things,
        actions,
        from: new Date(clock.now() + fromMs).toISOString(),
        to: new Date(clock.now() + toMs).toISOString(),
      },
    });
    assert.equal(made.status, 201, made.text);
    return made.body.token as string;
  };

  const errorOf = (answer: { body: Json }) => answer.body.error as { code: string; message: string };

  before(async () => {
    sim = new CarSimulator({ clock, vissPort: 0 });
    await sim.start();
    hub = new Hub({
      dataDir: await tempDir('triad-guest-car-'),
      http: { port: 0, host: '127.0.0.1' },
      mqtt: { port: 0, host: '127.0.0.1' },
      clock,
      log: createLogger({ level: (process.env.TEST_LOG ?? 'silent') as 'silent' }),
      commandTimeoutMs: 30_000,
    }).use(new VehicleService({ tripStopGraceMs: 60_000 }));
    await hub.start();
    for (const name of ['Family car', 'Work van']) {
      const created = await call('/api/vehicles', { method: 'POST', json: { name, viss: sim.url } });
      assert.equal(created.status, 201, created.text);
    }
    await hub.core.upsertThing({
      id: 'hall-light',
      householdId: hub.householdId,
      kind: 'device',
      name: 'Hall light',
      adapter: 'test',
      properties: vocabularyProperties(['light.on']),
      actions: vocabularyActions('light'),
    });
    await eventually(async () => {
      const car = await call('/api/vehicles/family-car');
      return typeof (car.body.state as Json)['battery.level'] === 'number';
    });
  });

  after(async () => {
    await hub?.stop();
    await sim?.stop();
  });

  it('lists and shows exactly the cars the pass names, as /api/things does', async () => {
    const token = await pass(['family-car'], ['lock']);

    const list = await call('/api/vehicles', { token });
    assert.equal(list.status, 200, list.text);
    assert.deepEqual(
      list.body.map((v) => v.id),
      ['family-car'],
    );
    const car = await call('/api/vehicles/family-car', { token });
    assert.equal(car.status, 200, car.text);
    assert.equal(car.body.id, 'family-car');
    assert.equal(typeof (car.body.state as Json)['battery.level'], 'number');
    assert.equal(typeof car.body.connected, 'boolean');
    // The car as it is now, not where the household's gateway lives.
    assert.equal(car.body.viss, null);
    const thing = await call('/api/things/family-car', { token });
    assert.equal(thing.status, 200, thing.text);
    assert.deepEqual(car.body.state, thing.body.state);

    // The other car does not exist for this guest, under either route.
    const van = await call('/api/vehicles/work-van', { token });
    assert.equal(van.status, 404, van.text);
    assert.equal((await call('/api/things/work-van', { token })).status, 404);
    // Told as for a car that does not exist at all: nothing says it is there.
    assert.equal(errorOf(van).code, 'not_found');
    assert.equal(errorOf(van).message, 'vehicle "work-van" not found');

    // The owner still sees both, with their gateway addresses.
    const owners = await call('/api/vehicles');
    assert.deepEqual(owners.body.map((v) => v.id).sort(), ['family-car', 'work-van']);
    assert.equal(typeof owners.body[0].viss, 'string');
  });

  it('a pass without a car lists none, and a car pass is refused what it does not allow', async () => {
    const light = await pass(['hall-light'], ['turn_on']);
    const none = await call('/api/vehicles', { token: light });
    assert.equal(none.status, 200, none.text);
    assert.deepEqual(none.body, []);
    assert.equal((await call('/api/vehicles/family-car', { token: light })).status, 404);

    const token = await pass(['family-car'], ['lock']);
    // Runs the pass's action; anything else on the car is refused.
    const lock = await call('/api/things/family-car/actions/lock', { method: 'POST', json: {}, token });
    assert.ok(lock.status === 200 || lock.status === 202, lock.text);
    const unlock = await call('/api/things/family-car/actions/unlock', { method: 'POST', json: {}, token });
    assert.equal(unlock.status, 403, unlock.text);
    // Attaching, re-pointing and detaching cars stay the household's.
    for (const [method, path, json] of [
      ['POST', '/api/vehicles', { name: 'Mine', viss: sim.url }],
      ['PATCH', '/api/vehicles/family-car', { viss: sim.url }],
      ['DELETE', '/api/vehicles/family-car', undefined],
    ] as const) {
      const refused = await call(path, { method, json, token });
      assert.equal(refused.status, 403, `${method} ${path}: ${refused.text}`);
      assert.equal(errorOf(refused).code, 'forbidden');
    }
    // And the car's past is the household's: trips and charging sessions stay 403.
    for (const path of ['/api/vehicles/family-car/trips', '/api/vehicles/family-car/charging-sessions']) {
      const refused = await call(path, { token });
      assert.equal(refused.status, 403, `${path}: ${refused.text}`);
      assert.match(errorOf(refused).message, /current state, not its history/);
    }
  });

  it('a revoked car pass is told so, over VISS as over the API', async () => {
    const made = await call('/api/guest-passes', {
      method: 'POST',
      json: {
        name: 'Valet',
        things: ['family-car'],
        actions: ['lock'],
        from: new Date(clock.now() - 60_000).toISOString(),
        to: new Date(clock.now() + HOUR).toISOString(),
      },
    });
    const token = made.body.token as string;
    assert.equal((await call(`/api/guest-passes/${made.body.id}`, { method: 'DELETE' })).status, 204);
    const refused = await call('/api/vehicles', { token });
    assert.equal(refused.status, 401, refused.text);
    assert.equal(errorOf(refused).message, 'this guest pass was revoked');
    const client = await VissTestClient.open(`${hub.httpUrl.replace('http', 'ws')}/viss/family-car`, {
      protocol: 'VISSv3',
      token,
    });
    const answer = await client.ask({ action: 'get', path: 'Vehicle.Speed' });
    assert.equal(answer.data, undefined);
    const error = answer.error as { number: string; description: string };
    assert.equal(error.number, '401', JSON.stringify(answer));
    assert.equal(error.description, 'this guest pass was revoked');
    client.close();
  });

  it('outside its window a car pass sees no car under /api/vehicles either', async () => {
    const early = await pass(['family-car'], ['lock'], 10 * 60_000, HOUR);
    for (const path of ['/api/vehicles', '/api/vehicles/family-car']) {
      const refused = await call(path, { token: early });
      assert.equal(refused.status, 403, `${path}: ${refused.text}`);
      assert.match(errorOf(refused).message, /guest pass is valid from/);
    }
  });
});
