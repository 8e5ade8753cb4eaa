import type { RouteModule } from '../api/server.ts';
import { HOUSEHOLDS_TOPIC_ROOT } from '../auth/devices.ts';
import { badRequest, notFound } from '../core/errors.ts';
import type { HubServices, Subsystem } from '../core/hub.ts';
import { newId } from '../core/ids.ts';
import type { Logger } from '../core/log.ts';
import type { Thing } from '../model/thing.ts';
import { CredentialCheck, parseBasicAuth } from './credentials.ts';
import { PeopleDirectory, trackerMeta } from './directory.ts';
import { HouseholdPresence } from './household.ts';
import { OwnTracksMqttListener } from './mqtt.ts';
import { type PhoneFix, parseOwnTracks } from './owntracks.ts';
import { PresenceTracker } from './presence.ts';
import { type Outcome, PhoneReceiver } from './receiver.ts';
import { peopleRoutes } from './routes.ts';
import { ReportAge } from './staleness.ts';
import { friendsPayload, householdView, personView, trackerView, zoneView, zoneViewOfThing } from './views.ts';
import { HOME_ZONE_ID, type PresenceSettings } from './zones.ts';

export interface PeopleServiceOptions {
  /** Listen for OwnTracks on the hub's MQTT connection; default true. */
  mqtt?: boolean;
  /** The OwnTracks base topic; default `owntracks`, the app's own default. */
  topicPrefix?: string;
}

/** What `POST /api/owntracks` answers, before it becomes HTTP. */
export type HttpAnswer =
  | { status: 200; friends: Array<Record<string, unknown>>; ignored?: string }
  | { status: 400 | 401 | 403; code: string; message: string };

/** Device names from `X-Limit-D` or a topic: short and plain, as the app allows. */
const DEVICE_NAME = /^[A-Za-z0-9._-]{1,64}$/;

/**
 * People in Triad: person things with trackers (OwnTracks phones over HTTP or MQTT), zones with
 * separate arrive and leave delays, and the household's presence. Started by the hub like any
 * subsystem; its routes join the API.
 */
export class PeopleService implements Subsystem {
  readonly name = 'people';
  readonly routes: RouteModule;
  private running: Running | null = null;

  constructor(private readonly options: PeopleServiceOptions = {}) {
    this.routes = peopleRoutes(this);
  }

  async start(hub: HubServices): Promise<void> {
    const log = hub.log.child('people');
    const directory = new PeopleDirectory({ core: hub.core, twins: hub.twins, store: hub.store, history: hub.history });
    await directory.load();
    let household: HouseholdPresence | null = null;
    const tracker = new PresenceTracker({
      clock: hub.clock,
      timers: hub.store,
      log,
      onChange: (change) => household?.onChange(change),
    });
    household = new HouseholdPresence({ core: hub.core, bus: hub.bus, clock: hub.clock, directory, tracker });
    const reports = new ReportAge({
      core: hub.core,
      twins: hub.twins,
      clock: hub.clock,
      timers: hub.store,
      log,
      directory,
    });
    const receiver = new PhoneReceiver({
      core: hub.core,
      twins: hub.twins,
      clock: hub.clock,
      log,
      directory,
      tracker,
      household,
      reports,
      isConnected: (username) => hub.security?.broker.isLoggedIn(username) ?? false,
    });
    const credentials = new CredentialCheck((username) => directory.passwordHashOf(username));
    const running: Running = { hub, log, directory, tracker, household, receiver, reports, credentials, mqtt: [] };

    const households = (await hub.store.listHouseholds()).map((h) => h.id);
    for (const householdId of households) {
      for (const person of directory.people(householdId)) {
        const zones: string[] = [];
        if (hub.core.getValue(householdId, person.id, 'presence.home') === true) zones.push(HOME_ZONE_ID);
        const zone = hub.core.getValue(householdId, person.id, 'presence.zone');
        if (typeof zone === 'string' && zone !== HOME_ZONE_ID) zones.push(zone);
        tracker.seed(householdId, person.id, zones);
      }
    }
    const stillExists = (householdId: string, person: string, zone: string) =>
      hub.core.getThing(householdId, person)?.kind === 'person' &&
      directory.zones(householdId).some((z) => z.id === zone);
    // What was stored at each change knows every zone; the seeds above stand for data kept before it was.
    await tracker.loadMembership(stillExists);
    const isTracker = (householdId: string, id: string) => {
      const thing = hub.core.getThing(householdId, id);
      return thing !== undefined && trackerMeta(thing) !== undefined;
    };
    const restored = await tracker.restore(stillExists, isTracker);
    // Before the broker's retained messages come in (the listeners below), so they count as reports.
    await reports.restore(households);
    for (const householdId of households) household.publishHousehold(householdId);

    if (this.options.mqtt !== false) {
      const prefix = this.options.topicPrefix ?? 'owntracks';
      // Other households' phones publish under their household's namespace on the broker.
      for (const listenOn of [prefix, `${HOUSEHOLDS_TOPIC_ROOT}/+/${prefix}`]) {
        const listener = new OwnTracksMqttListener({
          link: hub.mqtt,
          prefix: listenOn,
          log,
          clock: hub.clock,
          // Handed what this start made, not this.running: the broker delivers its retained
          // messages (and whatever a phone sends meanwhile) as soon as the subscription is in
          // place, before start() returns and this.running is set.
          deliver: (username, device, payload, topic) =>
            receiveMqtt(running, householdOfTopic(topic, hub.householdId), username, device, payload),
        });
        await listener.start();
        running.mqtt.push(listener);
      }
      // A phone logs in to the broker with its tracker's user name and password, and may publish
      // only under its own user name; it may read its household's phones (OwnTracks friends).
      running.stopBrokerLogin = hub.security?.broker.addResolver(async (username, password) => {
        if (!(await credentials.check(username, password))) return null;
        const tracker = directory.trackerByUsername(username);
        if (!tracker) return null;
        return {
          householdId: tracker.householdId,
          publish: [`${prefix}/${username}/#`],
          subscribe: [`${prefix}/#`],
          actor: { kind: 'device', id: tracker.id, name: tracker.name },
        };
      });
    }
    this.running = running;
    log.info('people ready', { pendingPresenceChanges: restored });
  }

