import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { VirtualClock } from '../src/core/clock.ts';
import { Hub } from '../src/core/hub.ts';
import { createLogger } from '../src/core/log.ts';
import { VehicleService } from '../src/vehicles/index.ts';
import { eventuallyPasses, tempDir } from './helpers/hub-process.ts';
import { CAR_SIGNALS, driveCar, parkedCarValues, type ScriptedCar, startScriptedCar } from './helpers/scripted-car.ts';

type Json = Record<string, unknown>;

/**
 * The live stream shows no more than the HTTP API: a guest pass for a car follows the car's
 * current state, but not its trips and charging sessions (HTTP refuses those to a guest); and
 * the dashboard's session cookie opens the stream only from the hub's own page. A real in-process hub with the vehicle service, following a car scripted by the test
 * (a bare VISS server), and real WebSocket clients.
 */

const START = Date.parse('2026-03-02T08:00:00Z');
const HOUR = 3_600_000;
const GRACE_MS = 60_000;
const P = CAR_SIGNALS;

const until = eventuallyPasses;

/** A stream client and everything it was sent, or the HTTP status its upgrade was refused with. */
interface Stream {
  messages: Json[];
  send(message: Json): void;
  close(): void;
}

async function openStream(url: string, headers: Record<string, string>): Promise<Stream | { refused: number }> {
  const socket = new WebSocket(url, { headers });
  const messages: Json[] = [];
  socket.on('message', (data) => messages.push(JSON.parse(String(data)) as Json));
  return new Promise((resolve, reject) => {
    socket.once('open', () =>
      resolve({ messages, send: (m) => socket.send(JSON.stringify(m)), close: () => socket.close() }),
    );
    socket.once('unexpected-response', (_request, response) => {
      response.resume();
      resolve({ refused: response.statusCode ?? 0 });
    });
    socket.once('error', reject);
  });
}

function opened(stream: Stream | { refused: number }): Stream {
  assert.ok(!('refused' in stream), `the upgrade was refused with ${'refused' in stream ? stream.refused : ''}`);
  return stream;
}

