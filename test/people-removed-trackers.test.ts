import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { VirtualClock } from '../src/core/clock.ts';
import type { Hub } from '../src/core/hub.ts';
import { offsetPoint } from '../src/people/geo.ts';
import { tempDir } from './helpers/hub-process.ts';
import type { Phone, Place } from './helpers/owntracks.ts';
import { addPersonWithPhone, ownerCall, postOwnTracks, type Tracker } from './helpers/owntracks-app.ts';
import { type SeenEvent, startRecordingPeopleHub } from './helpers/people-hub.ts';

/**
 * What a removed tracker leaves behind, now and after a restart: a person left without trackers
 * stays offline, a person whose trackers went stale stays offline, and a removed phone's pending
 * arrival or departure never happens. Real hub on real SQLite, restarted on the same data folder;
 * phones post over real HTTP as the OwnTracks app does; delays run on a virtual clock.
 */

const HOME = { latitude: 52.3731, longitude: 4.8922 };
const FAR = offsetPoint(HOME, 2_000, 90);
const HOUR = 3_600_000;

describe('people after their trackers are removed', () => {
  let hub: Hub;
  let clock: VirtualClock;
  let dataDir: string;
  let events: SeenEvent[];

  const start = async () => {
    ({ hub, events } = await startRecordingPeopleHub({ dataDir, clock }));
  };
  const restart = async () => {
    await hub.stop();
    await start();
  };
  const value = (thing: string, property: string) => hub.core.getValue(hub.householdId, thing, property);
  const online = (thing: string) => hub.twins.get(hub.householdId, thing)?.online;
  const presenceEvents = (person: string) =>
    events.filter((e) => e.type.startsWith('presence.') && e.thing === person).map((e) => e.type);
  const report = async (phone: Phone, place: Place) => {
    const res = await postOwnTracks(hub, phone, {
      _type: 'location',
      lat: place.latitude,
      lon: place.longitude,
      acc: 10,
      tst: Math.floor(clock.now() / 1000),
    });
    assert.equal(res.status, 200, await res.clone().text());
    assert.equal(res.headers.get('x-triad-ignored'), null);
  };
  const removeTracker = (tracker: Tracker) =>
    ownerCall(hub, 'DELETE', `/api/people/${tracker.person}/trackers/${tracker.username}`, undefined, 204);
  const addWatch = async (person: string): Promise<Tracker> => {
    const watch = await ownerCall<Phone>(hub, 'POST', `/api/people/${person}/trackers`, { name: 'watch' }, 201);
    return { person, username: watch.username, password: watch.password };
  };

  beforeEach(async () => {
    clock = new VirtualClock(Date.UTC(2026, 2, 2, 7, 0));
    dataDir = await tempDir('triad-people-removed-trackers-');
    await start();
    await ownerCall(hub, 'PUT', '/api/household', {
      ...HOME,
      homeRadius: 100,
      arriveDelay: 60,
      leaveDelay: 60,
      staleAfter: 3600,
    });
  });

  afterEach(async () => {
    await hub?.stop();
  });

  it('shows a person whose last tracker was removed offline after a restart, still not counted for the household', async () => {
    const alex = await addPersonWithPhone(hub, 'Alex');
    const sam = await addPersonWithPhone(hub, 'Sam');
    await report(alex, HOME);
    await report(sam, FAR);
    await clock.advance(61_000);
    assert.equal(value(alex.person, 'presence.home'), true);
    await removeTracker(alex);
    assert.equal(online(alex.person), false);

    await restart();
    assert.equal(online(alex.person), false, 'offline at once: no tracker is left to say otherwise');
    assert.equal(value('household', 'presence.anyone_home'), false, "Alex's last presence is no evidence");
    assert.equal(value('household', 'presence.everyone_away'), true, 'Sam, the one person tracked, is away');
    assert.equal(online(sam.person), null, 'Sam, whose phone is fresh, is as unknown as before the restart');
  });

  it('shows a person offline after a restart when their trackers went stale, before it or while the hub was down', async () => {
    const alex = await addPersonWithPhone(hub, 'Alex');
    const sam = await addPersonWithPhone(hub, 'Sam');
    await report(alex, HOME);
    await report(sam, HOME);
    await clock.advance(HOUR / 2);
    await report(sam, HOME);
    await clock.advance(HOUR / 2 + 1000);
    assert.equal(online(alex.person), false, "Alex's phone went stale before the restart");
    assert.equal(online(sam.person), null);

    await restart();
    assert.equal(online(alex.person), false, 'stale before the restart, offline after it');
    assert.equal(online(alex.username), false);
    assert.equal(online(sam.person), null, 'fresh before the restart, unchanged after it');

    // Sam's phone goes stale while the hub is down: offline as soon as it is back.
    await hub.stop();
    await clock.advance(HOUR);
    await start();
    assert.equal(online(sam.person), false);
    assert.equal(online(sam.username), false);
    assert.equal(value(sam.person, 'presence.home'), true, 'silence is not absence');
  });

  it("cancels a removed phone's pending arrival: no presence.arrived for it later", async () => {
    const alex = await addPersonWithPhone(hub, 'Alex');
    await report(alex, FAR);
    await clock.advance(61_000);
    assert.equal(value(alex.person, 'presence.home'), false);
    await clock.advance(10_000);
    await report(alex, HOME);
    await removeTracker(alex);
    events.length = 0;
    await clock.advance(120_000);
    assert.deepEqual(presenceEvents(alex.person), []);
    assert.equal(value(alex.person, 'presence.home'), false);
  });

  it("cancels a removed phone's pending departure, also after a restart restored it", async () => {
    const alex = await addPersonWithPhone(hub, 'Alex');
    await report(alex, HOME);
    await clock.advance(61_000);
    assert.equal(value(alex.person, 'presence.home'), true);
    await clock.advance(10_000);
    await report(alex, FAR);

    // The departure is stored and re-armed by the restart, then its phone is removed.
    await restart();
    await removeTracker(alex);
    events.length = 0;
    await clock.advance(120_000);
    assert.deepEqual(presenceEvents(alex.person), []);
    assert.equal(value(alex.person, 'presence.home'), true, 'their own presence stays as last decided');

    // Nor does a later start bring it back.
    await restart();
    await clock.advance(120_000);
    assert.deepEqual(presenceEvents(alex.person), []);
  });

  it("keeps an arrival another of the person's trackers also reported, and drops the removed phone's alone", async () => {
    const alex = await addPersonWithPhone(hub, 'Alex');
    const watch = await addWatch(alex.person);
    await report(alex, FAR);
    await clock.advance(61_000);
    assert.equal(value(alex.person, 'presence.home'), false);

    // Phone and watch both say home: the watch's word still stands once the phone is removed.
    await clock.advance(10_000);
    await report(alex, HOME);
    await clock.advance(1_000);
    await report(watch, HOME);
    await removeTracker(alex);
    events.length = 0;
    await clock.advance(60_000);
    assert.deepEqual(presenceEvents(alex.person), ['presence.arrived', 'presence.first_arrived']);
    assert.equal(value(alex.person, 'presence.home'), true);
  });

  it('remembers across a restart which trackers a pending departure rests on', async () => {
    const alex = await addPersonWithPhone(hub, 'Alex');
    const watch = await addWatch(alex.person);
    await report(alex, HOME);
    await clock.advance(61_000);
    assert.equal(value(alex.person, 'presence.home'), true);
    await clock.advance(10_000);
    await report(alex, FAR);
    await clock.advance(1_000);
    await report(watch, FAR);

    await restart();
    await removeTracker(alex);
    events.length = 0;
    await clock.advance(60_000);
    assert.deepEqual(presenceEvents(alex.person), ['presence.left', 'presence.last_left'], 'the watch said so too');
    assert.equal(value(alex.person, 'presence.home'), false);
  });

  it("drops a pending departure only the removed phone reported, while the person's watch stays", async () => {
    const alex = await addPersonWithPhone(hub, 'Alex');
    const watch = await addWatch(alex.person);
    await report(watch, HOME);
    await clock.advance(61_000);
    assert.equal(value(alex.person, 'presence.home'), true);
    await clock.advance(10_000);
    await report(alex, FAR);
    await removeTracker(alex);
    events.length = 0;
    await clock.advance(120_000);
    assert.deepEqual(presenceEvents(alex.person), []);
    assert.equal(value(alex.person, 'presence.home'), true);
    assert.equal(value('household', 'presence.anyone_home'), true, 'Alex, tracked by the watch, is home');
  });
});