  async stop(): Promise<void> {
    const running = this.running;
    this.running = null;
    if (!running) return;
    running.stopBrokerLogin?.();
    // Messages already queued are still handled (they use `running`), then the timers stop.
    for (const listener of running.mqtt) await listener.stop();
    await running.tracker.stop();
    await running.reports.stop();
  }

  /**
   * A position from a tracker that is not a phone (the car while someone drives it): the same
   * checks and presence rules as a phone's fix.
   */
  reportFix(householdId: string, trackerId: string, fix: PhoneFix): Outcome {
    const { hub, receiver } = this.require();
    const tracker = hub.core.getThing(householdId, trackerId);
    if (!tracker || !trackerMeta(tracker)) throw notFound(`tracker ${JSON.stringify(trackerId)}`);
    return receiver.receiveFix(tracker, fix);
  }

  /**
   * Whether a user name and password belong to a tracker: for the MQTT broker's authentication,
   * so phones in MQTT mode use the same credentials as in HTTP mode.
   */
  async checkTrackerCredentials(username: string, password: string): Promise<boolean> {
    return this.require().credentials.check(username, password);
  }

  /** Waits until pending presence timers are stored (tests, and before a planned restart). */
  async flush(): Promise<void> {
    await this.running?.tracker.flush();
    await this.running?.reports.flush();
  }

  listPeople(householdId: string) {
    const { hub, directory, reports } = this.require();
    return directory.people(householdId).map((person) => {
      const trackers = directory.trackersOf(householdId, person.id).map((t) => hub.twins.get(householdId, t.id)!);
      return personView(
        hub.twins.get(householdId, person.id)!,
        trackers,
        reports.personReport(householdId, person.id),
        (tracker) => reports.isStale(householdId, tracker),
      );
    });
  }

  async createPerson(householdId: string, name: string) {
    const { hub, directory, household } = this.require();
    const person = await directory.createPerson(householdId, name);
    household.publishHousehold(householdId);
    return personView(hub.twins.get(householdId, person.id)!, []);
  }

  async removePerson(householdId: string, id: string): Promise<void> {
    const { directory, tracker, household, receiver, reports } = this.require();
    // The trackers the directory removed: one added while the removal waited its turn is among them.
    const trackers = await directory.removePerson(householdId, id);
    for (const t of trackers) {
      this.withdrawTracker(t);
      receiver.forgetTracker(householdId, t.id);
      reports.forgetTracker(householdId, t.id);
    }
    tracker.forgetPerson(householdId, id);
    household.publishHousehold(householdId);
  }

  async createTracker(householdId: string, person: string, name: string) {
    const { hub, directory, household } = this.require();
    const { tracker, password } = await directory.createTracker(householdId, person, name);
    // With a tracker the person counts for the household's presence again (see trackedPeople).
    household.publishHousehold(householdId);
    const username = trackerMeta(tracker)!.username;
    return {
      ...trackerView(hub.twins.get(householdId, tracker.id)!),
      username,
      password,
      owntracks: {
        http: { path: '/api/owntracks', auth: 'basic' },
        mqtt: { topic: `${this.options.topicPrefix ?? 'owntracks'}/${username}/<device>` },
      },
    };
  }

