import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { VirtualClock } from '../src/core/clock.ts';
import type { Hub } from '../src/core/hub.ts';
import { tempDir } from './helpers/hub-process.ts';
import { ownerFetch } from './helpers/owner-api.ts';
import { peopleHub, type SeenEvent, startRecordingPeopleHub } from './helpers/people-hub.ts';

/**
 * Trackers' user names across households: one name space for the whole hub (HTTP Basic and the
 * broker's login name no household), so what one household is told must not depend on another's.
 * Real hub, real HTTP on 127.0.0.1, real SQLite.
 */

const HOME = { latitude: 52.3731, longitude: 4.8922 };

type Phone = { username: string; password: string };

/** A location fix as the OwnTracks app posts it in HTTP mode, sent at `now` (ms). */
const postFix = (hubUrl: string, phone: Phone, point: typeof HOME, now: number) =>
  fetch(`${hubUrl}/api/owntracks`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${phone.username}:${phone.password}`).toString('base64')}`,
      'content-type': 'application/json',
      'x-limit-u': phone.username,
      'x-limit-d': 'pixel',
    },
    body: JSON.stringify({
      _type: 'location',
      lat: point.latitude,
      lon: point.longitude,
      acc: 10,
      tst: Math.floor(now / 1000),
    }),
  });

describe("trackers' user names across households", () => {
  let hub: Hub;
  let clock: VirtualClock;
  let neighbourToken: string;

  const call = async <T>(token: string, path: string, body?: unknown, status = 201): Promise<T> => {
    const res = await fetch(hub.httpUrl + path, {
      method: body === undefined ? 'GET' : 'POST',
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    assert.equal(res.status, status, await res.clone().text());
    return (await res.json()) as T;
  };
  const addPhone = async (token: string, person: string, tracker: string) => {
    const { id } = await call<{ id: string }>(token, '/api/people', { name: person });
    const phone = await call<{ id: string; username: string; password: string }>(token, `/api/people/${id}/trackers`, {
      name: tracker,
    });
    return { person: id, ...phone };
  };
  const post = (phone: Phone, point: typeof HOME) => postFix(hub.httpUrl, phone, point, clock.now());

  before(async () => {
    clock = new VirtualClock(Date.UTC(2026, 2, 2, 7, 0));
    hub = peopleHub({ dataDir: await tempDir('triad-people-trackers-'), clock });
    await hub.start();
    const neighbours = await call<{ token: string }>(hub.ownerToken, '/api/households', { name: 'Neighbours' });
    neighbourToken = neighbours.token;
  });

  after(async () => {
    await hub?.stop();
  });

  it("gives a user name that does not tell whether another household's phone has that name", async () => {
    const ours = await addPhone(hub.ownerToken, 'Alex', 'phone');
    // The neighbours have no Alex of their own; their new Alex's phone gets the same kind of name
    // as a phone whose name nobody has (Kim's), so it cannot be used to probe ours.
    const theirs = await addPhone(neighbourToken, 'Alex', 'phone');
    const control = await addPhone(neighbourToken, 'Kim', 'phone');
    const tail = (username: string, base: string) => {
      assert.ok(username.startsWith(base), `${username} starts with ${base}`);
      return username.slice(base.length).replace(/[0-9a-f]/g, 'x');
    };
    assert.notEqual(theirs.username, ours.username);
    assert.equal(tail(theirs.username, 'alex-phone'), tail(control.username, 'kim-phone'));
    assert.equal(tail(ours.username, 'alex-phone'), tail(control.username, 'kim-phone'));
    const listed = await call<Array<{ trackers: Array<{ id: string; username: string }> }>>(
      neighbourToken,
      '/api/people',
      undefined,
      200,
    );
    assert.deepEqual(
      listed.flatMap((p) => p.trackers.map((t) => t.username)).sort(),
      [control.username, theirs.username].sort(),
    );

    // Each phone logs in with what it was given and moves its own household's person only.
    await clock.advance(1000);
    assert.equal((await post(ours, HOME)).status, 200);
    assert.equal((await post(theirs, HOME)).status, 200);
    assert.equal(hub.core.getValue(hub.householdId, ours.person, 'location.latitude'), HOME.latitude);
    const neighbourHouse = (await call<{ id: string }>(neighbourToken, '/api/household', undefined, 200)).id;
    assert.notEqual(neighbourHouse, hub.householdId);
    assert.equal(hub.core.getValue(neighbourHouse, theirs.person, 'location.latitude'), HOME.latitude);
    assert.equal(hub.core.getThing(hub.householdId, theirs.id), undefined);
  });

  it('keeps a tracker of a long-named person within the length a path takes, so it can be removed', async () => {
    const phone = await addPhone(hub.ownerToken, 'R'.repeat(100), 'p'.repeat(100));
    assert.ok(phone.id.length <= 128, `${phone.id.length} characters`);
    assert.equal(phone.username, phone.id);
    const res = await fetch(`${hub.httpUrl}/api/people/${phone.person}/trackers/${phone.id}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${hub.ownerToken}` },
    });
    assert.equal(res.status, 204, await res.text());
  });

  it('gives two phones of the same name in one household two user names that both work', async () => {
    const first = await addPhone(hub.ownerToken, 'Robin', 'phone');
    const second = await call<{ username: string; password: string }>(
      hub.ownerToken,
      `/api/people/${first.person}/trackers`,
      { name: 'phone' },
    );
    assert.notEqual(first.username, second.username);
    await clock.advance(1000);
    assert.equal((await post(first, HOME)).status, 200);
    assert.equal((await post(second, HOME)).status, 200);
  });
});

