import type { Twin } from '../core/twin.ts';
import type { Thing } from '../model/thing.ts';
import { trackerMeta } from './directory.ts';
import { cardPayload, type FriendLocation, locationPayload, trackerIdFor } from './owntracks.ts';
import { HOME_ZONE_ID, type PresenceSettings, type Zone, zoneFromThing } from './zones.ts';

const iso = (ms: number) => new Date(ms).toISOString();

/**
 * A detail of the latest fix (accuracy, speed, heading), or null when that fix did not have it: a
 * fix without one (iOS sends `vel: -1` when it does not know) leaves the older value in the
 * state, and someone at home must not show the 50 km/h of their drive there.
 */
export function ofLatestFix(twin: Twin, property: string): unknown {
  const fix = twin.state.get('location.latitude');
  const detail = twin.state.get(property);
  return fix && detail && detail.ts >= fix.ts ? detail.value : null;
}

/**
 * A person as the API shows them: presence, position and trackers (never their credentials).
 * `presence.lastReport` is the newest fix from any of their trackers and `presence.stale` whether
 * it is older than the household's `staleAfter` (see staleness.ts): presence itself stays as last
 * decided, this says how old the evidence is.
 */
export function personView(
  person: Twin,
  trackers: Twin[],
  report: { lastReport: number | null; stale: boolean } = { lastReport: null, stale: false },
  isStale: (tracker: string) => boolean = () => false,
) {
  const value = (twin: Twin, property: string) => twin.state.get(property)?.value ?? null;
  const latitude = person.state.get('location.latitude');
  return {
    id: person.thing.id,
    name: person.thing.name,
    presence: {
      zone: value(person, 'presence.zone'),
      home: value(person, 'presence.home'),
      lastReport: report.lastReport === null ? null : iso(report.lastReport),
      stale: report.stale,
    },
    location: latitude
      ? {
          latitude: latitude.value,
          longitude: value(person, 'location.longitude'),
          accuracy: ofLatestFix(person, 'location.accuracy'),
          speed: ofLatestFix(person, 'location.speed'),
          heading: ofLatestFix(person, 'location.heading'),
          ts: iso(latitude.ts),
        }
      : null,
    trackers: trackers.map((tracker) => trackerView(tracker, isStale(tracker.thing.id))),
  };
}

export function trackerView(tracker: Twin, stale = false) {
  const meta = trackerMeta(tracker.thing);
  const seen = tracker.state.get('location.latitude');
  return {
    id: tracker.thing.id,
    name: tracker.thing.name,
    person: meta?.person ?? null,
    username: meta?.username ?? null,
    device: meta?.device ?? null,
    online: tracker.online,
    battery: tracker.state.get('battery.level')?.value ?? null,
    lastSeen: seen ? iso(seen.ts) : null,
    /** No fix within the household's `staleAfter`: offline for that reason. */
    stale,
  };
}

export function zoneView(zone: Zone, thing?: Thing) {
  return {
    id: zone.id,
    name: zone.name,
    latitude: zone.latitude,
    longitude: zone.longitude,
    radius: zone.radius,
    arriveDelay: zone.arriveDelayMs / 1000,
    leaveDelay: zone.leaveDelayMs / 1000,
    source: zone.id === HOME_ZONE_ID ? 'household' : ((thing?.meta?.source as string | undefined) ?? 'api'),
  };
}

export function zoneViewOfThing(thing: Thing) {
  const zone = zoneFromThing(thing);
  return zone ? zoneView(zone, thing) : null;
}

export function householdView(id: string, name: string, settings: PresenceSettings, household: Twin | undefined) {
  return {
    id,
    name,
    latitude: settings.latitude ?? null,
    longitude: settings.longitude ?? null,
    homeRadius: settings.homeRadius,
    arriveDelay: settings.arriveDelay,
    leaveDelay: settings.leaveDelay,
    accuracyLimit: settings.accuracyLimit,
    importWaypoints: settings.importWaypoints,
    staleAfter: settings.staleAfter,
    presence: {
      anyoneHome: household?.state.get('presence.anyone_home')?.value ?? null,
      everyoneAway: household?.state.get('presence.everyone_away')?.value ?? null,
    },
  };
}

/**
 * What a phone in HTTP mode gets back: every other person's last position, each as an OwnTracks
 * `location` with a `card` naming them. One contact per person (topic `owntracks/<person>/triad`),
 * whichever of their trackers the position came from.
 */
export function friendsPayload(people: Twin[], except: string): Array<Record<string, unknown>> {
  const messages: Array<Record<string, unknown>> = [];
  for (const person of people) {
    if (person.thing.id === except) continue;
    const latitude = person.state.get('location.latitude');
    const longitude = person.state.get('location.longitude')?.value;
    if (!latitude || typeof longitude !== 'number') continue;
    const topic = `owntracks/${person.thing.id}/triad`;
    const tid = trackerIdFor(person.thing.name);
    const friend: FriendLocation = { topic, tid, latitude: latitude.value as number, longitude, ts: latitude.ts };
    const accuracy = ofLatestFix(person, 'location.accuracy');
    if (typeof accuracy === 'number') friend.accuracy = accuracy;
    const speed = ofLatestFix(person, 'location.speed');
    if (typeof speed === 'number') friend.speed = speed;
    const heading = ofLatestFix(person, 'location.heading');
    if (typeof heading === 'number') friend.heading = heading;
    messages.push(cardPayload(topic, tid, person.thing.name), locationPayload(friend));
  }
  return messages;
}
