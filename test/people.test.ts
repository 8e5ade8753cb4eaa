import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import fc from 'fast-check';
import mqtt from 'mqtt';
import { RetainedStore } from '../src/adapters/mqtt/retained-store.ts';
import { VirtualClock } from '../src/core/clock.ts';
import type { HubEvent } from '../src/core/events.ts';
import { Hub, type MqttOptions } from '../src/core/hub.ts';
import { createLogger, type Logger, type LogLine } from '../src/core/log.ts';
import { CredentialCheck, hashPassword, verifyPassword } from '../src/people/credentials.ts';
import { offsetPoint } from '../src/people/geo.ts';
import { PeopleService, type PeopleServiceOptions, parseOwnTracks } from '../src/people/index.ts';
import type { PresenceTracker } from '../src/people/presence.ts';
import { eventually, tempDir } from './helpers/hub-process.ts';
import { needService, services } from './helpers/services.ts';

/**
 * People and presence end to end on an in-process hub: real OwnTracks JSON over real HTTP (Basic
 * auth, the app's headers) and real MQTT (mqtt.js on the embedded broker), with delays on a
 * virtual clock.
 */

const HOME = { latitude: 52.3731, longitude: 4.8922 };
const FAR = offsetPoint(HOME, 2_000, 90);

interface Phone {
  person: string;
  username: string;
  password: string;
}

class Household {
  hub!: Hub;
  people!: PeopleService;
  readonly events: HubEvent[] = [];

  constructor(
    readonly clock: VirtualClock,
    readonly dataDir: string,
    /** The hub's log (silent by default), an external broker instead of the embedded one, people's options. */
    readonly setup: { log?: Logger; mqtt?: MqttOptions; people?: PeopleServiceOptions } = {},
  ) {}

  async start(): Promise<void> {
    this.people = new PeopleService(this.setup.people);
    this.hub = new Hub({
      dataDir: this.dataDir,
      http: { port: 0, host: '127.0.0.1' },
      mqtt: this.setup.mqtt ?? { port: 0, host: '127.0.0.1' },
      clock: this.clock,
      log: this.setup.log ?? createLogger({ level: 'silent' }),
    }).use(this.people);
    await this.hub.start();
    this.hub.bus.subscribe((event) => this.events.push(event));
  }

  api(path: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    headers.set('authorization', `Bearer ${this.hub.ownerToken}`);
    if (init.body !== undefined) headers.set('content-type', 'application/json');
    return fetch(this.hub.httpUrl + path, { ...init, headers });
  }

  async json<T>(path: string, init: RequestInit = {}, status = 200): Promise<T> {
    const res = await this.api(path, init);
    assert.equal(res.status, status, `${init.method ?? 'GET'} ${path}: ${res.status}`);
    return (await res.json()) as T;
  }

  async setHome(settings: Record<string, unknown>): Promise<void> {
    await this.json('/api/household', {
      method: 'PUT',
      body: JSON.stringify({ ...HOME, homeRadius: 100, ...settings }),
    });
  }

  async addPhone(name: string): Promise<Phone> {
    const person = await this.json<{ id: string }>(
      '/api/people',
      { method: 'POST', body: JSON.stringify({ name }) },
      201,
    );
    const tracker = await this.json<{ username: string; password: string }>(
      `/api/people/${person.id}/trackers`,
      { method: 'POST', body: JSON.stringify({ name: 'phone' }) },
      201,
    );
    return { person: person.id, username: tracker.username, password: tracker.password };
  }

  /** Posts as the OwnTracks app does in HTTP mode: Basic auth, X-Limit-U / X-Limit-D, JSON. */
  owntracks(phone: Phone, body: unknown, options: { password?: string; raw?: string } = {}): Promise<Response> {
    const auth = Buffer.from(`${phone.username}:${options.password ?? phone.password}`).toString('base64');
    return fetch(`${this.hub.httpUrl}/api/owntracks`, {
      method: 'POST',
      headers: {
        authorization: `Basic ${auth}`,
        'content-type': 'application/json',
        'x-limit-u': phone.username,
        'x-limit-d': 'pixel',
      },
      body: options.raw ?? JSON.stringify(body),
    });
  }

  /** A location message as the Android app writes it. */
  fix(point: { latitude: number; longitude: number }, extra: Record<string, unknown> = {}): Record<string, unknown> {
    return {
      _type: 'location',
      lat: point.latitude,
      lon: point.longitude,
      acc: 12,
      alt: 3,
      batt: 81,
      bs: 1,
      conn: 'w',
      tid: 'ph',
      tst: Math.floor(this.clock.now() / 1000),
      vel: 0,
      cog: 0,
      t: 'u',
      ...extra,
    };
  }

  async report(phone: Phone, point: { latitude: number; longitude: number }, extra: Record<string, unknown> = {}) {
    // Each fix one second after the last, as a phone reporting in real time would.
    await this.clock.advance(1000);
    const res = await this.owntracks(phone, this.fix(point, extra));
    assert.equal(res.status, 200, await res.clone().text());
    assert.equal(res.headers.get('x-triad-ignored'), null, `ignored: ${res.headers.get('x-triad-ignored')}`);
    return (await res.json()) as Array<Record<string, unknown>>;
  }