  async removeTracker(householdId: string, person: string, id: string): Promise<void> {
    const { hub, directory, receiver, reports, household, tracker } = this.require();
    const thing = hub.core.getThing(householdId, id);
    if (!thing || trackerMeta(thing)?.person !== person) throw notFound(`tracker ${JSON.stringify(id)} of ${person}`);
    await directory.removeTracker(householdId, id);
    this.withdrawTracker(thing);
    receiver.forgetTracker(householdId, id);
    reports.forgetTracker(householdId, id, person);
    // What it alone said (an arrival or departure waiting out its delay) no longer happens.
    tracker.forgetTracker(householdId, person, id);
    // Their last tracker gone, the person no longer counts for the household's presence.
    household.publishHousehold(householdId);
  }

  /**
   * What a removed tracker leaves behind goes with it. Its credentials stop working at once: over
   * HTTP at the next post, and a phone connected to the broker in MQTT mode is cut off (it was
   * subscribed to its household's locations, and the broker does not check a subscription again).
   * Its last location and card, which the app publishes retained, are cleared with the empty
   * retained payload the OwnTracks apps read as "this friend was deleted": otherwise every phone
   * would keep being handed that position, and keep showing the person on its map.
   */
  private withdrawTracker(tracker: Thing): void {
    const { hub, directory, credentials, log } = this.require();
    const meta = trackerMeta(tracker);
    if (!meta) return;
    credentials.forget(meta.username);
    hub.security?.broker.disconnectLogin(meta.username);
    // Every device topic the hub knows of, not only the last: two phones sharing a tracker each
    // retain their own. Known rather than asked of the broker (subscribing to `<user>/+` and
    // waiting for what comes back): the hub's subscription is handed every retained message at
    // start and every message since, so the list is complete without guessing how long to wait.
    const devices = directory.deviceNames(tracker);
    directory.forgetDevices(tracker.householdId, tracker.id);
    if (this.options.mqtt === false) return;
    const prefix = this.options.topicPrefix ?? 'owntracks';
    const topics = devices.flatMap((device) => {
      const topic = `${prefix}/${meta.username}/${device}`;
      return [topic, `${topic}/info`];
    });
    // Not awaited: with the broker away the clearing waits for it, and the removal must not.
    for (const retained of topics) {
      void hub
        .mqttFor(tracker.householdId)
        .publish(retained, '', { retain: true, qos: 1 })
        .catch((error: unknown) =>
          log.warn("could not clear a removed tracker's retained message", { topic: retained, error }),
        );
    }
  }

  listZones(householdId: string) {
    const { hub, directory } = this.require();
    return directory.zones(householdId).map((zone) => zoneView(zone, hub.core.getThing(householdId, zone.id)));
  }

  async createZone(
    householdId: string,
    zone: {
      name: string;
      latitude: number;
      longitude: number;
      radius: number;
      arriveDelay?: number;
      leaveDelay?: number;
    },
  ) {
    const { directory, receiver } = this.require();
    const settings = directory.presenceSettings(householdId);
    const thing = await directory.createZone(householdId, {
      ...zone,
      arriveDelay: zone.arriveDelay ?? settings.arriveDelay,
      leaveDelay: zone.leaveDelay ?? settings.leaveDelay,
    });
    for (const person of directory.people(householdId)) receiver.rejudge(householdId, person.id);
    return zoneViewOfThing(thing);
  }

  async removeZone(householdId: string, id: string): Promise<void> {
    const { directory, tracker, household } = this.require();
    await directory.removeZone(householdId, id);
    for (const person of tracker.forgetZone(householdId, id)) household.publishPerson(householdId, person);
    household.publishHousehold(householdId);
  }

  async household(householdId: string) {
    const { hub, directory } = this.require();
    const record = await hub.store.getHousehold(householdId);
    if (!record) throw notFound(`household ${JSON.stringify(householdId)}`);
    return householdView(
      record.id,
      record.name,
      directory.presenceSettings(householdId),
      hub.twins.get(householdId, 'household'),
    );
  }

  async updateHousehold(householdId: string, change: Partial<PresenceSettings>) {
    const { hub, directory, receiver, reports } = this.require();
    const current = directory.presenceSettings(householdId);
    const hasLatitude = change.latitude !== undefined;
    if (hasLatitude !== (change.longitude !== undefined) && current.latitude === undefined) {
      throw badRequest('the first home location needs both latitude and longitude');
    }
    await directory.updatePresenceSettings(householdId, change);
    // A moved or resized home is judged again from where everyone is now, with the usual delays.
    for (const person of directory.people(householdId)) receiver.rejudge(householdId, person.id);
    if (change.staleAfter !== undefined) reports.rearm(householdId);
    // Announced once stored, so that what reads the settings (the automation engine's sun rules
    // read the location) takes the change at once, not at its next restart.
    const changed = Object.keys(change).filter((key) => change[key as keyof PresenceSettings] !== undefined);
    if (changed.length) {
      const now = hub.clock.now();
      hub.bus.publish({
        type: 'household.updated',
        id: newId(now, 'evt_'),
        householdId,
        ts: now,
        data: { changed: changed.sort() },
      });
    }
    return this.household(householdId);
  }

