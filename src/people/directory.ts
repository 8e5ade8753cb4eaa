import { randomBytes } from 'node:crypto';
import type { HubCore } from '../core/core.ts';
import { badRequest, conflict, notFound } from '../core/errors.ts';
import { KeyedSerial } from '../core/serial.ts';
import type { TwinRegistry } from '../core/twin.ts';
import { idFromName, slugify, type Thing, vocabularyProperties } from '../model/thing.ts';
import type { Store } from '../store/store.ts';
import { hashPassword, newPassword } from './credentials.ts';
import {
  HOME_ZONE_ID,
  homeZone,
  type PresenceSettings,
  presenceSettingsFrom,
  type Zone,
  type ZoneMeta,
  zoneFromThing,
} from './zones.ts';

/** The adapter name on every thing this subsystem owns. */
export const PEOPLE_ADAPTER = 'people';

const LOCATION = ['location.latitude', 'location.longitude', 'location.accuracy', 'location.heading', 'location.speed'];
export const PERSON_PROPERTIES = [...LOCATION, 'presence.zone', 'presence.home'];
export const TRACKER_PROPERTIES = [...LOCATION, 'battery.level'];

/** What a tracker thing keeps in its `meta`; never sent to clients as it is. */
export interface TrackerMeta {
  person: string;
  username: string;
  passwordHash: string;
  /** The device name the phone gave (`X-Limit-D`, or the topic's last level) that was new last. */
  device?: string;
  /**
   * Every device name accepted messages came under (a tracker shared by two phones has two), so
   * removing the tracker clears each one's retained topic; at most MAX_STORED_DEVICES.
   */
  devices?: string[];
}

/**
 * Device names kept per tracker. A phone gives one; a few share a tracker. Past this a new name
 * is not stored (it would be a write per message from a phone that keeps renaming itself), and
 * its retained topic is still known from what the broker delivers (see heardDevice).
 */
const MAX_STORED_DEVICES = 16;
/** Device names heard per tracker in memory: a bound on what a phone naming topics at will costs. */
const MAX_HEARD_DEVICES = 1000;

/** Ids no person or zone may take: `home` is the home zone's id, `household` the household thing's. */
const RESERVED_IDS = new Set([HOME_ZONE_ID, 'household']);

export interface NewZone {
  name: string;
  latitude: number;
  longitude: number;
  radius: number;
  arriveDelay: number;
  leaveDelay: number;
  source?: ZoneMeta['source'];
  regionId?: string;
}

/**
 * People, their trackers and zones as things, and the household's presence settings: the one
 * place that reads and writes them, so every route and protocol sees the same picture.
 */
export class PeopleDirectory {
  /**
   * Device names each tracker's MQTT messages came under, whatever became of the message: a stale
   * or malformed one is still retained on the broker under that topic. Not stored: the broker
   * hands the hub every retained message again at start, so what is still there is heard again.
   */
  private readonly heard = new Map<string, Set<string>>();
  /** Tracker usernames across every household: HTTP Basic and MQTT name no household. */
  private readonly usernames = new Map<string, { householdId: string; tracker: string }>();
  private readonly settings = new Map<string, PresenceSettings>();
  /** Creates that pick a person's or a zone's id, one at a time per household (ids are per household). */
  private readonly householdCreates = new KeyedSerial();
  /** Creates that pick a tracker's username, one at a time on the hub (usernames are the hub's). */
  private readonly trackerCreates = new KeyedSerial();

  constructor(
    private readonly options: {
      core: HubCore;
      twins: TwinRegistry;
      store: Store;
      /** The history writer: what it still holds is written before an id is judged unused. */
      history: { flush(): Promise<void> };
    },
  ) {}

  /** Indexes every household's trackers and settings; call once at start. */
  async load(): Promise<void> {
    // The twins already hold every thing (the core loads them before any subsystem starts):
    // reading them all from the store again doubled start-up's work and memory at 100,000 things.
    for (const { thing } of this.options.twins.all()) {
      if (thing.kind !== 'tracker') continue;
      const meta = thing.meta as Partial<TrackerMeta> | undefined;
      if (typeof meta?.username === 'string') {
        this.usernames.set(meta.username, { householdId: thing.householdId, tracker: thing.id });
      }
    }
    for (const household of await this.options.store.listHouseholds()) {
      this.settings.set(household.id, presenceSettingsFrom(household.settings));
    }
  }

  presenceSettings(householdId: string): PresenceSettings {
    return this.settings.get(householdId) ?? presenceSettingsFrom({});
  }

