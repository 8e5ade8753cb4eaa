import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type VissError, vissErrors } from '../src/adapters/viss/errors.ts';
import { VissWebSocketServer } from '../src/adapters/viss/server.ts';
import type { DataPoint, SignalSource } from '../src/adapters/viss/session.ts';
import { SignalTree } from '../src/adapters/viss/tree.ts';
import { VSS_NODES } from '../src/adapters/viss/vss-nodes.ts';
import { VirtualClock } from '../src/core/clock.ts';
import { Hub } from '../src/core/hub.ts';
import { createLogger } from '../src/core/log.ts';
import { CarSimulator } from '../src/sim/car/index.ts';
import { VehicleService } from '../src/vehicles/index.ts';
import { eventually, tempDir } from './helpers/hub-process.ts';
import { VissTestClient } from './helpers/viss-client.ts';

/**
 * A guest pass's window over VISS: a connection lives longer than a moment, so the window is
 * judged at each request, as the HTTP API judges each call. An in-process hub follows a simulated
 * car on a virtual clock; the VISS clients are real WebSockets.
 */

const START = Date.parse('2026-01-05T07:00:00Z');
const MINUTE = 60_000;
const SPEED = 'Vehicle.Speed';
const DRIVER_LOCK = 'Vehicle.Cabin.Door.Row1.DriverSide.IsLocked';
const EVERY_SECOND = { variant: 'timebased', parameter: { period: '1000' } };

/** Lets the real sockets deliver what the virtual clock set going. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 30));

describe('vehicles: a guest pass over VISS is judged at each request', () => {
  const clock = new VirtualClock(START);
  let sim: CarSimulator;
  let hub: Hub;
  let vissUrl: string;

  const api = async (path: string, init: RequestInit = {}) => {
    const headers = new Headers(init.headers);
    headers.set('authorization', `Bearer ${hub.ownerToken}`);
    if (init.body !== undefined) headers.set('content-type', 'application/json');
    const res = await fetch(hub.httpUrl + path, { ...init, headers });
    const body = res.status === 204 ? null : await res.json();
    return { status: res.status, body: body as Record<string, unknown> & Array<Record<string, unknown>> };
  };

  /** A valet's pass for the car (lock only), valid from `fromMs` to `toMs` after now. */
  const pass = async (fromMs: number, toMs: number) => {
    const made = await api('/api/guest-passes', {
      method: 'POST',
      body: JSON.stringify({
        name: 'Valet',
        things: ['family-car'],
        actions: ['lock'],
        from: new Date(clock.now() + fromMs).toISOString(),
        to: new Date(clock.now() + toMs).toISOString(),
      }),
    });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    return { token: made.body.token as string, from: clock.now() + fromMs, to: clock.now() + toMs };
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
    const created = await api('/api/vehicles', {
      method: 'POST',
      body: JSON.stringify({ name: 'Family car', viss: sim.url }),
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    vissUrl = `${hub.httpUrl.replace('http', 'ws')}/viss/family-car`;
    await eventually(async () => {
      const car = await api('/api/vehicles/family-car');
      return typeof (car.body.state as Record<string, unknown>)['battery.level'] === 'number';
    });
  });

  after(async () => {
    await hub?.stop();
    await sim?.stop();
  });

  it('a connection opened before the window is refused until it opens, then served without reconnecting', async () => {
    const valet = await pass(10 * MINUTE, 70 * MINUTE);
    const client = await VissTestClient.open(vissUrl, { protocol: 'VISSv3', token: valet.token });

    for (const request of [
      { action: 'get', path: SPEED },
      { action: 'set', path: DRIVER_LOCK, value: 'true' },
      { action: 'subscribe', path: SPEED, filter: EVERY_SECOND },
    ]) {
      const early = await client.ask(request);
      assert.equal(early.data, undefined, `${request.action} before the window: ${JSON.stringify(early)}`);
      assert.equal(early.subscriptionId, undefined);
      assert.equal(errorOf(early).number, '403', `${request.action} before the window: ${JSON.stringify(early)}`);
      assert.match(errorOf(early).description, /guest pass is valid from/);
    }

    await clock.advanceTo(valet.from);
    const speed = await client.ask({ action: 'get', path: SPEED });
    assert.equal(speed.error, undefined, `inside the window: ${JSON.stringify(speed)}`);
    assert.equal((speed.data as { path: string }).path, SPEED);
    const locked = await client.ask({ action: 'set', path: DRIVER_LOCK, value: 'true' });
    assert.equal(locked.error, undefined, `the pass's own action inside the window: ${JSON.stringify(locked)}`);
    const subscribed = await client.ask({ action: 'subscribe', path: SPEED, filter: EVERY_SECOND });
    assert.equal(typeof subscribed.subscriptionId, 'string', JSON.stringify(subscribed));
    await clock.advance(3000);
    await eventually(() => client.events(subscribed.subscriptionId).length >= 3, {
      what: 'the subscription to deliver inside the window',
    });
    client.close();
  });

  it('a token given in each request is judged at each request too', async () => {
    const valet = await pass(5 * MINUTE, 65 * MINUTE);
    const client = await VissTestClient.open(vissUrl, { protocol: 'VISSv3' });
    const early = await client.ask({ action: 'get', path: SPEED, authorization: valet.token });
    assert.ok(early.error, `no data before the window: ${JSON.stringify(early)}`);
    assert.equal(early.data, undefined);
    await clock.advanceTo(valet.from);
    const inside = await client.ask({ action: 'get', path: SPEED, authorization: valet.token });
    assert.equal(inside.error, undefined, `inside the window: ${JSON.stringify(inside)}`);
    assert.equal((inside.data as { path: string }).path, SPEED);
    client.close();
  });

  it('a connection opened inside the window ends with it, and its subscriptions deliver nothing after', async () => {
    const valet = await pass(-MINUTE, 10 * MINUTE);
    const client = await VissTestClient.open(vissUrl, { protocol: 'VISSv3', token: valet.token });
    const subscribed = await client.ask({ action: 'subscribe', path: SPEED, filter: EVERY_SECOND });
    assert.equal(typeof subscribed.subscriptionId, 'string', JSON.stringify(subscribed));
    await clock.advance(2000);
    await eventually(() => client.events(subscribed.subscriptionId).length >= 2, {
      what: 'the subscription to deliver inside the window',
    });

    await clock.advanceTo(valet.to + 5000);
    const closed = await client.closed;
    assert.equal(closed.code, 1008, JSON.stringify(closed));
    assert.match(closed.reason, /expired/);
    const late = client
      .events(subscribed.subscriptionId)
      .filter((e) => e.data !== undefined && Date.parse(e.ts as string) >= valet.to);
    assert.deepEqual(late, [], 'no subscription event from the end of the window on');

    // Coming back with the same pass is refused, reads included.
    const again = await VissTestClient.open(vissUrl, { protocol: 'VISSv3', token: valet.token });
    const refused = await again.ask({ action: 'get', path: SPEED });
    assert.equal(refused.data, undefined);
    assert.equal(errorOf(refused).number, '401', JSON.stringify(refused));
    again.close();
  });
});