  /** One `POST /api/owntracks`: authenticate the tracker, act on the message, answer with the friends. */
  async receiveHttp(request: {
    authorization?: string;
    limitUser?: string;
    limitDevice?: string;
    body: Buffer;
  }): Promise<HttpAnswer> {
    const { hub, directory, credentials, receiver, log } = this.require();
    const basic = parseBasicAuth(request.authorization);
    // One answer for a missing user, a wrong password and no credentials at all: no hint who exists.
    const unauthorized: HttpAnswer = {
      status: 401,
      code: 'unauthorized',
      message: 'wrong or missing user name and password',
    };
    if (!basic || !(await credentials.check(basic.username, basic.password))) return unauthorized;
    const tracker = directory.trackerByUsername(basic.username);
    const meta = tracker ? trackerMeta(tracker) : undefined;
    if (!tracker || !meta) return unauthorized;
    if (request.limitUser !== undefined && request.limitUser !== basic.username) {
      return { status: 403, code: 'forbidden', message: 'X-Limit-U names another user than the credentials' };
    }
    const parsed = parseOwnTracks(request.body);
    if (!parsed.ok && parsed.severity === 'invalid') {
      log.info('OwnTracks message refused', { tracker: tracker.id, via: 'http', reason: parsed.reason });
      return { status: 400, code: 'invalid_owntracks', message: parsed.reason };
    }
    const outcome: Outcome = parsed.ok
      ? await receiver.receive(tracker, parsed.message)
      : { accepted: false, severity: 'ignored', reason: parsed.reason };
    // Only once the message is taken: a refused or ignored one changes nothing stored.
    if (outcome.accepted && request.limitDevice && DEVICE_NAME.test(request.limitDevice))
      await directory.noteDevice(tracker, request.limitDevice);
    const people = directory.people(tracker.householdId).map((p) => hub.twins.get(tracker.householdId, p.id)!);
    const friends = friendsPayload(people, meta.person);
    if (outcome.accepted) return { status: 200, friends };
    log.debug('OwnTracks message ignored', { tracker: tracker.id, via: 'http', reason: outcome.reason });
    if (outcome.severity === 'invalid') return { status: 400, code: 'invalid_owntracks', message: outcome.reason };
    return { status: 200, friends, ignored: outcome.reason };
  }

  private require(): Running {
    if (!this.running) throw new Error('the people service has not started');
    return this.running;
  }
}

/** One MQTT message on `owntracks/<user>/<device>[/event|/waypoint|/waypoints]`. */
async function receiveMqtt(
  running: Running,
  householdId: string,
  username: string,
  device: string,
  payload: Buffer,
): Promise<Outcome> {
  const { directory, receiver } = running;
  const tracker = directory.trackerByUsername(username);
  // Tracker user names are unique across households, but a topic only speaks for the household
  // whose namespace it came in: another household's device account allowed `owntracks/#` must not
  // move this household's people (nor ours theirs).
  if (!tracker || tracker.householdId !== householdId)
    return {
      accepted: false,
      severity: 'ignored',
      reason: `no tracker of this household has the user name ${JSON.stringify(username)}`,
    };
  // Whatever the message is, it may be retained on this topic: remembered (in memory) for clearing.
  directory.heardDevice(tracker, device);
  const parsed = parseOwnTracks(payload);
  if (!parsed.ok) return { accepted: false, severity: parsed.severity, reason: parsed.reason };
  const outcome = await receiver.receive(tracker, parsed.message);
  // Only once the message is taken: a refused or ignored one changes nothing stored.
  if (outcome.accepted && DEVICE_NAME.test(device)) await directory.noteDevice(tracker, device);
  return outcome;
}

/**
 * The household an OwnTracks topic belongs to: the broker moves every household's topics but the
 * default one's under `households/<id>/`, without its clients knowing.
 */
function householdOfTopic(topic: string, defaultHouseholdId: string): string {
  const [root, id] = topic.split('/');
  return root === HOUSEHOLDS_TOPIC_ROOT && id ? id : defaultHouseholdId;
}

interface Running {
  hub: HubServices;
  log: Logger;
  directory: PeopleDirectory;
  tracker: PresenceTracker;
  household: HouseholdPresence;
  receiver: PhoneReceiver;
  reports: ReportAge;
  credentials: CredentialCheck;
  mqtt: OwnTracksMqttListener[];
  stopBrokerLogin?: () => void;
}