describe('a tracker that stops reporting', () => {
  const HOUR = 3_600_000;
  let clock: VirtualClock;
  let dataDir: string;
  let hub: Hub;
  let events: SeenEvent[];

  const start = async () => {
    ({ hub, events } = await startRecordingPeopleHub({ dataDir, clock }));
  };
  const api = async <T>(path: string, method = 'GET', body?: unknown): Promise<T> => {
    const res = await ownerFetch(hub, path, method, body);
    assert.ok(res.ok, `${method} ${path}: ${res.status} ${await res.clone().text()}`);
    return (await res.json()) as T;
  };
  const report = async (phone: Phone, point = HOME) => {
    const res = await postFix(hub.httpUrl, phone, point, clock.now());
    assert.equal(res.status, 200, await res.clone().text());
    assert.equal(res.headers.get('x-triad-ignored'), null);
  };
  type PersonView = {
    id: string;
    presence: { zone: string | null; home: boolean | null; lastReport: string | null; stale: boolean };
    trackers: Array<{ id: string; online: boolean | null; stale: boolean }>;
  };
  const viewOf = async (id: string) => (await api<PersonView[]>('/api/people')).find((p) => p.id === id)!;
  const availability = () => events.filter((e) => e.type === 'availability').map((e) => `${e.thing}:${e.online}`);
  const home = (id: string) => hub.core.getValue(hub.householdId, id, 'presence.home');
  const anyoneHome = () => hub.core.getValue(hub.householdId, 'household', 'presence.anyone_home');

  /**
   * Alex, with a phone in HTTP mode that has reported from home, on a hub with home set and the
   * given staleAfter (virtual hours cost real seconds: the hub's own intervals run on the way).
   */
  const alexAtHome = async (staleAfter: number) => {
    await api('/api/household', 'PUT', { ...HOME, homeRadius: 100, arriveDelay: 0, leaveDelay: 0, staleAfter });
    const { id } = await api<{ id: string }>('/api/people', 'POST', { name: 'Alex' });
    const phone = await api<{ id: string; username: string; password: string }>(`/api/people/${id}/trackers`, 'POST', {
      name: 'phone',
    });
    await clock.advance(1000);
    await report(phone);
    assert.equal(home(id), true);
    events.length = 0;
    return { person: id, phone };
  };

  beforeEach(async () => {
    clock = new VirtualClock(Date.UTC(2026, 2, 2, 22, 0));
    dataDir = await tempDir('triad-people-stale-');
    await start();
  });

  afterEach(async () => {
    await hub?.stop();
  });

  it('is 12 h by default, longer than a night a still phone can be silent', async () => {
    assert.equal((await api<{ staleAfter: number }>('/api/household')).staleAfter, 12 * 3600);
  });

  it("goes stale after staleAfter without changing anyone's presence, and a fix revives it", async () => {
    const { person, phone } = await alexAtHome(3600);
    const reportedAt = new Date(clock.now()).toISOString();

    await clock.advance(HOUR - 1000);
    let view = await viewOf(person);
    assert.deepEqual(view.presence, { zone: 'home', home: true, lastReport: reportedAt, stale: false });
    assert.equal(view.trackers[0].stale, false);
    assert.equal(view.trackers[0].online, true);
    assert.deepEqual(availability(), []);

    await clock.advance(2000);
    view = await viewOf(person);
    assert.equal(view.presence.stale, true, 'the last report is older than staleAfter');
    assert.equal(view.presence.lastReport, reportedAt);
    assert.equal(view.trackers[0].online, false);
    assert.equal(view.trackers[0].stale, true);
    assert.deepEqual(availability(), [`${phone.id}:false`, `${person}:false`]);
    // Silence is not absence: presence is left as the evidence decided it.
    assert.equal(home(person), true);
    assert.equal(anyoneHome(), true);
    assert.equal(hub.core.getValue(hub.householdId, 'household', 'presence.everyone_away'), false);

    await report(phone);
    view = await viewOf(person);
    assert.equal(view.presence.stale, false);
    assert.equal(view.trackers[0].online, true);
    assert.deepEqual(availability().slice(2), [`${phone.id}:true`, `${person}:true`]);
  });

  it('keeps the deadline across a restart, from the last report even when it repeated the position', async () => {
    const { person, phone } = await alexAtHome(3600);
    // A ping 40 minutes later from the same spot: the position does not change, the report is new.
    await clock.advance(40 * 60_000);
    await report(phone);
    await clock.advance(10 * 60_000);
    await hub.stop();
    await start();
    await clock.advance(49 * 60_000);
    assert.equal((await viewOf(person)).presence.stale, false, '99 min after the first report, 59 after the ping');
    assert.deepEqual(availability(), []);
    await clock.advance(2 * 60_000);
    assert.equal((await viewOf(person)).presence.stale, true, 'an hour after the ping');
    assert.deepEqual(availability(), [`${phone.id}:false`, `${person}:false`]);
    assert.equal(home(person), true);

    // Stale when the hub stops, stale again at start, without waiting another hour.
    await hub.stop();
    await start();
    assert.equal((await viewOf(person)).presence.stale, true);
    assert.equal(hub.twins.get(hub.householdId, phone.id)?.online, false);
  });

  it('takes staleAfter from the household: shorter goes stale at once, 0 never', async () => {
    const { person, phone } = await alexAtHome(4 * 3600);
    await clock.advance(2 * HOUR);
    assert.equal((await viewOf(person)).presence.stale, false);
    assert.equal((await api<{ staleAfter: number }>('/api/household', 'PUT', { staleAfter: 3600 })).staleAfter, 3600);
    assert.equal((await viewOf(person)).presence.stale, true);
    assert.equal(hub.twins.get(hub.householdId, phone.id)?.online, false);
    await api('/api/household', 'PUT', { staleAfter: 0 });
    assert.equal((await viewOf(person)).presence.stale, false);
    assert.equal(hub.twins.get(hub.householdId, phone.id)?.online, true);
    await clock.advance(3 * HOUR);
    assert.equal((await viewOf(person)).presence.stale, false);
    assert.equal(home(person), true);
  });
});