  value(thing: string, property: string): unknown {
    return this.hub.core.getValue(this.hub.householdId, thing, property);
  }

  changes(thing: string, property: string): unknown[] {
    return this.events
      .filter((e) => e.type === 'state' && e.thing === thing && e.property === property)
      .map((e) => (e.type === 'state' ? e.to : null));
  }

  async stop(): Promise<void> {
    await this.hub?.stop();
  }
}

describe('people and presence', () => {
  let home: Household;

  beforeEach(async () => {
    home = new Household(new VirtualClock(Date.UTC(2026, 2, 2, 7, 0)), await tempDir('triad-people-'));
    await home.start();
  });

  afterEach(async () => {
    await home.stop();
  });

  it('moves a person on an HTTP-mode location and answers with the other members', async () => {
    await home.setHome({ leaveDelay: 300 });
    const alex = await home.addPhone('Alex Smith');
    const sam = await home.addPhone('Sam');
    await home.report(sam, HOME);

    const work = offsetPoint(HOME, 800, 45);
    const friends = await home.report(alex, work, { acc: 15, vel: 4 });

    assert.ok(Math.abs((home.value(alex.person, 'location.latitude') as number) - work.latitude) < 1e-9);
    assert.equal(home.value(alex.person, 'location.accuracy'), 15);
    assert.equal(home.value(alex.username, 'battery.level'), 81);
    const samLocation = friends.find((m) => m._type === 'location');
    assert.ok(samLocation, 'the reply carries Sam');
    assert.equal(samLocation.lat, HOME.latitude);
    assert.equal(samLocation.lon, HOME.longitude);
    assert.equal(samLocation.tid, 'SA');
    assert.equal(typeof samLocation.tst, 'number');
    assert.equal(samLocation.topic, `owntracks/${sam.person}/triad`);
    assert.ok(friends.some((m) => m._type === 'card' && m.name === 'Sam'));
    assert.ok(!friends.some((m) => m.topic === `owntracks/${alex.person}/triad`), 'not yourself');

    const listed =
      await home.json<Array<{ id: string; trackers: Array<{ device: string; username: string }> }>>('/api/people');
    assert.equal(listed.find((p) => p.id === alex.person)?.trackers[0].device, 'pixel');
    assert.ok(!JSON.stringify(listed).includes('scrypt'), 'no password hash leaves the hub');
  });

  it('flips a person to away only after the leave delay, and the last one out makes everyone away', async () => {
    await home.setHome({ arriveDelay: 0, leaveDelay: 300 });
    const alex = await home.addPhone('Alex');
    const sam = await home.addPhone('Sam');
    await home.report(alex, HOME);
    await home.report(sam, HOME);
    assert.equal(home.value(alex.person, 'presence.home'), true);
    assert.equal(home.value('household', 'presence.anyone_home'), true);

    await home.report(alex, FAR);
    await home.clock.advance(290_000);
    assert.equal(home.value(alex.person, 'presence.home'), true, 'still home inside the leave delay');
    await home.clock.advance(15_000);
    assert.equal(home.value(alex.person, 'presence.home'), false);
    assert.equal(home.value(alex.person, 'presence.zone'), null);
    assert.equal(home.value('household', 'presence.everyone_away'), false, 'Sam is still home');

    await home.report(sam, FAR);
    await home.clock.advance(301_000);
    assert.equal(home.value(sam.person, 'presence.home'), false);
    assert.equal(home.value('household', 'presence.everyone_away'), true);
    assert.equal(home.value('household', 'presence.anyone_home'), false);

    // What an automation sees: state changes on the bus, and the household-level moments.
    assert.deepEqual(home.changes(alex.person, 'presence.home'), [true, false]);
    assert.deepEqual(home.changes('household', 'presence.everyone_away').at(-1), true);
    const lastLeft = home.events.filter((e) => e.type === 'presence.last_left');
    assert.equal(lastLeft.length, 1);
    assert.equal(thingOf(lastLeft[0]), sam.person);
    const household = await home.json<{ presence: { everyoneAway: boolean } }>('/api/household');
    assert.equal(household.presence.everyoneAway, true);

    await home.report(alex, HOME);
    const firstArrived = home.events.filter((e) => e.type === 'presence.first_arrived');
    assert.equal(thingOf(firstArrived.at(-1)), alex.person);
    assert.equal(home.value('household', 'presence.anyone_home'), true);
  });

  it('does not flap for a fix jittering at the edge of the zone', async () => {
    await home.setHome({ arriveDelay: 0, leaveDelay: 30 });
    const alex = await home.addPhone('Alex');
    await home.report(alex, HOME);
    const before = home.changes(alex.person, 'presence.home').length;
    for (let i = 0; i < 30; i++) {
      // Either side of the 100 m radius, with the accuracy a phone indoors reports.
      const distance = i % 2 === 0 ? 92 : 112;
      await home.report(alex, offsetPoint(HOME, distance, (i * 37) % 360), { acc: 25 });
      await home.clock.advance(45_000);
    }
    assert.equal(home.value(alex.person, 'presence.home'), true);
    assert.equal(home.changes(alex.person, 'presence.home').length, before, 'no presence change at all');

    // Clearly outside, even allowing for accuracy: now the leave counts.
    await home.report(alex, offsetPoint(HOME, 400, 0), { acc: 25 });
    await home.clock.advance(31_000);
    assert.equal(home.value(alex.person, 'presence.home'), false);
  });

  it('uses the arrive delay for arriving and the leave delay for leaving', async () => {
    await home.setHome({ arriveDelay: 60, leaveDelay: 600 });
    const alex = await home.addPhone('Alex');
    await home.report(alex, FAR);
    assert.equal(home.value(alex.person, 'presence.home'), false);

    await home.report(alex, HOME);
    await home.clock.advance(58_000);
    assert.equal(home.value(alex.person, 'presence.home'), false, 'not arrived before 60 s');
    await home.clock.advance(3_000);
    assert.equal(home.value(alex.person, 'presence.home'), true);

    await home.report(alex, FAR);
    await home.clock.advance(61_000);
    assert.equal(home.value(alex.person, 'presence.home'), true, 'leaving waits the longer leave delay');
    await home.report(alex, HOME);
    await home.clock.advance(600_000);
    assert.equal(home.value(alex.person, 'presence.home'), true, 'coming back cancelled the leave');

    const zone = await home.json<{ id: string }>(
      '/api/zones',
      { method: 'POST', body: JSON.stringify({ name: 'Gym', ...FAR, radius: 150, arriveDelay: 10, leaveDelay: 20 }) },
      201,
    );
    await home.report(alex, FAR);
    await home.clock.advance(11_000);
    assert.equal(home.value(alex.person, 'presence.zone'), 'home', 'home still holds during its leave delay');
    await home.clock.advance(600_000);
    assert.equal(home.value(alex.person, 'presence.zone'), zone.id);
    const zones = await home.json<Array<{ id: string }>>('/api/zones');
    assert.deepEqual(
      zones.map((z) => z.id),
      ['home', zone.id],
    );
  });

  it('takes locations and transitions in MQTT mode', async () => {
    await home.setHome({ arriveDelay: 0, leaveDelay: 120 });
    const alex = await home.addPhone('Alex');
    const client = await mqtt.connectAsync(home.hub.mqttUrl, {
      clientId: 'owntracks-alex',
      username: alex.username,
      password: alex.password,
    });
    try {
      const topic = `owntracks/${alex.username}/iphone`;
      await client.publishAsync(topic, JSON.stringify(home.fix(HOME)), { retain: true, qos: 1 });
      await eventually(() => home.value(alex.person, 'presence.home') === true, { what: 'Alex to be home over MQTT' });

      await home.clock.advance(1000);
      const leave = { ...home.fix(FAR), _type: 'transition', event: 'leave', desc: 'Home', wtst: 1, t: 'c' };
      await client.publishAsync(`${topic}/event`, JSON.stringify(leave), { qos: 1 });
      // The leave is pending once the transition is handled (MQTT is real time, the clock is not):
      // advancing the clock before that would start the leave delay only after the jump.
      const presence = (home.people as unknown as { running: { tracker: PresenceTracker } }).running.tracker;
      const sent = home.clock.now();
      await eventually(() => presence.pendingFor(home.hub.householdId, alex.person, 'home') !== null, {
        what: 'the leave to be pending',
      });
      assert.deepEqual(presence.pendingFor(home.hub.householdId, alex.person, 'home'), {
        inside: false,
        due: sent + 120_000,
      });
      assert.equal(home.hub.core.getThing(home.hub.householdId, alex.username)?.meta?.device, 'iphone');
      await home.clock.advance(60_000);
      assert.equal(home.value(alex.person, 'presence.home'), true, 'the transition waits out the leave delay');
      await home.clock.advance(61_000);
      assert.equal(home.value(alex.person, 'presence.home'), false);

      await client.publishAsync(topic, JSON.stringify({ _type: 'lwt', tst: Math.floor(home.clock.now() / 1000) }), {
        qos: 1,
      });
      await eventually(() => home.hub.twins.get(home.hub.householdId, alex.username)?.online === false, {
        what: 'lwt',
      });
    } finally {
      await client.endAsync();
    }
  });

  it("cuts off a phone connected in MQTT mode when its tracker or its person is removed, so it no longer follows the household's locations", async () => {
    await home.setHome({ arriveDelay: 0, leaveDelay: 120 });
    const alex = await home.addPhone('Alex');
    const kim = await home.addPhone('Kim');
    const sam = await home.addPhone('Sam');
    const connect = async (phone: Phone) => {
      const client = await mqtt.connectAsync(home.hub.mqttUrl, {
        clientId: `owntracks-${phone.username}`,
        username: phone.username,
        password: phone.password,
        reconnectPeriod: 0,
      });
      const seen: string[] = [];
      client.on('message', (topic) => seen.push(topic));
      await client.subscribeAsync('owntracks/#', { qos: 1 });
      let closed = false;
      client.on('close', () => {
        closed = true;
      });
      return { client, seen, closed: () => closed };
    };
    const alexPhone = await mqtt.connectAsync(home.hub.mqttUrl, {
      clientId: 'owntracks-alex',
      username: alex.username,
      password: alex.password,
    });
    const kimPhone = await connect(kim);
    const samPhone = await connect(sam);
    try {
      const topic = `owntracks/${alex.username}/iphone`;
      await alexPhone.publishAsync(topic, JSON.stringify(home.fix(HOME)), { qos: 1 });
      await eventually(() => kimPhone.seen.length > 0 && samPhone.seen.length > 0, {
        what: "Kim's and Sam's phones to see Alex's location, as OwnTracks friends",
      });

      assert.equal(
        (await home.api(`/api/people/${kim.person}/trackers/${kim.username}`, { method: 'DELETE' })).status,
        204,
      );
      assert.equal((await home.api(`/api/people/${sam.person}`, { method: 'DELETE' })).status, 204);
      await eventually(() => kimPhone.closed(), { what: "the removed tracker's connection to be closed" });
      await eventually(() => samPhone.closed(), { what: "the removed person's phone to be cut off" });

      // Reconnecting with the withdrawn credentials is refused too.
      await assert.rejects(
        mqtt.connectAsync(home.hub.mqttUrl, { username: kim.username, password: kim.password, reconnectPeriod: 0 }),
      );
    } finally {
      await alexPhone.endAsync();
      await kimPhone.client.endAsync(true);
      await samPhone.client.endAsync(true);
    }
  });

  it("clears a removed tracker's retained location and card, so the other phones drop the person from their map", async () => {
    await home.setHome({ arriveDelay: 0, leaveDelay: 0 });
    const alex = await home.addPhone('Alex');
    const kim = await home.addPhone('Kim');
    const login = (phone: Phone) =>
      mqtt.connectAsync(home.hub.mqttUrl, { username: phone.username, password: phone.password, reconnectPeriod: 0 });
    const kimTopic = `owntracks/${kim.username}/iphone`;
    const kimPhone = await login(kim);
    // As the app does: its location and its card, retained.
    await kimPhone.publishAsync(kimTopic, JSON.stringify(home.fix(HOME)), { retain: true, qos: 1 });
    await kimPhone.publishAsync(`${kimTopic}/info`, JSON.stringify({ _type: 'card', name: 'Kim' }), {
      retain: true,
      qos: 1,
    });
    await eventually(() => home.value(kim.person, 'presence.home') === true, { what: 'Kim home over MQTT' });

    const alexPhone = await login(alex);
    const heard: Array<{ topic: string; payload: string }> = [];
    alexPhone.on('message', (topic, payload) => heard.push({ topic, payload: payload.toString() }));
    await alexPhone.subscribeAsync('owntracks/#', { qos: 1 });
    await eventually(() => heard.filter((m) => m.topic.startsWith(kimTopic)).length === 2, {
      what: "Alex's phone to be handed Kim's retained location and card",
    });
    try {
      assert.equal((await home.api(`/api/people/${kim.person}`, { method: 'DELETE' })).status, 204);
      // A phone online hears the empty payload that tells the app the friend was deleted...
      await eventually(() => heard.some((m) => m.topic === kimTopic && m.payload === ''), {
        what: "the empty retained payload on Kim's topic",
      });
      // ...and one that subscribes later is handed nothing of Kim's.
      const later = await login(alex);
      const handed: string[] = [];
      later.on('message', (topic) => handed.push(topic));
      await later.subscribeAsync('owntracks/#', { qos: 1 });
      await later.publishAsync(`owntracks/${alex.username}/pixel`, JSON.stringify(home.fix(FAR)), { qos: 1 });
      await eventually(() => handed.includes(`owntracks/${alex.username}/pixel`), { what: "Alex's own message" });
      assert.deepEqual(
        handed.filter((t) => t.startsWith(`owntracks/${kim.username}/`)),
        [],
        "no retained message of Kim's",
      );
      await later.endAsync();
    } finally {
      await alexPhone.endAsync();
      await kimPhone.endAsync(true);
    }
  });

  it("does not let another household's MQTT device move this household's people by naming their phone's topic", async () => {
    await home.setHome({ arriveDelay: 0, leaveDelay: 0 });
    const alex = await home.addPhone('Alex');
    await home.report(alex, HOME);
    assert.equal(home.value(alex.person, 'presence.home'), true);

    // The neighbours: a second household on the same hub, with a phone of its own and a device
    // account its owner allowed to publish on `owntracks/#`.
    const neighbours = await home.json<{ household: { id: string }; token: string }>(
      '/api/households',
      { method: 'POST', body: JSON.stringify({ name: 'Neighbours' }) },
      201,
    );
    const asNeighbour = async <T>(path: string, body: unknown): Promise<T> => {
      const res = await fetch(home.hub.httpUrl + path, {
        method: 'POST',
        headers: { authorization: `Bearer ${neighbours.token}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      assert.equal(res.status, 201, await res.clone().text());
      return (await res.json()) as T;
    };
    const device = await asNeighbour<{ username: string; password: string }>('/api/devices', {
      name: 'bridge',
      publish: ['owntracks/#'],
      subscribe: ['owntracks/#'],
    });
    const bo = await asNeighbour<{ id: string }>('/api/people', { name: 'Bo' });
    const boTracker = await asNeighbour<{ username: string; password: string }>(`/api/people/${bo.id}/trackers`, {
      name: 'phone',
    });
    const neighbourHouse = neighbours.household.id;
    const boAt = (property: string) => home.hub.core.getValue(neighbourHouse, bo.id, property);

    const bridge = await mqtt.connectAsync(home.hub.mqttUrl, {
      username: device.username,
      password: device.password,
      reconnectPeriod: 0,
    });
    const boPhone = await mqtt.connectAsync(home.hub.mqttUrl, {
      username: boTracker.username,
      password: boTracker.password,
      reconnectPeriod: 0,
    });
    try {
      await home.clock.advance(1000);
      await bridge.publishAsync(`owntracks/${alex.username}/evil`, JSON.stringify(home.fix(FAR)), { qos: 1 });
      // Bo's own phone still reports in its household: once that is seen, the forged fix (sent
      // before it, and handled in order) has been handled too.
      await boPhone.publishAsync(`owntracks/${boTracker.username}/phone`, JSON.stringify(home.fix(FAR)), { qos: 1 });
      await eventually(() => boAt('location.latitude') === FAR.latitude, { what: "Bo's own phone to move Bo" });
      assert.equal(home.value(alex.person, 'location.latitude'), HOME.latitude, "Alex's position is Alex's phone's");
      assert.equal(home.value(alex.person, 'presence.home'), true);
      assert.notEqual(home.hub.core.getThing(home.hub.householdId, alex.username)?.meta?.device, 'evil');

      // Nor the other way round: this household's own device account cannot move the neighbours' Bo.
      const ours = await home.json<{ username: string; password: string }>(
        '/api/devices',
        { method: 'POST', body: JSON.stringify({ name: 'ours', publish: ['owntracks/#'] }) },
        201,
      );
      const ourBridge = await mqtt.connectAsync(home.hub.mqttUrl, {
        username: ours.username,
        password: ours.password,
        reconnectPeriod: 0,
      });
      await home.clock.advance(1000);
      await ourBridge.publishAsync(`owntracks/${boTracker.username}/evil`, JSON.stringify(home.fix(HOME)), { qos: 1 });
      await home.clock.advance(1000);
      await ourBridge.publishAsync(`owntracks/${alex.username}/pixel`, JSON.stringify(home.fix(HOME)), { qos: 1 });
      await eventually(
        () =>
          home.hub.twins.get(home.hub.householdId, alex.username)?.state.get('location.latitude')?.ts ===
          home.clock.now(),
        {
          what: 'the later message on our own topic to be handled',
        },
      );
      await ourBridge.endAsync();
      assert.equal(boAt('location.latitude'), FAR.latitude, "Bo's position is Bo's phone's");
    } finally {
      await bridge.endAsync();
      await boPhone.endAsync();
    }
  });

  it("shows a person's speed, heading and accuracy from their latest fix only, never an older fix's", async () => {
    await home.setHome({ arriveDelay: 0, leaveDelay: 0 });
    const alex = await home.addPhone('Alex');
    const kim = await home.addPhone('Kim');
    await home.report(alex, FAR, { vel: 50, cog: 270, acc: 30 });
    // Indoors at home, iOS knows neither speed nor course (-1), and this fix says nothing of accuracy.
    await home.clock.advance(1000);
    const indoors = home.fix(HOME, { vel: -1, cog: -1 });
    delete indoors.acc;
    const res = await home.owntracks(alex, indoors);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-triad-ignored'), null);

    const people = await home.json<Array<{ id: string; location: Record<string, unknown> }>>('/api/people');
    const location = people.find((p) => p.id === alex.person)?.location;
    assert.equal(location?.latitude, HOME.latitude);
    assert.deepEqual(
      { speed: location?.speed, heading: location?.heading, accuracy: location?.accuracy },
      { speed: null, heading: null, accuracy: null },
    );
    // Kim's phone shows Alex at home, not driving there.
    const friends = await home.report(kim, HOME);
    const alexOnMap = friends.find((m) => m._type === 'location' && m.lat === HOME.latitude);
    assert.ok(alexOnMap, JSON.stringify(friends));
    assert.equal(alexOnMap.vel, undefined);
    assert.equal(alexOnMap.cog, undefined);
    assert.equal(alexOnMap.acc, undefined);
  });

  it('keeps a pending leave across a hub restart', async () => {
    await home.setHome({ arriveDelay: 0, leaveDelay: 600 });
    const alex = await home.addPhone('Alex');
    await home.report(alex, HOME);
    await home.report(alex, FAR);
    await home.clock.advance(100_000);
    await home.stop();

    const again = new Household(home.clock, home.dataDir);
    home = again;
    await again.start();
    assert.equal(again.value(alex.person, 'presence.home'), true, 'still home right after the restart');
    await again.clock.advance(490_000);
    assert.equal(again.value(alex.person, 'presence.home'), true, 'the restart did not shorten the delay');
    await again.clock.advance(15_000);
    assert.equal(again.value(alex.person, 'presence.home'), false, 'the stored leave fired on time');
    assert.equal(again.value('household', 'presence.everyone_away'), true);
  });

  it('remembers across a restart every zone someone is in, so a zone around home neither arrives twice nor misses its leave', async () => {
    await home.setHome({ arriveDelay: 0, leaveDelay: 0 });
    await home.json(
      '/api/zones',
      { method: 'POST', body: JSON.stringify({ name: 'Town', ...HOME, radius: 5_000, arriveDelay: 0, leaveDelay: 0 }) },
      201,
    );
    const alex = await home.addPhone('Alex');
    await home.report(alex, HOME);
    /** The zones of Alex's presence events of one type (`presence.arrived`, `presence.left`). */
    const arrivals = (events: HubEvent[], type: string) =>
      events
        .filter((e) => e.type === type && 'thing' in e && e.thing === alex.person)
        .map((e) => ('data' in e ? e.data?.zone : null));
    assert.deepEqual(arrivals(home.events, 'presence.arrived').sort(), ['home', 'town']);
    await home.stop();

    const again = new Household(home.clock, home.dataDir);
    home = again;
    await again.start();
    await again.report(alex, offsetPoint(HOME, 10, 0));
    assert.deepEqual(arrivals(again.events, 'presence.arrived'), [], 'still home and in town: nothing arrives again');
    const OUT_OF_TOWN = offsetPoint(HOME, 20_000, 90);
    await again.report(alex, OUT_OF_TOWN);
    assert.deepEqual(arrivals(again.events, 'presence.left').sort(), ['home', 'town']);
  });

  it("acts on the broker's retained OwnTracks message at start, and logs no failure", async () => {
    await home.setHome({ arriveDelay: 0, leaveDelay: 0 });
    const alex = await home.addPhone('Alex');
    const topic = `owntracks/${alex.username}/iphone`;
    const phone = await mqtt.connectAsync(home.hub.mqttUrl, {
      clientId: 'owntracks-alex',
      username: alex.username,
      password: alex.password,
      reconnectPeriod: 0,
    });
    await phone.publishAsync(topic, JSON.stringify(home.fix(HOME)), { retain: true, qos: 1 });
    await eventually(() => home.value(alex.person, 'presence.home') === true, { what: 'Alex to be home' });
    await phone.endAsync();
    await home.stop();

    // The phone's newer fix, retained on the broker but not yet acted on: what a broker holds when
    // a phone reported while the hub was away (written as the embedded broker keeps it).
    await home.clock.advance(60_000);
    const retained = new RetainedStore(join(home.dataDir, 'broker-retained.db'));
    retained.record(topic, Buffer.from(JSON.stringify(home.fix(FAR))), 1);
    retained.close();

    const lines: LogLine[] = [];
    const again = new Household(home.clock, home.dataDir, {
      log: createLogger({ level: 'info', sink: (line) => lines.push(line) }),
    });
    home = again;
    await again.start();
    await eventually(() => again.value(alex.person, 'location.longitude') === FAR.longitude, {
      what: 'the retained fix to move Alex',
    });
    assert.equal(again.value(alex.username, 'location.latitude'), FAR.latitude, "the tracker's position too");
    assert.deepEqual(
      lines.filter((line) => line.level === 'error'),
      [],
      'no OwnTracks message failed at start',
    );
  });

  it('takes what a phone retained on an external broker while the hub was down', async (t) => {
    const skip = await needService('mqtt');
    if (skip) return t.skip(skip);
    // A topic prefix of this run's own on the shared broker.
    const prefix = `owntracks-test-${randomBytes(4).toString('hex')}`;
    const lines: LogLine[] = [];
    const setup = {
      mqtt: { url: services.mqtt },
      people: { topicPrefix: prefix },
      log: createLogger({ level: 'info', sink: (line: LogLine) => lines.push(line) }),
    };
    await home.stop();
    const first = new Household(home.clock, await tempDir('triad-people-'), setup);
    home = first;
    await first.start();
    await first.setHome({ arriveDelay: 0, leaveDelay: 0 });
    const alex = await first.addPhone('Alex');
    await first.stop();

    await first.clock.advance(60_000);
    const topic = `${prefix}/${alex.username}/iphone`;
    const phone = await mqtt.connectAsync(services.mqtt, { clientId: `owntracks-${prefix}`, reconnectPeriod: 0 });
    try {
      await phone.publishAsync(topic, JSON.stringify(first.fix(FAR)), { retain: true, qos: 1 });
      const again = new Household(first.clock, first.dataDir, setup);
      home = again;
      await again.start();
      await eventually(() => again.value(alex.person, 'location.longitude') === FAR.longitude, {
        what: 'the fix the phone sent while the hub was down',
      });
      const failures = lines.filter((line) => line.level === 'error' && line.scope.startsWith('triad.people'));
      assert.deepEqual(failures, [], 'no OwnTracks message failed at start');
    } finally {
      await phone.publishAsync(topic, '', { retain: true, qos: 1 });
      await phone.endAsync();
    }
  });

  it('imports waypoints as zones only when the household chose to', async () => {
    await home.setHome({});
    const alex = await home.addPhone('Alex');
    const gym = offsetPoint(HOME, 5_000, 180);
    const waypoints = {
      _type: 'waypoints',
      waypoints: [
        {
          _type: 'waypoint',
          desc: 'Gym',
          lat: gym.latitude,
          lon: gym.longitude,
          rad: 80,
          tst: 1_700_000_000,
          rid: 'ab12',
        },
      ],
    };
    const off = await home.owntracks(alex, waypoints);
    assert.equal(off.status, 200);
    assert.match(off.headers.get('x-triad-ignored') ?? '', /waypoint import is off/);
    assert.equal((await home.json<unknown[]>('/api/zones')).length, 1);

    await home.setHome({ importWaypoints: true });
    assert.equal((await home.owntracks(alex, waypoints)).status, 200);
    assert.equal((await home.owntracks(alex, waypoints)).status, 200);
    const zones = await home.json<Array<{ name: string; radius: number; source: string }>>('/api/zones');
    assert.deepEqual(
      zones.map((z) => [z.name, z.radius, z.source]),
      [
        ['Home', 100, 'household'],
        ['Gym', 80, 'owntracks'],
      ],
      'imported once, however often the phone sends it',
    );
  });

  it('says how to change the home zone when asked to remove it', async () => {
    await home.setHome({});
    const res = await home.api('/api/zones/home', { method: 'DELETE' });
    assert.equal(res.status, 400);
    const body = (await res.json()) as { error: { message: string } };
    assert.match(body.error.message, /PUT \/api\/household/);
    assert.deepEqual(
      (await home.json<Array<{ id: string }>>('/api/zones')).map((z) => z.id),
      ['home'],
    );
  });

  it("takes a phone's own Home region as the household's home, not as a second zone that arrives twice", async () => {
    await home.setHome({ importWaypoints: true, arriveDelay: 0 });
    const alex = await home.addPhone('Alex');
    const region = (desc: string, at: { latitude: number; longitude: number }, tst: number) => ({
      _type: 'waypoint',
      desc,
      lat: at.latitude,
      lon: at.longitude,
      rad: 80,
      tst,
    });
    const gym = offsetPoint(HOME, 5_000, 180);
    const res = await home.owntracks(alex, {
      _type: 'waypoints',
      waypoints: [region('Home', HOME, 1_700_000_000), region('Gym', gym, 1_700_000_001)],
    });
    assert.equal(res.status, 200);
    const zones = await home.json<Array<{ id: string; name: string }>>('/api/zones');
    assert.deepEqual(
      zones.map((z) => z.id),
      ['home', 'gym'],
    );

    await home.report(alex, HOME);
    const arrived = home.events.filter((e) => e.type === 'presence.arrived').map((e) => ('data' in e ? e.data : null));
    assert.deepEqual(arrived, [{ person: alex.person, name: 'Alex', zone: 'home' }], 'one arrival home');
  });

  it('refuses wrong credentials, bad and stale messages, and replays without changing presence', async () => {
    await home.setHome({ arriveDelay: 0, leaveDelay: 0 });
    const alex = await home.addPhone('Alex');
    await home.report(alex, HOME);
    const stateBefore = () => [home.value(alex.person, 'presence.home'), home.value(alex.person, 'location.latitude')];
    const before = stateBefore();

    const wrongPassword = await home.owntracks(alex, home.fix(FAR), { password: 'nope' });
    const unknownUser = await home.owntracks({ ...alex, username: 'nobody' }, home.fix(FAR));
    for (const res of [wrongPassword, unknownUser]) {
      assert.equal(res.status, 401);
      assert.match(res.headers.get('www-authenticate') ?? '', /^Basic/);
    }
    assert.deepEqual(await wrongPassword.json(), await unknownUser.json(), 'no hint whether the user exists');
    const noAuth = await fetch(`${home.hub.httpUrl}/api/owntracks`, { method: 'POST', body: '{}' });
    assert.equal(noAuth.status, 401);

    const now = Math.floor(home.clock.now() / 1000);
    const refused: Array<[string, { raw?: string; body?: unknown }, number]> = [
      ['not JSON', { raw: '{"_type":"location",' }, 400],
      ['missing lat', { body: { _type: 'location', lon: 4.9, tst: now } }, 400],
      ['impossible latitude', { body: home.fix({ latitude: 123, longitude: 4.9 }) }, 400],
      ['string coordinates', { body: { ...home.fix(FAR), lat: '52.1' } }, 400],
      ['no tst', { body: { ...home.fix(FAR), tst: undefined } }, 400],
      ['far future', { body: home.fix(FAR, { tst: now + 3600 }) }, 200],
      ['far past', { body: home.fix(FAR, { tst: now - 3 * 86_400 }) }, 200],
      ['replay of an older fix', { body: home.fix(FAR, { tst: now - 60 }) }, 200],
      ['empty body', { raw: '' }, 200],
      ['a card', { body: { _type: 'card', name: 'x' } }, 200],
    ];
    for (const [what, input, status] of refused) {
      const res = await home.owntracks(alex, input.body, { raw: input.raw });
      assert.equal(res.status, status, what);
      if (status === 200) assert.ok(res.headers.get('x-triad-ignored'), `${what} says why it was ignored`);
      else assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'invalid_owntracks', what);
      await home.clock.advance(1000);
      assert.deepEqual(stateBefore(), before, `${what} changed nothing`);
    }
  });

  it('never changes presence on input it refuses (fast-check through the OwnTracks endpoint)', async () => {
    await home.setHome({ arriveDelay: 0, leaveDelay: 0 });
    const alex = await home.addPhone('Alex');
    await home.report(alex, HOME);
    const authorization = `Basic ${Buffer.from(`${alex.username}:${alex.password}`).toString('base64')}`;
    const snapshot = () =>
      JSON.stringify([...(home.hub.twins.get(home.hub.householdId, alex.person)?.state.entries() ?? [])]);
    const now = () => Math.floor(home.clock.now() / 1000);
    const hostile = fc.oneof(
      fc.json(),
      fc.string(),
      fc.record(
        {
          _type: fc.constantFrom('location', 'transition', 'waypoint', 'waypoints', 'lwt', 'card', 'nonsense'),
          lat: fc.oneof(fc.double(), fc.string(), fc.constant(null)),
          lon: fc.oneof(fc.double(), fc.string(), fc.constant(null)),
          acc: fc.oneof(fc.double(), fc.constant(-5)),
          tst: fc.oneof(fc.integer(), fc.double(), fc.constant(now() - 10), fc.constant(now() + 10_000)),
          event: fc.constantFrom('enter', 'leave', 'explode'),
          desc: fc.string(),
          inregions: fc.oneof(fc.array(fc.string()), fc.string()),
        },
        { requiredKeys: [] },
      ),
    );
    await fc.assert(
      fc.asyncProperty(hostile, async (input) => {
        const body = Buffer.from(typeof input === 'string' ? input : JSON.stringify(input));
        const parsed = parseOwnTracks(body);
        const before = snapshot();
        const answer = await home.people.receiveHttp({ authorization, limitUser: alex.username, body });
        if (answer.status !== 200 || answer.ignored) {
          assert.equal(snapshot(), before, `refused input changed the person: ${body.toString().slice(0, 200)}`);
        }
        if (!parsed.ok) assert.ok(answer.status === 400 || (answer.status === 200 && answer.ignored));
      }),
      { numRuns: 300 },
    );
    assert.equal(home.value(alex.person, 'presence.home'), true);
  });
});

describe('OwnTracks parser', () => {
  it('never throws, and every refusal has a reason (fast-check)', () => {
    fc.assert(
      fc.property(fc.oneof(fc.json(), fc.string(), fc.uint8Array({ maxLength: 200 }), fc.anything()), (input) => {
        const payload = input instanceof Uint8Array ? Buffer.from(input) : input;
        const result = parseOwnTracks(payload);
        if (!result.ok) assert.ok(result.reason.length > 0);
        else if ('latitude' in result.message) {
          assert.ok(Math.abs(result.message.latitude) <= 90 && Math.abs(result.message.longitude) <= 180);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('reads a real Android location message', () => {
    const result = parseOwnTracks(
      '{"_type":"location","acc":13,"alt":0,"batt":86,"bs":2,"conn":"w","created_at":1700000005,"lat":52.3731,"lon":4.8922,"m":1,"t":"u","tid":"al","tst":1700000000,"vac":0,"vel":7,"cog":180,"inregions":["Home"],"topic":"owntracks/alex/pixel"}',
    );
    assert.ok(result.ok);
    assert.deepEqual(result.message, {
      type: 'location',
      latitude: 52.3731,
      longitude: 4.8922,
      ts: 1_700_000_000_000,
      accuracy: 13,
      speed: 7,
      heading: 180,
      altitude: 0,
      battery: 86,
      batteryStatus: 'charging',
      tid: 'al',
      trigger: 'u',
      inRegions: ['Home'],
    });
  });
});

function thingOf(event: HubEvent | undefined): string | undefined {
  return event && 'thing' in event ? event.thing : undefined;
}

describe('tracker credentials', () => {
  it('never runs more than a few scrypt checks at once, so wrong passwords cannot hold up signing in', async () => {
    const stored = await hashPassword('the right password');
    let running = 0;
    let most = 0;
    let calls = 0;
    const check = new CredentialCheck(
      (username) => (username === 'alex-phone' ? stored : undefined),
      async (password, hash) => {
        calls++;
        running++;
        most = Math.max(most, running);
        await new Promise((resolve) => setTimeout(resolve, 5));
        running--;
        return verifyPassword(password, hash);
      },
    );
    // A flood of made-up users and wrong passwords, and the phone itself among them.
    const flood = Array.from({ length: 20 }, (_, i) =>
      check.check(i % 2 ? `nobody-${i}` : 'alex-phone', `wrong password ${i}`),
    );
    const genuine = check.check('alex-phone', 'the right password');
    assert.deepEqual(await Promise.all(flood), Array(20).fill(false));
    assert.equal(await genuine, true);
    assert.equal(calls, 21, 'every check was made');
    // Two of the thread pool's four threads at most: sign-in and file work keep the others.
    assert.ok(most >= 1 && most <= 2, `${most} scrypt checks ran at once`);
    // Once verified, the phone's password is remembered and costs no scrypt at all.
    assert.equal(await check.check('alex-phone', 'the right password'), true);
    assert.equal(calls, 21);
  });
});