  async updatePresenceSettings(householdId: string, change: Partial<PresenceSettings>): Promise<PresenceSettings> {
    const household = await this.options.store.getHousehold(householdId);
    if (!household) throw notFound(`household ${JSON.stringify(householdId)}`);
    const next = { ...this.presenceSettings(householdId), ...definedOnly(change) };
    if ((next.latitude === undefined) !== (next.longitude === undefined)) {
      throw badRequest('latitude and longitude must be set together');
    }
    await this.options.store.saveHousehold({
      ...household,
      settings: { ...household.settings, presence: { ...next } },
    });
    this.settings.set(householdId, next);
    return next;
  }

  people(householdId: string): Thing[] {
    return this.ofKind(householdId, 'person');
  }

  person(householdId: string, id: string): Thing {
    const thing = this.options.core.getThing(householdId, id);
    if (thing?.kind !== 'person') throw notFound(`person ${JSON.stringify(id)}`);
    return thing;
  }

  /**
   * The household's people who have a tracker, in one pass over its trackers: asked each time the
   * household's presence is published, on every fix.
   */
  peopleWithTrackers(householdId: string): Thing[] {
    const tracked = new Set(this.ofKind(householdId, 'tracker').map((t) => trackerMeta(t)?.person));
    return this.people(householdId).filter((person) => tracked.has(person.id));
  }

  trackersOf(householdId: string, person: string): Thing[] {
    return this.ofKind(householdId, 'tracker').filter((t) => trackerMeta(t)?.person === person);
  }

  /** The tracker a username belongs to, in whichever household. */
  trackerByUsername(username: string): Thing | undefined {
    const entry = this.usernames.get(username);
    return entry ? this.options.core.getThing(entry.householdId, entry.tracker) : undefined;
  }

  passwordHashOf(username: string): string | undefined {
    const tracker = this.trackerByUsername(username);
    return tracker ? trackerMeta(tracker)?.passwordHash : undefined;
  }

  /** Every zone of a household, home first when its location is set. */
  zones(householdId: string): Zone[] {
    const home = homeZone(this.presenceSettings(householdId));
    const others = this.ofKind(householdId, 'zone')
      .map(zoneFromThing)
      .filter((z): z is Zone => z !== null);
    return home ? [home, ...others] : others;
  }

  async createPerson(householdId: string, name: string): Promise<Thing> {
    return this.householdCreates.run(householdId, async () =>
      this.options.core.upsertThing({
        id: await this.freeId(householdId, idFromName(name, 'person', RESERVED_IDS)),
        householdId,
        kind: 'person',
        name,
        adapter: PEOPLE_ADAPTER,
        properties: vocabularyProperties(PERSON_PROPERTIES),
        actions: {},
        meta: {},
      }),
    );
  }

  /**
   * Removes a person and their trackers, and forgets where they went: the history and events of
   * the person and of their trackers are deleted (their removal stays on record). Returns the
   * trackers, whose logins are to be ended.
   */
  async removePerson(householdId: string, id: string): Promise<Thing[]> {
    // In the household's turn: a tracker being added to them meanwhile would outlive them, its
    // login still working.
    return this.householdCreates.run(householdId, async () => {
      this.person(householdId, id);
      const trackers = this.trackersOf(householdId, id);
      for (const tracker of trackers) await this.removeTracker(householdId, tracker.id);
      await this.options.core.removeThing(householdId, id);
      // What the history writer still holds of them is written first, or it would land after.
      await this.options.history.flush();
      for (const thing of [id, ...trackers.map((t) => t.id)])
        await this.options.store.forgetHistory(householdId, thing);
      return trackers;
    });
  }

  /** Creates a tracker and its credentials; the password is returned this once and never again. */
  async createTracker(
    householdId: string,
    person: string,
    name: string,
  ): Promise<{ tracker: Thing; password: string }> {
    this.person(householdId, person);
    const password = newPassword();
    // Hashed before the queue: only picking the username and saving it need to take turns.
    const passwordHash = await hashPassword(password);
    // The household's turn (the person may have been removed while the hash was made, so they are
    // looked up again), then the hub's for the username.
    const create = async () => {
      const owner = this.person(householdId, person);
      const id = this.freeTrackerId(householdId, `${owner.id}-${slugify(name)}`);
      const meta: TrackerMeta = { person: owner.id, username: id, passwordHash };
      const tracker = await this.options.core.upsertThing({
        id,
        householdId,
        kind: 'tracker',
        name,
        adapter: PEOPLE_ADAPTER,
        properties: vocabularyProperties(TRACKER_PROPERTIES),
        actions: {},
        meta: { ...meta },
      });
      this.usernames.set(id, { householdId, tracker: id });
      return { tracker, password };
    };
    return this.householdCreates.run(householdId, () => this.trackerCreates.run('usernames', create));
  }

