import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { VirtualClock } from '../src/core/clock.ts';
import type { Hub } from '../src/core/hub.ts';
import { offsetPoint } from '../src/people/geo.ts';
import { tempDir } from './helpers/hub-process.ts';
import { ownerFetch } from './helpers/owner-api.ts';
import type { Phone, Place } from './helpers/owntracks.ts';
import { addPersonWithPhone, ownerCall, postOwnTracks } from './helpers/owntracks-app.ts';
import { peopleHub } from './helpers/people-hub.ts';

/**
 * A fourth hostile review of people and presence: what real OwnTracks phones send that the hub
 * mishandled. Real hub, real HTTP on 127.0.0.1, real SQLite, delays on a virtual clock.
 */

const HOME = { latitude: 52.3731, longitude: 4.8922 };
const FAR = offsetPoint(HOME, 2_000, 90);

describe('people and presence, a fourth hostile review', () => {
  let hub: Hub;
  let clock: VirtualClock;

  const api = <T>(method: string, path: string, body?: unknown, status = 200) =>
    ownerCall<T>(hub, method, path, body, status);
  const addTracker = (name: string) => addPersonWithPhone(hub, name);
  const value = (thing: string, property: string) => hub.core.getValue(hub.householdId, thing, property);
  /** The app's `tst`: whole seconds, `secondsAgo` before now. */
  const tst = (secondsAgo = 0) => Math.floor(clock.now() / 1000) - secondsAgo;
  const location = (place: Place, extra: Record<string, unknown> = {}) => ({
    _type: 'location',
    lat: place.latitude,
    lon: place.longitude,
    acc: 10,
    tst: tst(),
    ...extra,
  });
  const post = (phone: Phone, body: unknown) => postOwnTracks(hub, phone, body);

  beforeEach(async () => {
    clock = new VirtualClock(Date.UTC(2026, 2, 2, 7, 0));
    hub = peopleHub({ dataDir: await tempDir('triad-people-review4-'), clock });
    await hub.start();
    await api('PUT', '/api/household', { ...HOME, homeRadius: 100, arriveDelay: 0, leaveDelay: 60 });
  });

  afterEach(async () => {
    await hub?.stop();
  });

  it("imports the circles of a phone's region export that also lists regions without a radius, and answers 200", async () => {
    const alex = await addTracker('Alex');
    // iOS lists a beacon region with rad 0 (and its uuid, major, minor); Android leaves rad out of a
    // region saved without one.
    const beacon = {
      _type: 'waypoint',
      desc: 'Car beacon',
      lat: 0,
      lon: 0,
      rad: 0,
      tst: tst(86_400),
      uuid: 'CA271EAE-5FA8-4E80-8F08-2A302A95A959',
      major: 1,
      minor: 2,
    };
    const noRadius = { _type: 'waypoint', desc: 'Bakery', lat: HOME.latitude, lon: HOME.longitude, tst: tst(86_400) };
    const work = {
      _type: 'waypoint',
      desc: 'Work',
      lat: FAR.latitude,
      lon: FAR.longitude,
      rad: 150,
      tst: tst(86_400),
      rid: 'w1',
    };
    const exported = { _type: 'waypoints', waypoints: [work, beacon, noRadius] };

    // Import off: the export is still the phone's honest message, not a mistake to retry.
    const off = await post(alex, exported);
    assert.equal(off.status, 200, await off.clone().text());
    assert.match(off.headers.get('x-triad-ignored') ?? '', /import is off/);

    await api('PUT', '/api/household', { importWaypoints: true });
    const on = await post(alex, exported);
    assert.equal(on.status, 200, await on.clone().text());
    const zones = await api<Array<{ name: string; radius: number }>>('GET', '/api/zones');
    assert.deepEqual(
      zones.map((z) => [z.name, z.radius]),
      [
        ['Home', 100],
        ['Work', 150],
      ],
    );

    // A single region without a radius is ignored with its reason; nothing is made of it.
    const single = await post(alex, beacon);
    assert.equal(single.status, 200);
    assert.match(single.headers.get('x-triad-ignored') ?? '', /Car beacon.*no radius/);
    assert.equal((await api<unknown[]>('GET', '/api/zones')).length, 2);

    // A region that is wrong, not merely radius-less, still refuses the export, and makes nothing.
    const broken = await post(alex, { _type: 'waypoints', waypoints: [{ ...work, desc: 'Gym', rid: 'g1', lat: 123 }] });
    assert.equal(broken.status, 400);
    assert.equal((await api<unknown[]>('GET', '/api/zones')).length, 2);
  });

  it('does not take a fix at 0, 0 (where a phone without a fix puts itself) as the person leaving home', async () => {
    const alex = await addTracker('Alex');
    assert.equal((await post(alex, location(HOME))).status, 200);
    assert.equal(value(alex.person, 'presence.home'), true);

    await clock.advance(1000);
    const nowhere = await post(alex, location({ latitude: 0, longitude: 0 }, { acc: 5 }));
    assert.equal(nowhere.status, 200, 'the phone is not told to send it again');
    assert.match(nowhere.headers.get('x-triad-ignored') ?? '', /lat 0, lon 0/);
    await clock.advance(10 * 60_000);
    assert.equal(value(alex.person, 'presence.home'), true, 'still home after the leave delay');
    assert.equal(value(alex.person, 'location.latitude'), HOME.latitude);
    assert.equal(value(alex.username, 'location.latitude'), HOME.latitude, "the phone's own position stays too");

    // The next real fix is taken as usual.
    assert.equal((await post(alex, location(FAR))).headers.get('x-triad-ignored'), null);
    await clock.advance(61_000);
    assert.equal(value(alex.person, 'presence.home'), false);
  });

  it('tells a sender whose tst is in milliseconds so, and moves no one', async () => {
    const alex = await addTracker('Alex');
    assert.equal((await post(alex, location(HOME))).status, 200);
    await clock.advance(1000);
    for (const body of [
      location(FAR, { tst: clock.now() }),
      { _type: 'transition', event: 'leave', desc: 'Home', lat: FAR.latitude, lon: FAR.longitude, tst: clock.now() },
    ]) {
      const res = await post(alex, body);
      assert.equal(res.status, 400, `${body._type}: ${await res.clone().text()}`);
      const { error } = (await res.json()) as { error: { code: string; message: string } };
      assert.equal(error.code, 'invalid_owntracks');
      assert.match(error.message, /milliseconds/);
    }
    await clock.advance(10 * 60_000);
    assert.equal(value(alex.person, 'presence.home'), true);
    assert.equal(value(alex.person, 'location.latitude'), HOME.latitude);
  });

  it("ignores a phone's late transition older than a fresher fix from the person's other tracker", async () => {
    const alex = await addTracker('Alex');
    const watch = await api<Phone>('POST', `/api/people/${alex.person}/trackers`, { name: 'watch' }, 201);
    assert.equal((await post(watch, location(HOME))).status, 200);
    assert.equal(value(alex.person, 'presence.home'), true);

    // The watch, reporting as it goes, takes Alex away from home.
    await clock.advance(100_000);
    assert.equal((await post(watch, location(FAR))).headers.get('x-triad-ignored'), null);
    await clock.advance(61_000);
    assert.equal(value(alex.person, 'presence.home'), false);

    // The phone's "enter Home", fired two minutes ago while Alex passed by, comes in only now:
    // the watch has said since where Alex is.
    const late = {
      _type: 'transition',
      event: 'enter',
      desc: 'Home',
      lat: HOME.latitude,
      lon: HOME.longitude,
      acc: 10,
      tst: tst(120),
      t: 'c',
    };
    const res = await post(alex, late);
    assert.equal(res.status, 200);
    assert.ok(res.headers.get('x-triad-ignored'), 'says why it was not taken');
    await clock.advance(10 * 60_000);
    assert.equal(value(alex.person, 'presence.home'), false, 'not home on older evidence');
    assert.equal(value('household', 'presence.anyone_home'), false);
  });

  it('refuses a zone named Home, which would never make anyone home, and says where home is set', async () => {
    for (const name of ['Home', ' home ', 'HOME']) {
      const res = await ownerFetch(hub, '/api/zones', 'POST', { name, ...HOME, radius: 150 });
      assert.equal(res.status, 400, `${JSON.stringify(name)}: ${await res.clone().text()}`);
      const { error } = (await res.json()) as { error: { message: string } };
      assert.match(error.message, /PUT \/api\/household/);
    }
    const zones = await api<Array<{ id: string; source: string }>>('GET', '/api/zones');
    assert.deepEqual(
      zones.map((z) => [z.id, z.source]),
      [['home', 'household']],
    );
    // Another name is a zone as before.
    await api('POST', '/api/zones', { name: 'Home office', ...FAR, radius: 50 }, 201);
  });

  it('does not call a new person away on a first fix that puts them at home, so the household is not emptied', async () => {
    await api('PUT', '/api/household', { arriveDelay: 60 });
    const sam = await addTracker('Sam');
    await post(sam, location(FAR));
    assert.equal(value('household', 'presence.everyone_away'), true, 'Sam, the only one, is out');

    // Kim's first fix is at the edge of home, vague enough that it says neither in nor out.
    const kim = await addTracker('Kim');
    await post(kim, location(offsetPoint(HOME, 90, 0), { acc: 40 }));
    assert.equal(value('household', 'presence.everyone_away'), false, 'Kim is not known to be away');
    assert.notEqual(value(kim.person, 'presence.home'), false);

    // Alex's first fix is at home: arriving waits the arrive delay, and meanwhile Alex is not "away".
    const alex = await addTracker('Alex');
    await clock.advance(1000);
    await post(alex, location(HOME));
    await clock.advance(30_000);
    assert.equal(value('household', 'presence.everyone_away'), false, 'the house was not emptied');
    assert.notEqual(value(alex.person, 'presence.home'), false);
    await clock.advance(31_000);
    assert.equal(value(alex.person, 'presence.home'), true);
    assert.equal(value('household', 'presence.anyone_home'), true);

    // A first fix clearly out still settles "away", as before.
    const lee = await addTracker('Lee');
    await post(lee, location(FAR));
    assert.equal(value(lee.person, 'presence.home'), false);
  });
});
