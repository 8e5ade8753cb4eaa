import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import type { Hub } from '../src/core/hub.ts';
import { createLogger } from '../src/core/log.ts';
import { createTriad } from '../src/triad.ts';
import { eventuallyPasses, tempDir } from './helpers/hub-process.ts';
import { postOwnTracksFix } from './helpers/owntracks.ts';

/**
 * Creates sent at the same moment, over HTTP to a real hub (SQLite, its own broker): each request
 * answered 201 must have made what it answered, and the rest must get what the same request sent
 * after the others gets (a 409, or the next free id). Each create checks for a clash and then
 * awaits (a password hash, the store) before saving, so before they took turns every request
 * passed the check and the last save won.
 */

type Json = Record<string, unknown>;
interface Answer {
  status: number;
  body: Json & Json[];
}

const PARALLEL = 20;

describe('creates at the same moment', () => {
  let hub: Hub;
  let tokenB = '';

  const call = async (method: string, path: string, body?: unknown, token = hub.ownerToken): Promise<Answer> => {
    const headers: Record<string, string> = {};
    if (token) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(hub.httpUrl + path, { method, headers, body: JSON.stringify(body) });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : {}) as Json & Json[] };
  };
  const statuses = (answers: Answer[]) => answers.map((a) => a.status).sort();

  before(async () => {
    hub = createTriad({
      dataDir: await tempDir('triad-parallel-'),
      http: { port: 0, host: '127.0.0.1' },
      mqtt: { port: 0, host: '127.0.0.1' },
      log: createLogger({ level: 'silent' }),
      rateLimits: { api: { burst: 100_000, perSecond: 100_000 } },
    });
    await hub.start();
    const made = await call('POST', '/api/households', { name: 'Neighbours' });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    tokenB = made.body.token as string;
  });

  after(async () => {
    await hub?.stop();
  });

  it('people of one name each get an id of their own, and every one answered is kept', async () => {
    const answers = await Promise.all(
      Array.from({ length: PARALLEL }, () => call('POST', '/api/people', { name: 'Twin' })),
    );
    assert.deepEqual(statuses(answers), Array(PARALLEL).fill(201));
    const ids = answers.map((a) => a.body.id as string);
    assert.equal(new Set(ids).size, PARALLEL, `ids answered: ${ids.join(', ')}`);
    const expected = ['twin', ...Array.from({ length: PARALLEL - 1 }, (_, i) => `twin-${i + 2}`)];
    assert.deepEqual([...ids].sort(), [...expected].sort());
    const people = (await call('GET', '/api/people')).body.filter((p) => p.name === 'Twin');
    assert.deepEqual(people.map((p) => p.id).sort(), [...ids].sort(), 'every person answered is stored');
  });

  it('zones of one name each get an id of their own, each with the place it was given', async () => {
    const answers = await Promise.all(
      Array.from({ length: 9 }, (_, i) =>
        call('POST', '/api/zones', { name: 'Dup', latitude: 50 + i / 100, longitude: 5, radius: 100 }),
      ),
    );
    assert.deepEqual(statuses(answers), Array(9).fill(201));
    const ids = answers.map((a) => a.body.id as string);
    assert.equal(new Set(ids).size, 9, `ids answered: ${ids.join(', ')}`);
    const zones = new Map((await call('GET', '/api/zones')).body.map((z) => [z.id as string, z]));
    for (const answer of answers) {
      const stored = zones.get(answer.body.id as string);
      assert.equal(stored?.latitude, answer.body.latitude, `zone ${answer.body.id} as answered`);
    }
  });

  it('makes one user of a name; the others are refused as a second request is, and the one signs in', async () => {
    const answers = await Promise.all(
      Array.from({ length: 10 }, () =>
        call('POST', '/api/users', { name: 'Racer', role: 'adult', password: 'Racer-secret-pw' }),
      ),
    );
    assert.deepEqual(statuses(answers), [201, ...Array(9).fill(409)]);
    for (const refused of answers.filter((a) => a.status === 409)) {
      assert.match(JSON.stringify(refused.body), /a user named \\"Racer\\" exists/);
    }
    const racers = (await call('GET', '/api/users')).body.filter((u) => u.name === 'Racer');
    assert.deepEqual(
      racers.map((u) => u.id),
      [answers.find((a) => a.status === 201)?.body.id],
    );
    const signIn = await call('POST', '/api/session', { name: 'Racer', password: 'Racer-secret-pw' }, '');
    assert.equal(signIn.status, 200, JSON.stringify(signIn.body));
  });

  it('registers a charge point id once, however many ask at the same moment', async () => {
    const answers = await Promise.all(
      Array.from({ length: 10 }, () => call('POST', '/api/chargers', { chargePointId: 'CP-RACE', name: 'Racer' })),
    );
    assert.deepEqual(statuses(answers), [201, ...Array(9).fill(409)]);
    const winner = answers.find((a) => a.status === 201)!;
    const chargers = (await call('GET', '/api/chargers')).body.filter((c) => c.id === winner.body.id);
    assert.equal(chargers.length, 1);
    assert.equal(await connects(winner, 'CP-RACE'), 'open', 'the password answered connects');
  });

  it('gives a charge point id two households register at once to one of them, whose password connects', async () => {
    const [ofA, ofB] = await Promise.all([
      call('POST', '/api/chargers', { chargePointId: 'CP-CLASH', name: 'Ours' }),
      call('POST', '/api/chargers', { chargePointId: 'CP-CLASH', name: 'Theirs' }, tokenB),
    ]);
    assert.deepEqual(statuses([ofA, ofB]), [201, 409]);
    const [winner, loser] = ofA.status === 201 ? [ofA, ofB] : [ofB, ofA];
    assert.match(JSON.stringify(loser.body), /charge point CP-CLASH is already registered/);
    assert.equal(await connects(winner, 'CP-CLASH'), 'open');
  });

  /** Opens the charge point's OCPP connection with the password its registration answered. */
  function connects(registration: Answer, chargePointId: string): Promise<string> {
    const url = hub.httpUrl.replace('http', 'ws') + (registration.body.ocpp as { path: string }).path;
    const basic = Buffer.from(`${chargePointId}:${registration.body.password}`).toString('base64');
    return new Promise((resolve) => {
      const socket = new WebSocket(url, ['ocpp1.6'], { headers: { authorization: `Basic ${basic}` } });
      socket.once('open', () => {
        socket.close();
        resolve('open');
      });
      socket.once('unexpected-response', (_request, response) => resolve(`HTTP ${response.statusCode}`));
      socket.once('error', (error) => resolve(String(error)));
    });
  }

  it("does not give a new person a removed person's id, nor show them where that person went", async () => {
    const alex = await call('POST', '/api/people', { name: 'Alex' });
    assert.equal(alex.status, 201);
    const phone = await call('POST', `/api/people/${alex.body.id}/trackers`, { name: 'phone' });
    assert.equal(phone.status, 201);
    const fix = await postOwnTracksFix(hub.httpUrl, phone.body as never, { latitude: 52.09, longitude: 5.12 });
    assert.equal(fix.status, 200, await fix.text());
    await eventuallyPasses(async () => {
      const history = await call('GET', `/api/things/${alex.body.id}/history?property=location.latitude`);
      assert.equal((history.body.points as Json[]).length, 1, JSON.stringify(history.body));
    });

    // At once after the removal, while its events may still be waiting to be written.
    assert.equal((await call('DELETE', `/api/people/${alex.body.id}`)).status, 204);
    const next = await call('POST', '/api/people', { name: 'Alex' });
    assert.equal(next.status, 201);
    assert.notEqual(next.body.id, alex.body.id, 'a new id, not the removed person’s');
    assert.equal(next.body.id, `${alex.body.id}-2`);

    const history = await call('GET', `/api/things/${next.body.id}/history`);
    assert.equal(history.status, 200);
    assert.deepEqual(history.body.points, [], 'the new person has no history');
    const events = await call('GET', `/api/events?thing=${next.body.id}`);
    assert.deepEqual(
      events.body.filter((e) => e.type !== 'thing.added'),
      [],
      'nor any event but their own arrival',
    );
  });

  it("keeps a removed person's id out of use even when they were added and removed a moment ago", async () => {
    // Their arrival and removal are events still in the writer's batch: the id is not free for that.
    const sam = await call('POST', '/api/people', { name: 'Sam' });
    assert.equal((await call('DELETE', `/api/people/${sam.body.id}`)).status, 204);
    const next = await call('POST', '/api/people', { name: 'Sam' });
    assert.equal(next.status, 201);
    assert.equal(next.body.id, `${sam.body.id}-2`);
    const events = await call('GET', `/api/events?thing=${next.body.id}`);
    assert.deepEqual(
      events.body.map((e) => e.type),
      ['thing.added'],
    );
  });

  it('leaves no tracker, nor a login, of a person removed while a tracker was being added', async () => {
    // The removal comes a little after the tracker's request, at several moments, so some land
    // while its password is being hashed.
    for (const delay of [0, 5, 10, 15, 20, 30, 50]) {
      const person = await call('POST', '/api/people', { name: `Kim ${delay}` });
      const id = person.body.id as string;
      const [phone, removal] = await Promise.all([
        call('POST', `/api/people/${id}/trackers`, { name: 'phone' }),
        new Promise((resolve) => setTimeout(resolve, delay)).then(() => call('DELETE', `/api/people/${id}`)),
      ]);
      assert.equal(removal.status, 204);
      const trackers = (await call('GET', '/api/things?kind=tracker')).body.filter((t) => t.id === phone.body.id);
      assert.deepEqual(trackers, [], `after ${delay} ms: the tracker answered ${phone.status} is gone with ${id}`);
      if (phone.status !== 201) continue;
      const fix = await postOwnTracksFix(hub.httpUrl, phone.body as never, { latitude: 52.09, longitude: 5.12 });
      assert.equal(fix.status, 401, `after ${delay} ms: the removed person's phone still signs in`);
    }
  });
});