  /** Removes a tracker; returns its username so cached credentials can be dropped. */
  async removeTracker(householdId: string, id: string): Promise<string> {
    const tracker = this.options.core.getThing(householdId, id);
    const meta = tracker ? trackerMeta(tracker) : undefined;
    if (!tracker || !meta) throw notFound(`tracker ${JSON.stringify(id)}`);
    this.usernames.delete(meta.username);
    await this.options.core.removeThing(householdId, id);
    return meta.username;
  }

  /**
   * Stores a device name an accepted message came under, for the topic its friends see. Written
   * only when the name is new to the tracker: two phones taking turns on one tracker (or one
   * alternating its name) made a write, and a `thing.updated` event, per message.
   */
  async noteDevice(tracker: Thing, device: string): Promise<void> {
    // The thing as it is now: the caller's copy may predate another name, or the tracker's removal.
    const current = this.options.core.getThing(tracker.householdId, tracker.id);
    const meta = current ? trackerMeta(current) : undefined;
    if (!current || !meta) return;
    const devices = storedDevices(meta);
    if (devices.includes(device) || devices.length >= MAX_STORED_DEVICES) return;
    await this.options.core.upsertThing({ ...current, meta: { ...meta, device, devices: [...devices, device] } });
  }

  /** Notes, in memory only, that a tracker's message came in on a device's topic. */
  heardDevice(tracker: Thing, device: string): void {
    const key = `${tracker.householdId}\u0000${tracker.id}`;
    const names = this.heard.get(key) ?? new Set<string>();
    this.heard.set(key, names);
    if (names.size < MAX_HEARD_DEVICES) names.add(device);
  }

  /** Every device name a tracker is known to have used: stored ones and ones heard on the broker. */
  deviceNames(tracker: Thing): string[] {
    const meta = trackerMeta(tracker);
    const heard = this.heard.get(`${tracker.householdId}\u0000${tracker.id}`) ?? [];
    return [...new Set([...(meta ? storedDevices(meta) : []), ...heard])];
  }

  /** Drops what was heard of a removed tracker. */
  forgetDevices(householdId: string, id: string): void {
    this.heard.delete(`${householdId}\u0000${id}`);
  }

  async createZone(householdId: string, zone: NewZone): Promise<Thing> {
    // Made as `home-zone`, it never set `presence.home` (only the household's home does), so a
    // household that made one waited in vain for "anyone home"; with home set it arrived twice.
    if (zone.name.trim().toLowerCase() === HOME_ZONE_ID) {
      throw badRequest(
        `a zone named ${JSON.stringify(zone.name)} would not make anyone home: the home zone is the household's location, set with PUT /api/household`,
      );
    }
    return this.householdCreates.run(householdId, async () =>
      this.saveZone(householdId, await this.freeId(householdId, slugify(zone.name)), zone),
    );
  }

  /** Creates or updates the zone a phone's region maps to (matched by region id, then by name). */
  async importRegion(householdId: string, zone: NewZone): Promise<Thing> {
    // In turn with other creates: two phones sending the same new region at once make one zone.
    return this.householdCreates.run(householdId, () => this.saveRegion(householdId, zone));
  }

  private async saveRegion(householdId: string, zone: NewZone): Promise<Thing> {
    const existing = this.ofKind(householdId, 'zone').find((thing) => {
      const meta = thing.meta as Partial<ZoneMeta> | undefined;
      if (zone.regionId && meta?.regionId) return meta.regionId === zone.regionId;
      return thing.name.toLowerCase() === zone.name.toLowerCase();
    });
    if (existing && (existing.meta as Partial<ZoneMeta> | undefined)?.source !== 'owntracks') {
      throw conflict(`zone ${existing.id} was made in Triad; a phone's region does not replace it`);
    }
    const keep = existing ? zoneFromThing(existing) : null;
    return this.saveZone(householdId, existing?.id ?? (await this.freeId(householdId, slugify(zone.name))), {
      ...zone,
      // Delays are Triad's, not the phone's: an update keeps what the household chose.
      arriveDelay: keep ? keep.arriveDelayMs / 1000 : zone.arriveDelay,
      leaveDelay: keep ? keep.leaveDelayMs / 1000 : zone.leaveDelay,
    });
  }