describe('/api/stream shows a guest current state only, and takes a session cookie only from the hub', () => {
  const clock = new VirtualClock(START);
  const values = parkedCarValues('60');
  let car: ScriptedCar;
  let hub: Hub;
  let dataDir: string;
  let streamUrl: string;

  const iso = (ms: number) => new Date(ms).toISOString();
  /** The car's signals change; the hub hears each as the subscription it made. */
  const drive = (changes: Record<string, string>) => driveCar(car, values, clock, changes);

  const call = async (path: string, init: RequestInit & { json?: unknown; token?: string | null } = {}) => {
    const headers = new Headers();
    if (init.token !== null) headers.set('authorization', `Bearer ${init.token ?? hub.ownerToken}`);
    if (init.json !== undefined) headers.set('content-type', 'application/json');
    const body = init.json === undefined ? undefined : JSON.stringify(init.json);
    const res = await fetch(hub.httpUrl + path, { ...init, headers, body });
    const text = await res.text();
    return { status: res.status, headers: res.headers, body: (text ? JSON.parse(text) : null) as Json & Json[], text };
  };

  const guestPass = async (things: string[], actions: string[]) => {
    const made = await call('/api/guest-passes', {
      method: 'POST',
      json: { name: 'Neighbour', things, actions, from: iso(clock.now() - 60_000), to: iso(clock.now() + HOUR) },
    });
    assert.equal(made.status, 201, made.text);
    return made.body.token as string;
  };

  /** The owner signs in as the dashboard does; the answer is the Cookie header a browser would send. */
  const signIn = async () => {
    const password = (await readFile(join(dataDir, 'owner.password'), 'utf8')).trim();
    const answer = await call('/api/session', { method: 'POST', json: { name: 'owner', password }, token: null });
    assert.equal(answer.status, 200, answer.text);
    return answer.headers
      .getSetCookie()
      .map((c) => c.split(';')[0])
      .join('; ');
  };

  const subscribe = async (stream: Stream, things: string[]) => {
    stream.send({ type: 'subscribe', things, snapshot: true });
    await until(() =>
      assert.ok(
        stream.messages.some((m) => m.type === 'snapshot.end'),
        JSON.stringify(stream.messages),
      ),
    );
  };

  before(async () => {
    car = await startScriptedCar({ clock, values, subscriptionId: (path) => path, refuseUnknownSubscriptions: false });
    dataDir = await tempDir('triad-stream-guest-');
    hub = new Hub({
      dataDir,
      http: { port: 0, host: '127.0.0.1' },
      mqtt: { port: 0, host: '127.0.0.1' },
      clock,
      log: createLogger({ level: (process.env.TEST_LOG ?? 'silent') as 'silent' }),
    }).use(new VehicleService({ tripStopGraceMs: GRACE_MS, backoff: { initialMs: 1_000, maxMs: 1_000 } }));
    await hub.start();
    streamUrl = `${hub.httpUrl.replace('http', 'ws')}/api/stream`;
    const created = await call('/api/vehicles', { method: 'POST', json: { name: 'Second car', viss: car.url } });
    assert.equal(created.status, 201, created.text);
    await until(async () =>
      assert.equal(((await call('/api/vehicles/second-car')).body.state as Json)['battery.level'], 60),
    );
  });

  after(async () => {
    await hub?.stop();
    await car?.close();
  });

  it("sends a guest the car's state changes, but not its charging sessions and trips", async () => {
    const token = await guestPass(['second-car'], ['lock']);
    // Over HTTP the car's past is refused to this pass; the stream must not hand it out instead.
    for (const path of ['/api/vehicles/second-car/charging-sessions', '/api/vehicles/second-car/trips']) {
      assert.equal((await call(path, { token })).status, 403, path);
    }
    const guest = opened(await openStream(streamUrl, { authorization: `Bearer ${token}` }));
    const owner = opened(await openStream(streamUrl, { authorization: `Bearer ${hub.ownerToken}` }));
    try {
      await subscribe(guest, ['second-car']);
      await subscribe(owner, ['second-car']);
      const snapshot = guest.messages.find((m) => m.type === 'thing');
      assert.equal(snapshot?.thing, 'second-car', 'the guest is shown the car as it is now');

      // A charge: plugged in and charging, then stopped.
      drive({ [P.charging]: 'true' });
      await clock.advance(600_000);
      drive({ [P.charged]: '51.84', [P.level]: '63' });
      await clock.advance(1_000);
      drive({ [P.charging]: 'false' });
      // A drive to the shops and back into the drive.
      await clock.advance(1_000);
      drive({ [P.moving]: 'true', [P.speed]: '40' });
      await clock.advance(60_000);
      drive({ [P.odometer]: '1002000', [P.latitude]: '52.01', [P.level]: '62', [P.consumed]: '100.3' });
      await clock.advance(1_000);
      drive({ [P.speed]: '0', [P.moving]: 'false' });
      await clock.advance(GRACE_MS + 1_000);

      const events = (stream: Stream) => stream.messages.filter((m) => m.type === 'event').map((m) => m.event);
      await until(() => {
        assert.ok(events(owner).includes('vehicle.charging_session'), JSON.stringify(events(owner)));
        assert.ok(events(owner).includes('vehicle.trip'), JSON.stringify(events(owner)));
      });
      // What the guest may see: the car's state as it changed, the same changes the owner saw.
      const changes = (stream: Stream) =>
        stream.messages.filter((m) => m.type === 'state').map((m) => `${m.property}=${JSON.stringify(m.value)}`);
      await until(() => assert.deepEqual(changes(guest), changes(owner)));
      assert.ok(changes(guest).includes('charging.charging=false'), JSON.stringify(changes(guest)));
      assert.ok(changes(guest).includes('vehicle.moving=false'), JSON.stringify(changes(guest)));
      // And none of the car's past: no trip with its route, no charging session with its place.
      assert.deepEqual(events(guest), [], JSON.stringify(guest.messages.filter((m) => m.type === 'event')));
    } finally {
      guest.close();
      owner.close();
    }
  });

  it('refuses a signed-in browser a stream opened from a page that is not the hub', async () => {
    const cookie = await signIn();
    const own = new URL(hub.httpUrl).origin;
    const otherPort = `http://127.0.0.1:${Number(new URL(hub.httpUrl).port) + 1}`;
    for (const origin of ['http://evil.example', otherPort, `https://${new URL(hub.httpUrl).host}`, 'null']) {
      const answer = await openStream(streamUrl, { cookie, origin });
      assert.deepEqual(answer, { refused: 403 }, origin);
    }
    // Written in the audit trail, as every refusal is.
    const audit = await call('/api/audit?limit=1000');
    assert.ok(
      (audit.body as unknown as Json[]).some(
        (entry) => entry.action === 'GET /api/stream' && entry.result === 'denied',
      ),
      audit.text.slice(0, 2000),
    );

    // The hub's own page (the dashboard) opens it, and so does a client that is no browser page.
    for (const headers of [{ cookie, origin: own }, { cookie }] as Array<Record<string, string>>) {
      const stream = opened(await openStream(streamUrl, headers));
      await subscribe(stream, ['*']);
      assert.ok(stream.messages.some((m) => m.type === 'thing' && m.thing === 'second-car'));
      stream.close();
    }
  });

  it('takes a bearer token from any page: a browser never adds one on its own', async () => {
    const token = await guestPass(['second-car'], ['lock']);
    const headers = { origin: 'http://evil.example' };
    const byHeader = opened(await openStream(streamUrl, { ...headers, authorization: `Bearer ${hub.ownerToken}` }));
    const byQuery = opened(await openStream(`${streamUrl}?token=${encodeURIComponent(token)}`, headers));
    for (const stream of [byHeader, byQuery]) {
      await subscribe(stream, ['second-car']);
      stream.close();
    }
  });
});
