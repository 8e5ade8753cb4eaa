import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import WebSocket from 'ws';
import { parseRequest } from '../src/adapters/viss/protocol.ts';
import { VirtualClock } from '../src/core/clock.ts';
import { Hub } from '../src/core/hub.ts';
import { createLogger } from '../src/core/log.ts';
import { CarSimulator } from '../src/sim/car/index.ts';
import { VehicleService } from '../src/vehicles/index.ts';
import { eventually, eventuallyPasses, freePort, tempDir } from './helpers/hub-process.ts';
import { VissTestClient } from './helpers/viss-client.ts';

/**
 * The car end to end on an in-process hub: a simulated car that is its own VISS server, the hub
 * following it through its VISS client adapter, and plain WebSocket clients speaking VISS JSON to
 * the hub's `/viss/{id}`. The day runs on a virtual clock; the sockets are real.
 */

const START = Date.parse('2026-01-05T07:50:00Z');
const SOC = 'Vehicle.Powertrain.TractionBattery.StateOfCharge.Current';

/** Waits until `check` stops throwing. */
const until = eventuallyPasses;

describe('vehicles: VISS twin, server, client adapter, commands, trips and charging', () => {
  const clock = new VirtualClock(START);
  let sim: CarSimulator;
  let hub: Hub;
  let vissUrl: string;

  const api = async (path: string, init: RequestInit = {}, status?: number) => {
    const headers = new Headers(init.headers);
    headers.set('authorization', `Bearer ${hub.ownerToken}`);
    if (init.body !== undefined) headers.set('content-type', 'application/json');
    const res = await fetch(hub.httpUrl + path, { ...init, headers });
    const body = res.status === 204 ? null : await res.json();
    if (status !== undefined)
      assert.equal(res.status, status, `${init.method ?? 'GET'} ${path}: ${JSON.stringify(body)}`);
    return body as Record<string, unknown> & Array<Record<string, unknown>>;
  };

  /** Runs simulated time in one-second steps, letting the real sockets deliver as it goes. */
  const run = async (seconds: number) => {
    for (let i = 0; i < seconds; i++) {
      await clock.advance(1000);
      if (i % 10 === 9) await new Promise((resolve) => setTimeout(resolve, 2));
    }
    await new Promise((resolve) => setTimeout(resolve, 30));
  };

  before(async () => {
    sim = new CarSimulator({ clock, vissPort: 0 });
    await sim.start();
    hub = new Hub({
      dataDir: await tempDir(),
      http: { port: 0, host: '127.0.0.1' },
      mqtt: { port: 0, host: '127.0.0.1' },
      clock,
      log: createLogger({ level: (process.env.TEST_LOG ?? 'silent') as 'silent' }),
      commandTimeoutMs: 30_000,
    }).use(new VehicleService({ tripStopGraceMs: 60_000 }));
    await hub.start();
    const created = await api(
      '/api/vehicles',
      { method: 'POST', body: JSON.stringify({ name: 'Family car', viss: sim.url }) },
      201,
    );
    assert.equal(created.id, 'family-car');
    vissUrl = `${hub.httpUrl.replace('http', 'ws')}/viss/family-car`;
    await until(async () => {
      const car = await api('/api/vehicles/family-car');
      assert.equal(typeof (car.state as Record<string, unknown>)['battery.level'], 'number');
    });
  });

  after(async () => {
    await hub?.stop();
    await sim?.stop();
  });

  it('mirrors the car into a twin of kind vehicle, each property bound to its VSS path', async () => {
    const things = await api('/api/things', {}, 200);
    const car = things.find((t) => t.id === 'family-car')!;
    assert.equal(car.kind, 'vehicle');
    const state = car.state as Record<string, unknown>;
    assert.equal(state['battery.capacity'], 64);
    assert.equal(state['vehicle.vin'], 'TRDSMCAR1A2B00001');
    assert.equal(state['charging.connected'], true);
    const properties = car.properties as Record<string, { binding?: string }>;
    assert.equal(properties['battery.level'].binding, SOC);
    assert.equal(properties['lock.locked'].binding, 'Vehicle.Cabin.Door.Row1.DriverSide.IsLocked');
  });

  it('serves VISS: get, wildcard paths, metadata, and refuses set on a sensor (VISSv3)', async () => {
    const client = await VissTestClient.open(vissUrl, { protocol: 'VISSv3', token: hub.ownerToken });
    const speed = await client.ask({ action: 'get', path: 'Vehicle.Speed' });
    assert.deepEqual((speed.data as { path: string }).path, 'Vehicle.Speed');
    assert.equal((speed.data as { dp: { value: string } }).dp.value, '0');

    const doors = await client.ask({
      action: 'get',
      path: 'Vehicle.Cabin',
      filter: { variant: 'paths', parameter: ['Door.*.*.IsLocked'] },
    });
    assert.equal((doors.data as unknown[]).length, 4);

    const meta = await client.ask({
      action: 'get',
      path: 'Vehicle.Powertrain.TractionBattery',
      filter: { variant: 'metadata', parameter: '1' },
    });
    const battery = (meta.metadata as Record<string, { type: string; children: Record<string, unknown> }>)
      .TractionBattery;
    assert.equal(battery.type, 'branch');
    assert.ok('NetCapacity' in battery.children);

    const refused = await client.ask({ action: 'set', path: 'Vehicle.Speed', value: '100' });
    assert.deepEqual(refused.error, {
      number: '400',
      reason: 'invalid_data',
      description: 'Update of a sensor is not supported: Vehicle.Speed is not an actuator',
    });
    client.close();
  });

  it('a guest pass for the car reads it over VISS only inside its window', async () => {
    const pass = async (fromMs: number) =>
      (await api(
        '/api/guest-passes',
        {
          method: 'POST',
          body: JSON.stringify({
            name: 'Valet',
            things: ['family-car'],
            actions: ['lock'],
            from: new Date(clock.now() + fromMs).toISOString(),
            to: new Date(clock.now() + fromMs + 3_600_000).toISOString(),
          }),
        },
        201,
      )) as unknown as { token: string };
    const inside = await VissTestClient.open(vissUrl, { protocol: 'VISSv3', token: (await pass(-60_000)).token });
    const speed = await inside.ask({ action: 'get', path: 'Vehicle.Speed' });
    assert.equal((speed.data as { path: string }).path, 'Vehicle.Speed', JSON.stringify(speed));
    inside.close();
    const early = await VissTestClient.open(vissUrl, { protocol: 'VISSv3', token: (await pass(3_600_000)).token });
    const refused = await early.ask({ action: 'get', path: 'Vehicle.CurrentLocation.Latitude' });
    assert.ok(refused.error, `no data before the window: ${JSON.stringify(refused)}`);
    assert.equal(refused.data, undefined);
    early.close();
  });

  it('speaks VISSv2 too: errors with a numeric number and a message', async () => {
    const client = await VissTestClient.open(vissUrl, { protocol: 'VISSv2', token: hub.ownerToken });
    assert.equal(client.socket.protocol, 'VISSv2');
    const unknown = await client.ask({ action: 'get', path: 'Vehicle.Warp.Drive' });
    assert.equal((unknown.error as { number: number }).number, 404);
    assert.equal((unknown.error as { reason: string }).reason, 'unavailable_data');
    assert.match((unknown.error as { message: string }).message, /Data is unknown/);
    client.close();
  });

  it('authorises by the upgrade header or the request authorization field, and refuses without', async () => {
    const anonymous = await VissTestClient.open(vissUrl, { protocol: 'VISSv3' });
    const refused = await anonymous.ask({ action: 'get', path: 'Vehicle.Speed' });
    assert.equal((refused.error as { number: string }).number, '401');
    assert.equal((refused.error as { reason: string }).reason, 'invalid_token');
    const wrong = await anonymous.ask({ action: 'get', path: 'Vehicle.Speed', authorization: 'not-a-token' });
    assert.equal((wrong.error as { number: string }).number, '401');
    const allowed = await anonymous.ask({ action: 'get', path: 'Vehicle.Speed', authorization: hub.ownerToken });
    assert.equal(allowed.error, undefined);
    assert.equal((allowed.data as { path: string }).path, 'Vehicle.Speed');
    anonymous.close();

    const badHeader = await VissTestClient.open(vissUrl, { protocol: 'VISSv3', token: 'forged' });
    const answer = await badHeader.ask({ action: 'get', path: 'Vehicle.Speed' });
    assert.equal((answer.error as { number: string }).number, '401');
    badHeader.close();
  });

  it('closes a VISS connection whose token is revoked, ending its subscriptions, and keeps the others', async () => {
    const owner = ((await api('/api/users', {}, 200)) as Array<Record<string, unknown>>)[0];
    const token = async (name: string) =>
      (await api(
        '/api/tokens',
        { method: 'POST', body: JSON.stringify({ user: owner.id, name }) },
        201,
      )) as unknown as {
        id: string;
        token: string;
      };
    const [dashboard, phone] = [await token('garage dashboard'), await token('phone')];
    // One connection authorised by its upgrade header, one by its requests' authorization field.
    const byHeader = await VissTestClient.open(vissUrl, { protocol: 'VISSv3', token: dashboard.token });
    const byRequest = await VissTestClient.open(vissUrl, { protocol: 'VISSv3' });
    const other = await VissTestClient.open(vissUrl, { protocol: 'VISSv3', token: phone.token });
    for (const client of [byHeader, other]) {
      const subscribed = await client.ask({
        action: 'subscribe',
        path: SOC,
        filter: { variant: 'change', parameter: { 'logic-op': 'ne', diff: '0' } },
      });
      assert.equal(subscribed.error, undefined, JSON.stringify(subscribed));
    }
    const read = await byRequest.ask({ action: 'get', path: SOC, authorization: dashboard.token });
    assert.equal(read.error, undefined, JSON.stringify(read));
    const closed = (client: VissTestClient) =>
      new Promise<{ code: number; reason: string }>((resolve) =>
        client.socket.once('close', (code, reason) => resolve({ code, reason: String(reason) })),
      );
    const ends = [closed(byHeader), closed(byRequest)];
    await api(`/api/tokens/${dashboard.id}`, { method: 'DELETE' }, 204);
    const timeout = new Promise((resolve) => setTimeout(() => resolve(['still open', 'still open']), 3000));
    for (const ended of (await Promise.race([Promise.all(ends), timeout])) as unknown[])
      assert.deepEqual(ended, { code: 1008, reason: 'the token was revoked' });
    assert.equal(other.socket.readyState, WebSocket.OPEN, "the phone's connection carries on");
    const still = await other.ask({ action: 'get', path: SOC });
    assert.equal(still.error, undefined);
    other.close();
  });

  it('locks the car through VISS and confirms from the car’s reported state', async () => {
    const command = await api('/api/things/family-car/actions/unlock', { method: 'POST', body: '{}' }, 202);
    await until(async () => assert.equal((await api(`/api/commands/${command.commandId}`)).status, 'confirmed'));
    assert.equal(sim.car.read('Vehicle.Cabin.Door.Row2.PassengerSide.IsLocked')?.value, 'false');
    const lock = await api('/api/things/family-car/actions/lock', { method: 'POST', body: '{}' }, 202);
    await until(async () => assert.equal((await api(`/api/commands/${lock.commandId}`)).status, 'confirmed'));
    assert.equal(sim.car.read('Vehicle.Body.Trunk.Rear.IsLocked')?.value, 'true');
    assert.equal(((await api('/api/vehicles/family-car')).state as Record<string, unknown>)['lock.locked'], true);
    // Locking a locked car changes nothing the car would notify: its reading back confirms it.
    const again = await api('/api/things/family-car/actions/lock', { method: 'POST', body: '{}' }, 202);
    await until(async () => assert.equal((await api(`/api/commands/${again.commandId}`)).status, 'confirmed'));
    // However the car's word came back (its notification or the read-back), each command was
    // sent before it was confirmed, and its log says so.
    const events = await api(`/api/events?type=command&thing=family-car&since=${new Date(START).toISOString()}`);
    for (const id of [command.commandId, lock.commandId, again.commandId]) {
      const statuses = events
        .filter((e) => (e.command as { id: string }).id === id)
        .map((e) => (e.command as { status: string }).status);
      assert.deepEqual(statuses, ['pending', 'sent', 'confirmed'], `the log of ${id}`);
    }
  });

  it('notifies a change subscription on state of charge while the car drives, refuses unlock while moving, and lists the trip and the charging session', async () => {
    const client = await VissTestClient.open(vissUrl, { token: hub.ownerToken });
    const subscribed = await client.ask({
      action: 'subscribe',
      path: SOC,
      filter: { variant: 'change', parameter: { 'logic-op': 'ne', diff: '0' } },
    });
    assert.equal(typeof subscribed.subscriptionId, 'string');

    // 07:50 → 08:01: the car leaves home at 08:00 and is on the road.
    await run(11 * 60);
    await until(async () =>
      assert.equal(((await api('/api/vehicles/family-car')).state as Record<string, unknown>)['vehicle.moving'], true),
    );
    const refused = await api('/api/things/family-car/actions/unlock', { method: 'POST', body: '{}' }, 409);
    assert.equal((refused.error as { code: string }).code, 'vehicle_moving');
    assert.match((refused.error as { message: string }).message, /while it is moving/);
    const window = await api(
      '/api/things/family-car/actions/set_window',
      { method: 'POST', body: JSON.stringify({ window: 'front_driver', position: 50 }) },
      409,
    );
    assert.equal((window.error as { code: string }).code, 'vehicle_moving');
    // A VISS client's unlock goes through the same rule.
    const vissUnlock = await client.ask({
      action: 'set',
      path: 'Vehicle.Cabin.Door.Row1.DriverSide.IsLocked',
      value: 'false',
    });
    assert.equal((vissUnlock.error as { number: string }).number, '403');
    // The trip it is on is listed as it goes, before it is recorded: no end, no id, so far.
    const [underWay, ...none] = await api('/api/vehicles/family-car/trips', {}, 200);
    assert.deepEqual(none, [], 'no trip recorded yet');
    assert.equal(underWay.underWay, true);
    assert.equal(underWay.end, null);
    assert.equal(underWay.id, null);
    assert.ok((underWay.distanceM as number) > 0, `distance so far ${underWay.distanceM}`);
    assert.ok((underWay.route as unknown[]).length >= 2, 'its route so far');

    await run(20 * 60);
    const events = client.events(subscribed.subscriptionId);
    assert.ok(events.length >= 3, `expected state-of-charge notifications, got ${events.length}`);
    const values = events.map((e) => Number((e.data as { dp: { value: string } }).dp.value));
    assert.ok(values.at(-1)! < Math.max(...values), `charge falls while driving: ${values.join(' ')}`);

    const unsubscribed = await client.ask({ action: 'unsubscribe', subscriptionId: subscribed.subscriptionId });
    assert.equal(unsubscribed.error, undefined);
    client.close();

    const trips = await eventually(async () => {
      const list = await api('/api/vehicles/family-car/trips', {}, 200);
      assert.equal(list.length, 1);
      return list;
    });
    const trip = trips[0];
    assert.equal(typeof trip.id, 'string', 'recorded, with the id of its event');
    assert.equal(trip.underWay, undefined);
    assert.ok((trip.distanceM as number) > 5_000 && (trip.distanceM as number) < 9_000, `distance ${trip.distanceM}`);
    assert.ok((trip.energyKwh as number) > 0.4 && (trip.energyKwh as number) < 3, `energy ${trip.energyKwh}`);
    assert.ok((trip.route as unknown[]).length > 10);

    // It was charging at home when it left: that session ended with energy added.
    const sessions = await api('/api/vehicles/family-car/charging-sessions', {}, 200);
    assert.equal(sessions.length, 1);
    assert.ok((sessions[0].energyKwh as number) > 0, `energy added ${sessions[0].energyKwh}`);
    assert.ok((sessions[0].averagePowerKw as number) > 5 && (sessions[0].averagePowerKw as number) < 11);
  });

  it('keeps a command for an unreachable car until it expires, never dropping it', async () => {
    const port = await freePort();
    await api(
      '/api/vehicles',
      { method: 'POST', body: JSON.stringify({ name: 'Away car', viss: `ws://127.0.0.1:${port}/` }) },
      201,
    );
    const command = await api('/api/things/away-car/actions/lock', { method: 'POST', body: '{}' }, 202);
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal((await api(`/api/commands/${command.commandId}`)).status, 'pending');
    await clock.advance(31_000);
    await until(async () => assert.equal((await api(`/api/commands/${command.commandId}`)).status, 'expired'));
  });

  it('answers bad input with the spec’s errors and bounds subscriptions, and the hub keeps working', async () => {
    const client = await VissTestClient.open(vissUrl, { token: hub.ownerToken });
    client.socket.send('{not json');
    const malformed = await eventually(() => {
      const m = client.messages.find((x) => x.requestId === undefined && x.error);
      if (!m) throw new Error('no answer to malformed JSON');
      return m;
    });
    assert.equal((malformed.error as { reason: string }).reason, 'bad_request');
    const wrongType = await client.ask({
      action: 'set',
      path: 'Vehicle.Powertrain.TractionBattery.Charging.ChargeLimit',
      value: 'lots',
    });
    assert.match((wrongType.error as { description: string }).description, /Incorrect data type/);
    const outside = await client.ask({
      action: 'set',
      path: 'Vehicle.Powertrain.TractionBattery.Charging.ChargeLimit',
      value: '300',
    });
    assert.match((outside.error as { description: string }).description, /outside limit/);
    const branch = await client.ask({ action: 'set', path: 'Vehicle.Cabin', value: 'true' });
    assert.equal((branch.error as { reason: string }).reason, 'invalid_data');
    const badFilter = await client.ask({
      action: 'subscribe',
      path: 'Vehicle.Speed',
      filter: { variant: 'timebased', parameter: { period: '1' } },
    });
    assert.equal((badFilter.error as { reason: string }).reason, 'bad_request');

    const answers = await Promise.all(
      Array.from({ length: 120 }, () =>
        client.ask({
          action: 'subscribe',
          path: 'Vehicle.Speed',
          filter: { variant: 'change', parameter: { 'logic-op': 'ne', diff: '0' } },
        }),
      ),
    );
    const accepted = answers.filter((a) => a.error === undefined).length;
    const limited = answers.filter((a) => (a.error as { number?: string } | undefined)?.number === '429').length;
    assert.equal(accepted, 100);
    assert.equal(limited, 20);
    client.close();
    const health = await fetch(`${hub.httpUrl}/api/health`);
    assert.equal(health.status, 200);
    const speed = await (await VissTestClient.open(vissUrl, { token: hub.ownerToken })).ask({
      action: 'get',
      path: 'Vehicle.Speed',
    });
    assert.equal(speed.error, undefined);
  });
});