  async removeZone(householdId: string, id: string): Promise<void> {
    // Listed with the zones, but it is the household's location rather than a zone thing: say so,
    // rather than that a zone GET /api/zones shows does not exist.
    if (id === HOME_ZONE_ID && homeZone(this.presenceSettings(householdId))) {
      throw badRequest("the home zone is the household's location: move or resize it with PUT /api/household");
    }
    const thing = this.options.core.getThing(householdId, id);
    if (thing?.kind !== 'zone') throw notFound(`zone ${JSON.stringify(id)}`);
    await this.options.core.removeThing(householdId, id);
  }

  private saveZone(householdId: string, id: string, zone: NewZone): Promise<Thing> {
    const meta: ZoneMeta = {
      latitude: zone.latitude,
      longitude: zone.longitude,
      radius: zone.radius,
      arriveDelay: zone.arriveDelay,
      leaveDelay: zone.leaveDelay,
      source: zone.source ?? 'api',
      ...(zone.regionId ? { regionId: zone.regionId } : {}),
    };
    return this.options.core.upsertThing({
      id,
      householdId,
      kind: 'zone',
      name: zone.name,
      adapter: PEOPLE_ADAPTER,
      properties: {},
      actions: {},
      meta: { ...meta },
    });
  }

  private ofKind(householdId: string, kind: Thing['kind']): Thing[] {
    return this.options.twins
      .list(householdId)
      .map((twin) => twin.thing)
      .filter((thing) => thing.kind === kind && thing.adapter === PEOPLE_ADAPTER)
      .sort((a, b) => a.id.localeCompare(b.id));
  }

  /**
   * A readable id not yet taken in the household (`alex`, `alex-2`, …), nor left behind by a thing
   * removed earlier. A removed thing's history and events stay stored, and are read by id
   * (`/api/things/{id}/history`, `/api/events?thing=`): a new person given a removed person's id
   * showed the household where that person had been, as their own. Every removal leaves an event
   * (`thing.removed`), so an id with nothing recorded was never used. Call it in the household's
   * turn (householdCreates), or two creates pick the same id.
   */
  private async freeId(householdId: string, base: string): Promise<string> {
    const root = RESERVED_IDS.has(base) ? `${base}-zone` : base;
    // A removal a moment ago may still be in the writer's batch.
    await this.options.history.flush();
    for (let n = 1; ; n++) {
      const id = n === 1 ? root : `${root}-${n}`;
      if (RESERVED_IDS.has(id) || this.options.core.getThing(householdId, id)) continue;
      // Its history (read by the history index) or its removal: not every event kind, since the
      // commands' logs would be read out of every command the household ever sent.
      const recorded = await this.options.store.listEvents({
        householdId,
        thing: id,
        types: ['state', 'thing.removed'],
        limit: 1,
      });
      if (recorded.length === 0) return id;
    }
  }

  /**
   * A tracker's id, which is also its user name: unique across households, since HTTP Basic and
   * the broker's login name no household. It ends in random characters for that reason. Made
   * from the name alone and stepping round names taken (`alex-phone-2`), it told a member of one
   * household which user names other households' phones have: a name their own household does not
   * use came back with a suffix only when someone else did. Now the answer never depends on other
   * households: a clash (one in 16 million per tracker of the same name) draws again, and the name
   * it gives looks the same either way.
   */
  private freeTrackerId(householdId: string, base: string): string {
    // Within the 128 characters a path takes as an id: a long person id and a long tracker name
    // made a tracker no route could name, so it could not be removed.
    const stem = base.slice(0, MAX_ID_LENGTH - 7).replace(/-+$/, '');
    for (;;) {
      const id = `${stem}-${randomBytes(3).toString('hex')}`;
      if (!this.usernames.has(id) && !this.options.core.getThing(householdId, id)) return id;
    }
  }
}

/** The longest id the API's paths take (their `maxLength`). */
const MAX_ID_LENGTH = 128;

export function trackerMeta(thing: Thing): TrackerMeta | undefined {
  const meta = thing.meta as Partial<TrackerMeta> | undefined;
  if (thing.kind !== 'tracker' || typeof meta?.person !== 'string' || typeof meta.username !== 'string')
    return undefined;
  if (typeof meta.passwordHash !== 'string') return undefined;
  return meta as TrackerMeta;
}

/** The device names stored for a tracker; data from before the list kept only `device`. */
function storedDevices(meta: TrackerMeta): string[] {
  const devices = Array.isArray(meta.devices) ? meta.devices.filter((d) => typeof d === 'string') : [];
  if (meta.device && !devices.includes(meta.device)) devices.push(meta.device);
  return devices;
}

function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