/** One signal, always 0 km/h, that refuses everything from `closesAt` on. */
class ClosingSource implements SignalSource {
  readonly tree = new SignalTree([SPEED], VSS_NODES);
  constructor(
    private readonly clock: VirtualClock,
    private readonly closesAt: number,
  ) {}

  read(): DataPoint {
    return { value: '0', ts: this.clock.now() };
  }

  async write(): Promise<VissError | null> {
    return null;
  }

  watch(): () => void {
    return () => {};
  }

  refusal(): VissError | null {
    return this.clock.now() >= this.closesAt ? vissErrors.refused('the window has closed') : null;
  }
}

describe('VISS session: a source that starts refusing', () => {
  const clock = new VirtualClock(START);
  let server: VissWebSocketServer;

  before(async () => {
    server = new VissWebSocketServer({ port: 0, clock, source: new ClosingSource(clock, START + 5000) });
    await server.start();
  });
  after(async () => {
    await server?.stop();
  });

  it('ends each subscription with a VISS error message, and refuses requests from then on', async () => {
    const client = await VissTestClient.open(server.url, { protocol: 'VISSv3' });
    const subscribed = await client.ask({ action: 'subscribe', path: SPEED, filter: EVERY_SECOND });
    const id = subscribed.subscriptionId;
    assert.equal(typeof id, 'string', JSON.stringify(subscribed));
    await clock.advance(4000);
    await eventually(() => client.events(id).length >= 4, { what: 'four events' });
    // And no more than the four seconds' worth.
    await settle();
    assert.equal(client.events(id).length, 4);

    await clock.advance(10_000);
    await eventually(() => client.events(id).length >= 5, { what: 'the message that ends the subscription' });
    // Nothing after it.
    await settle();
    const after = client.events(id).slice(4);
    assert.equal(after.length, 1, `one message ends the subscription: ${JSON.stringify(after)}`);
    assert.equal(after[0].data, undefined);
    assert.equal(errorOf(after[0]).number, '403');
    assert.match(errorOf(after[0]).description, /the window has closed/);

    const refused = await client.ask({ action: 'get', path: SPEED });
    assert.equal(refused.data, undefined);
    assert.equal(errorOf(refused).number, '403');
    // The subscription is gone: unsubscribing it is answered as for any unknown one.
    const gone = await client.ask({ action: 'unsubscribe', subscriptionId: id });
    assert.equal(errorOf(gone).number, '404', JSON.stringify(gone));
    client.close();
  });
});

function errorOf(answer: Record<string, unknown>) {
  return answer.error as { number: string; description: string };
}