describe('VISS message parser', () => {
  it('never throws, and every refusal carries a spec error number and reason', () => {
    const numbers = new Set([400, 401, 403, 404, 429]);
    const action = fc.constantFrom('get', 'set', 'subscribe', 'unsubscribe', 'subscription', 'x', 3);
    const filter = fc.oneof(
      fc.anything(),
      fc.record({
        variant: fc.constantFrom('paths', 'timebased', 'change', 'range', 'metadata', 'curvelog'),
        parameter: fc.anything(),
      }),
    );
    const message = fc.oneof(
      fc.string(),
      fc.json(),
      fc
        .record(
          {
            action,
            path: fc.oneof(fc.string(), fc.constant('Vehicle.Speed')),
            requestId: fc.oneof(fc.string(), fc.integer()),
            filter,
            value: fc.anything(),
          },
          { requiredKeys: [] },
        )
        .map((m) => JSON.stringify(m) ?? ''),
    );
    fc.assert(
      fc.property(message, (text) => {
        const parsed = parseRequest(text);
        if (parsed.ok) {
          assert.ok(['get', 'set', 'subscribe', 'unsubscribe'].includes(parsed.request.action));
          assert.equal(typeof parsed.request.requestId, 'string');
        } else {
          assert.ok(numbers.has(parsed.error.number), `number ${parsed.error.number}`);
          assert.ok(parsed.error.reason.length > 0);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('reads both spellings of a filter: v3 variant and v2 type', () => {
    const v2 = parseRequest(
      '{"action":"subscribe","path":"Vehicle.Speed","requestId":"1","filter":{"type":"range","parameter":[{"boundary-op":"gt","boundary":"50"}]}}',
    );
    const v3 = parseRequest(
      '{"action":"subscribe","path":"Vehicle.Speed","requestId":"1","filter":{"variant":"range","parameter":[{"logic-op":"gt","boundary":"50"}]}}',
    );
    assert.deepEqual(v2, v3);
    assert.ok(v2.ok && v2.request.action === 'subscribe' && v2.request.trigger.kind === 'range');
  });
});
