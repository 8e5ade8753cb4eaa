import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import mqtt, { type MqttClient } from 'mqtt';
import { VirtualClock } from '../src/core/clock.ts';
import type { Hub } from '../src/core/hub.ts';
import { offsetPoint } from '../src/people/geo.ts';
import { eventually, tempDir } from './helpers/hub-process.ts';
import type { Phone, Place } from './helpers/owntracks.ts';
import { addPersonWithPhone, ownerCall, postOwnTracks } from './helpers/owntracks-app.ts';
import { peopleHub } from './helpers/people-hub.ts';

/**
 * What a hostile reviewer reproduced against people and presence: late transitions, vague
 * transitions, a device name that keeps changing, and a tracker shared by two phones. Real hub,
 * its embedded broker, real HTTP on 127.0.0.1 and real MQTT clients.
 */

const HOME = { latitude: 52.3731, longitude: 4.8922 };
const FAR = offsetPoint(HOME, 2_000, 90);

describe('people and presence, as a hostile reviewer found them', () => {
  let hub: Hub;
  let clock: VirtualClock;
  let dataDir: string;
  const clients: MqttClient[] = [];

  const api = <T>(method: string, path: string, body?: unknown, status = 200) =>
    ownerCall<T>(hub, method, path, body, status);
  const addTracker = (name: string) => addPersonWithPhone(hub, name);
  const home = (person: string) => hub.core.getValue(hub.householdId, person, 'presence.home');
  /** Seconds before now, as the app's `tst`. */
  const tst = (secondsAgo: number) => Math.floor(clock.now() / 1000) - secondsAgo;
  const transition = (event: 'enter' | 'leave', secondsAgo: number, acc = 10) => ({
    _type: 'transition',
    event,
    desc: 'Home',
    lat: HOME.latitude,
    lon: HOME.longitude,
    acc,
    tst: tst(secondsAgo),
    wtst: tst(86_400),
    t: 'c',
  });
  const location = (place: Place, secondsAgo: number, acc = 10) => ({
    _type: 'location',
    lat: place.latitude,
    lon: place.longitude,
    acc,
    tst: tst(secondsAgo),
  });
  /** Any OwnTracks message as the app posts it in HTTP mode. */
  const post = (phone: Phone, body: unknown, device = 'pixel') => postOwnTracks(hub, phone, body, device);
  /** Posts and answers what the hub said it ignored (null when it took the message). */
  const ignored = async (phone: Phone, body: unknown, device?: string) => {
    const res = await post(phone, body, device);
    assert.equal(res.status, 200, await res.clone().text());
    return res.headers.get('x-triad-ignored');
  };
  const login = async (phone: Phone) => {
    const client = await mqtt.connectAsync(hub.mqttUrl, {
      username: phone.username,
      password: phone.password,
      reconnectPeriod: 0,
    });
    clients.push(client);
    return client;
  };
  const storedUpdates = async (thing: string) => {
    await hub.history.flush();
    const events = await hub.store.listEvents({
      householdId: hub.householdId,
      thing,
      types: ['thing.updated'],
      limit: 10_000,
    });
    return events.length;
  };

  beforeEach(async () => {
    clock = new VirtualClock(Date.UTC(2026, 2, 2, 7, 0));
    dataDir = await tempDir('triad-people-hostile-');
    hub = peopleHub({ dataDir, clock });
    await hub.start();
    await api('PUT', '/api/household', { ...HOME, homeRadius: 100, arriveDelay: 0, leaveDelay: 0, accuracyLimit: 500 });
  });

  afterEach(async () => {
    for (const client of clients.splice(0)) await client.endAsync(true).catch(() => undefined);
    await hub?.stop();
  });

  it('ignores a transition older than one already taken, as an older location is', async () => {
    const alex = await addTracker('Alex');
    assert.equal(await ignored(alex, location(HOME, 100)), null);
    assert.equal(home(alex.person), true);
    assert.equal(await ignored(alex, transition('leave', 10)), null);
    assert.equal(home(alex.person), false);

    // Delivered late: the phone entered home before it left.
    const reason = await ignored(alex, transition('enter', 50));
    assert.match(reason ?? '', /replay/);
    assert.equal(home(alex.person), false, 'an older enter must not bring Alex home again');
    // Nor does a location taken before the leave.
    assert.match((await ignored(alex, location(HOME, 30))) ?? '', /replay/);
    assert.equal(home(alex.person), false);

    // The app sends a transition with the tst of the location that fired it: still taken.
    assert.equal(await ignored(alex, location(HOME, 5)), null);
    assert.equal(await ignored(alex, transition('enter', 5)), null);
    assert.equal(home(alex.person), true);
  });

  it("ignores a transition less accurate than the household's accuracy limit", async () => {
    const alex = await addTracker('Alex');
    assert.equal(await ignored(alex, location(FAR, 100)), null);
    assert.equal(home(alex.person), false);
    // A location this vague moves no one...
    assert.equal(await ignored(alex, location(HOME, 80, 5000)), null);
    assert.equal(home(alex.person), false);
    // ...and neither does a transition.
    assert.match((await ignored(alex, transition('enter', 60, 5000))) ?? '', /accuracy 5000 m/);
    assert.equal(home(alex.person), false);
    // One within the limit does.
    assert.equal(await ignored(alex, transition('enter', 50, 20)), null);
    assert.equal(home(alex.person), true);
  });

  it('stores nothing for refused messages, and a device name once however often it changes', async () => {
    const alex = await addTracker('Alex');
    const sam = await addTracker('Sam');
    const phone = await login(alex);
    await phone.publishAsync(`owntracks/${alex.username}/d0`, JSON.stringify(location(FAR, 0)), { qos: 1 });
    await eventually(() => home(alex.person) === false, { what: "Alex's first fix" });
    // Its device name is noted once the fix is taken, a moment after presence moved: counted
    // before that, the note looked like a change a refused message made.
    await eventually(
      () => (hub.core.getThing(hub.householdId, alex.username)?.meta?.devices as string[] | undefined)?.includes('d0'),
      { what: "Alex's device noted" },
    );
    const before = await storedUpdates(alex.username);

    // Stale fixes, alternating the device level of the topic.
    for (let i = 0; i < 400; i++) {
      const topic = `owntracks/${alex.username}/d${i % 2}`;
      phone.publish(topic, JSON.stringify(location(HOME, 3600)), { qos: 0 });
    }
    // Nor over HTTP, nor for a malformed message.
    assert.match((await ignored(alex, location(HOME, 3600), 'd2')) ?? '', /replay/);
    await phone.publishAsync(`owntracks/${alex.username}/d3`, '{"_type":"location"}', { qos: 1 });
    // Sam's fix goes behind Alex's messages in the same queue: once it is taken, all of them were.
    const samPhone = await login(sam);
    await samPhone.publishAsync(`owntracks/${sam.username}/s0`, JSON.stringify(location(HOME, 0)), { qos: 1 });
    await eventually(() => home(sam.person) === true, { what: "Sam's fix after Alex's stale ones" });
    assert.equal(await storedUpdates(alex.username), before, 'refused messages changed the tracker');
    assert.equal(home(alex.person), false);

    // Fresh fixes taking turns between two device names: the second name is stored once.
    for (let i = 0; i < 40; i++) {
      await clock.advance(1000);
      await phone.publishAsync(`owntracks/${alex.username}/d${i % 2}`, JSON.stringify(location(FAR, 0)), { qos: 1 });
    }
    await clock.advance(1000);
    await samPhone.publishAsync(`owntracks/${sam.username}/s0`, JSON.stringify(location(FAR, 0)), { qos: 1 });
    await eventually(() => home(sam.person) === false, { what: "Sam's fix after Alex's fresh ones" });
    assert.equal(await storedUpdates(alex.username), before + 1);
  });

  it("clears every phone's retained location when a tracker two phones share is removed", async () => {
    const alex = await addTracker('Alex');
    const kim = await addTracker('Kim');
    const phoneA = await login(alex);
    const phoneB = await login(alex);
    const topic = (device: string) => `owntracks/${alex.username}/${device}`;
    const retain = { retain: true, qos: 1 } as const;
    await phoneB.publishAsync(topic('phoneB'), JSON.stringify(location(HOME, 10)), retain);
    await phoneB.publishAsync(`${topic('phoneB')}/info`, JSON.stringify({ _type: 'card', name: 'Alex' }), retain);
    // phoneA's fix is older than phoneB's: ignored by the hub, but retained on the broker all the same.
    await phoneA.publishAsync(topic('phoneA'), JSON.stringify(location(FAR, 60)), retain);
    await eventually(() => home(alex.person) === true, { what: 'Alex home over MQTT' });

    // What a friend's phone is handed when it subscribes, once the hub has restarted (it knows of
    // the topics only from what the broker hands it again).
    const retainedOfAlex = async () => {
      const friend = await login(kim);
      const handed: Array<{ topic: string; payload: string }> = [];
      friend.on('message', (t, payload) => handed.push({ topic: t, payload: payload.toString() }));
      await friend.subscribeAsync('owntracks/#', { qos: 1 });
      const own = `owntracks/${kim.username}/pixel`;
      await friend.publishAsync(own, JSON.stringify(location(FAR, 0)), { qos: 1 });
      await eventually(() => handed.some((m) => m.topic === own), { what: "Kim's own message" });
      await friend.endAsync();
      return handed.filter((m) => m.topic.startsWith(`owntracks/${alex.username}/`) && m.payload !== '');
    };
    assert.deepEqual((await retainedOfAlex()).map((m) => m.topic).sort(), [
      topic('phoneA'),
      topic('phoneB'),
      `${topic('phoneB')}/info`,
    ]);

    for (const client of clients.splice(0)) await client.endAsync(true);
    await hub.stop();
    hub = peopleHub({ dataDir, clock });
    await hub.start();
    // The broker hands the hub its retained messages again as it subscribes; a message sent after
    // that comes in behind them, so once it is taken, they were.
    await clock.advance(1000);
    const kimPhone = await login(kim);
    await kimPhone.publishAsync(`owntracks/${kim.username}/pixel`, JSON.stringify(location(HOME, 0)), { qos: 1 });
    await eventually(() => home(kim.person) === true, { what: "Kim's fix after the restart" });
    assert.equal(home(alex.person), true);

    await api('DELETE', `/api/people/${alex.person}/trackers/${alex.username}`, undefined, 204);
    await eventually(async () => (await retainedOfAlex()).length === 0, {
      what: "no retained message of Alex's phones",
    });
  });
});
