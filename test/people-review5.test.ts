import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import mqtt from 'mqtt';
import type { VirtualClock } from '../src/core/clock.ts';
import type { Hub } from '../src/core/hub.ts';
import { offsetPoint } from '../src/people/geo.ts';
import { eventually } from './helpers/hub-process.ts';
import type { Phone, Place } from './helpers/owntracks.ts';
import { addPersonWithPhone, ownerCall, postOwnTracks } from './helpers/owntracks-app.ts';
import { startedPeopleHub } from './helpers/people-hub.ts';

/**
 * A fifth review of people and presence: a phone's clock running ahead, a last will delivered
 * after the phone came back, and a person left without any tracker. Real hub, real HTTP and MQTT
 * (the embedded broker) on 127.0.0.1, real SQLite, delays on a virtual clock.
 */

const HOME = { latitude: 52.3731, longitude: 4.8922 };
const FAR = offsetPoint(HOME, 2_000, 90);

describe('people and presence, a fifth review', () => {
  let hub: Hub;
  let clock: VirtualClock;

  const value = (thing: string, property: string) => hub.core.getValue(hub.householdId, thing, property);
  const online = (thing: string) => hub.twins.get(hub.householdId, thing)?.online;
  /** The app's `tst` (whole seconds) `secondsAhead` of the hub's clock. */
  const tst = (secondsAhead = 0) => Math.floor(clock.now() / 1000) + secondsAhead;
  const location = (place: Place, at = tst()) => ({
    _type: 'location',
    lat: place.latitude,
    lon: place.longitude,
    acc: 10,
    tst: at,
  });
  const post = (phone: Phone, body: unknown) => postOwnTracks(hub, phone, body);

  beforeEach(async () => {
    ({ hub, clock } = await startedPeopleHub('triad-people-review5-', HOME, {
      homeRadius: 100,
      arriveDelay: 0,
      leaveDelay: 60,
    }));
  });

  afterEach(async () => {
    await hub?.stop();
  });

  it('takes the fixes after one stamped minutes ahead (a phone clock NTP then corrected), and still refuses replays', async () => {
    const alex = await addPersonWithPhone(hub, 'Alex');
    assert.equal((await post(alex, location(HOME))).headers.get('x-triad-ignored'), null);
    assert.equal(value(alex.person, 'presence.home'), true);

    // The phone's clock runs 4 minutes fast: the hub believes the fix, and takes it when it came.
    await clock.advance(10_000);
    const ahead = location(HOME, tst(240));
    assert.equal((await post(alex, ahead)).headers.get('x-triad-ignored'), null);

    // NTP corrects the clock: the next fix, stamped right, is taken and moves Alex.
    await clock.advance(10_000);
    const corrected = await post(alex, location(FAR));
    assert.equal(corrected.status, 200);
    assert.equal(corrected.headers.get('x-triad-ignored'), null, 'a correctly timed fix is no replay');
    assert.equal(value(alex.person, 'location.latitude'), FAR.latitude);
    assert.equal(value(alex.username, 'location.longitude'), FAR.longitude);
    await clock.advance(61_000);
    assert.equal(value(alex.person, 'presence.home'), false, 'the leave is taken after the leave delay');

    // The fix stamped ahead, sent again, is still a replay, and so is one older than the last taken.
    await clock.advance(1_000);
    const again = await post(alex, ahead);
    assert.match(again.headers.get('x-triad-ignored') ?? '', /replay/);
    const older = await post(alex, location(HOME, tst(-70)));
    assert.match(older.headers.get('x-triad-ignored') ?? '', /replay/);
    assert.equal(value(alex.person, 'location.latitude'), FAR.latitude, 'no replay moved Alex back home');
    await clock.advance(61_000);
    assert.equal(value(alex.person, 'presence.home'), false);
  });

  it("ignores a last will from a connection the phone has since replaced, and still takes the current one's", async () => {
    const alex = await addPersonWithPhone(hub, 'Alex');
    const topic = `owntracks/${alex.username}/iphone`;
    const connect = (clientId: string) =>
      mqtt.connectAsync(hub.mqttUrl, {
        clientId,
        username: alex.username,
        password: alex.password,
        reconnectPeriod: 0,
        // The app's will: the time this connection was made.
        will: { topic, payload: Buffer.from(JSON.stringify({ _type: 'lwt', tst: tst() })), qos: 1, retain: false },
      });
    const first = await connect('owntracks-alex-1');
    await clock.advance(1_000);
    await first.publishAsync(topic, JSON.stringify(location(HOME)), { qos: 1 });
    await eventually(() => value(alex.person, 'presence.home') === true, { what: 'Alex home over MQTT' });
    assert.equal(online(alex.username), true);

    // The phone lost its network without the broker noticing, came back on a new connection and
    // sent a fresh fix; only then does the broker give up on the old connection.
    await clock.advance(60_000);
    const second = await connect('owntracks-alex-2');
    await second.subscribeAsync(topic, { qos: 1 });
    await clock.advance(1_000);
    await second.publishAsync(topic, JSON.stringify(location(HOME)), { qos: 1 });
    await eventually(() => value(alex.username, 'location.latitude') !== undefined && online(alex.username), {
      what: 'the fresh fix',
    });
    const willSeen = new Promise<void>((resolve) =>
      second.on('message', (_t, payload) => {
        if (payload.toString().includes('"lwt"')) resolve();
      }),
    );
    first.stream.destroy();
    await willSeen;
    // Something the hub handles after the will, in the order it came, to know the will was judged.
    await ownerCall(hub, 'PUT', '/api/household', { importWaypoints: true });
    const waypoint = { _type: 'waypoint', desc: 'Work', lat: FAR.latitude, lon: FAR.longitude, rad: 150, tst: tst() };
    await second.publishAsync(`${topic}/waypoint`, JSON.stringify(waypoint), { qos: 1 });
    await eventually(async () => (await ownerCall<Array<{ name: string }>>(hub, 'GET', '/api/zones')).length === 2, {
      what: 'the waypoint after the will',
    });
    assert.equal(online(alex.username), true, "the old connection's will leaves the phone online");

    // The connection the phone is on now drops: its will is the phone's, and takes it offline.
    second.stream.destroy();
    await eventually(() => online(alex.username) === false, { what: "the current connection's will" });
  });

  it('stops counting a person for the household once their last tracker is removed, and shows them offline', async () => {
    const alex = await addPersonWithPhone(hub, 'Alex');
    const sam = await addPersonWithPhone(hub, 'Sam');
    assert.equal((await post(alex, location(HOME))).status, 200);
    assert.equal((await post(sam, location(FAR))).status, 200);
    assert.equal(value('household', 'presence.anyone_home'), true);
    assert.equal(value('household', 'presence.everyone_away'), false);

    // Alex's only phone is removed: nothing can say where Alex is any more.
    await ownerCall(hub, 'DELETE', `/api/people/${alex.person}/trackers/${alex.username}`, undefined, 204);
    assert.equal(value('household', 'presence.anyone_home'), false, 'no one known to be home');
    assert.equal(value('household', 'presence.everyone_away'), true, 'Sam, the one person tracked, is away');
    assert.equal(online(alex.person), false, 'Alex is offline, as a person whose trackers all went stale');
    const people = await ownerCall<Array<{ id: string; presence: { lastReport: number | null } }>>(
      hub,
      'GET',
      '/api/people',
    );
    assert.equal(people.find((p) => p.id === alex.person)?.presence.lastReport, null);

    // A new phone for Alex counts again once it reports.
    const phone = await ownerCall<Phone>(hub, 'POST', `/api/people/${alex.person}/trackers`, { name: 'new' }, 201);
    await clock.advance(1_000);
    assert.equal((await post(phone, location(HOME))).status, 200);
    assert.equal(value('household', 'presence.anyone_home'), true);
    assert.equal(value('household', 'presence.everyone_away'), false);
    assert.equal(online(alex.person), true);
  });
});
