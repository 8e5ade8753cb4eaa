import type { Clock } from '../core/clock.ts';
import type { HubCore } from '../core/core.ts';
import type { Report } from '../core/events.ts';
import type { Logger } from '../core/log.ts';
import type { TwinRegistry } from '../core/twin.ts';
import type { Thing } from '../model/thing.ts';
import { type PeopleDirectory, trackerMeta } from './directory.ts';
import type { HouseholdPresence } from './household.ts';
import type {
  LastWillMessage,
  LocationMessage,
  OwnTracksMessage,
  PhoneFix,
  TransitionMessage,
  WaypointMessage,
} from './owntracks.ts';
import { timestampProblem } from './owntracks.ts';
import type { PresenceTracker } from './presence.ts';
import type { ReportAge } from './staleness.ts';
import { ofLatestFix } from './views.ts';
import { HOME_ZONE_ID, judgeFix, type ZoneEvidence } from './zones.ts';

/** What became of one message: acted on, or why not. Rejected messages change nothing. */
export type Outcome =
  | { accepted: true; note?: string }
  | { accepted: false; severity: 'invalid' | 'ignored'; reason: string };

export interface PhoneReceiverOptions {
  core: HubCore;
  twins: TwinRegistry;
  clock: Clock;
  log: Logger;
  directory: PeopleDirectory;
  tracker: PresenceTracker;
  household: HouseholdPresence;
  reports: ReportAge;
  /** Whether a phone has a connection open on the hub's broker now (false with another broker). */
  isConnected?: (username: string) => boolean;
}

const ignore = (reason: string): Outcome => ({ accepted: false, severity: 'ignored', reason });

/**
 * Acts on what a tracker reports, whichever way it arrived (HTTP, MQTT, a car): checks the
 * time, refuses replays, records the tracker's position, moves its person when the fix is the
 * freshest good one, and hands zone evidence to the presence tracker.
 */
export class PhoneReceiver {
  /** The newest fix time accepted per tracker; seeded from the twin so replays stay refused after a restart. */
  private readonly lastAccepted = new Map<string, number>();
  /**
   * The newest transition time taken per tracker. A transition is evidence like a fix: one
   * delivered late (a leave taken, then an older enter) moved the person back to where they were.
   * Kept in memory only; after a restart the last fix's time still bounds them.
   */
  private readonly lastTransition = new Map<string, number>();
  /**
   * The stamps of fixes, and of transitions, taken ahead of the hub's clock, per tracker. Such a
   * message is taken at the time it came (a phone whose clock ran fast, then NTP put right, went
   * silent until real time caught up with its stamp); these keep a resend of it a replay. Each
   * holds only stamps still ahead of the newest taken, so a few minutes' worth of seconds at most.
   */
  private readonly fixesAhead = new Map<string, Set<number>>();
  private readonly transitionsAhead = new Map<string, Set<number>>();

  constructor(private readonly options: PhoneReceiverOptions) {}

  receive(tracker: Thing, message: OwnTracksMessage): Promise<Outcome> | Outcome {
    switch (message.type) {
      case 'location':
        return this.receiveFix(tracker, message, message.battery);
      case 'transition':
        return this.receiveTransition(tracker, message);
      case 'waypoint':
        return this.importRegions(tracker, [message]);
      case 'waypoints':
        return this.importRegions(tracker, message.waypoints, message.notCircles);
      case 'lwt':
        return this.receiveLastWill(tracker, message);
    }
  }

  /**
   * The broker publishes a phone's last will once the connection it was left on is gone, which
   * can be after the phone came back on another connection and reported from it: taken then, it
   * showed the phone offline until its next fix, hours away for one lying still. Its `tst` is when
   * its connection was made. The phone's messages on that same connection are newer than that as
   * well, so only together with a connection open now does it tell a will already superseded.
   */
  private receiveLastWill(tracker: Thing, message: LastWillMessage): Outcome {
    const meta = trackerMeta(tracker);
    const newest = Math.max(this.lastAcceptedFor(tracker) ?? 0, this.lastTransition.get(trackerKey(tracker)) ?? 0);
    if (meta && message.ts !== undefined && message.ts < newest && this.options.isConnected?.(meta.username)) {
      return ignore('last will of a connection the phone has since replaced; it is connected again');
    }
    this.options.core.setAvailability(tracker.householdId, tracker.id, false);
    return { accepted: true, note: 'tracker marked offline' };
  }

  /** One position from a tracker; also the entry point for trackers that are not phones (a car). */
  receiveFix(tracker: Thing, sent: PhoneFix | LocationMessage, battery?: number): Outcome {
    const { core, clock, directory } = this.options;
    const meta = trackerMeta(tracker);
    if (!meta) return ignore('not a tracker');
    // What a phone (or a car) without a position sends: taken as a place, it was the sea off
    // Africa, and after the leave delay everyone "left" home. Ignored, not refused: the phone
    // meant no harm, and would otherwise send it again and again.
    if (sent.latitude === 0 && sent.longitude === 0)
      return ignore('lat 0, lon 0 is where a device without a fix says it is');
    const now = clock.now();
    const problem = timestampProblem(sent.ts, now);
    if (problem) return ignore(problem);
    const key = trackerKey(tracker);
    const fix = { ...sent, ts: Math.min(sent.ts, now) };
    const last = this.lastAcceptedFor(tracker);
    if ((last !== undefined && fix.ts <= last) || isAheadReplay(this.fixesAhead, key, sent.ts))
      return ignore('replay: not newer than the last accepted fix');
    // The app sends a transition with the same tst as the location that triggered it, so only an
    // older fix is refused: it would judge the person by where they were before the transition.
    const transition = this.lastTransition.get(key);
    if (transition !== undefined && fix.ts < transition) return ignore('replay: older than the last transition taken');
    this.lastAccepted.set(key, fix.ts);
    rememberAhead(this.fixesAhead, key, sent.ts, fix.ts);

    const source = `owntracks:${tracker.id}`;
    const reports = locationReports(tracker.householdId, tracker.id, fix, source);
    if (battery !== undefined) {
      reports.push({
        householdId: tracker.householdId,
        thing: tracker.id,
        property: 'battery.level',
        value: battery,
        ts: fix.ts,
        source,
      });
    }
    core.ingest(reports);
    // Online, unless even this fix is older than the household's staleAfter.
    this.options.reports.reported(tracker, fix.ts);

    const limit = directory.presenceSettings(tracker.householdId).accuracyLimit;
    if (fix.accuracy !== undefined && fix.accuracy > limit) {
      return {
        accepted: true,
        note: `accuracy ${fix.accuracy} m is worse than the ${limit} m limit; the person did not move`,
      };
    }
    const personTs = this.positionTime(tracker.householdId, meta.person);
    if (personTs !== undefined && fix.ts < personTs) {
      return { accepted: true, note: "another tracker has a fresher fix; the person's position stays" };
    }
    core.ingest(locationReports(tracker.householdId, meta.person, fix, source));
    this.judge(tracker.householdId, meta.person, fix, tracker.id);
    return { accepted: true };
  }

  /** Re-judges a person's current position against every zone (after a zone or home changed). */
  rejudge(householdId: string, person: string): void {
    const twin = this.options.twins.get(householdId, person);
    const latitude = twin?.state.get('location.latitude');
    const longitude = twin?.state.get('location.longitude');
    if (!latitude || !longitude) return;
    // The accuracy of that same fix only: an older fix's would judge this one by the wrong circle.
    const accuracy = twin ? ofLatestFix(twin, 'location.accuracy') : undefined;
    this.judge(householdId, person, {
      latitude: latitude.value as number,
      longitude: longitude.value as number,
      accuracy: typeof accuracy === 'number' ? accuracy : undefined,
    });
  }

  /** `source` is the tracker whose fix this is; none when a person's position is judged again. */
  private judge(
    householdId: string,
    person: string,
    fix: { latitude: number; longitude: number; accuracy?: number },
    source?: string,
  ): void {
    const { core, directory, tracker, household } = this.options;
    let homeEvidence: ZoneEvidence | null = null;
    for (const zone of directory.zones(householdId)) {
      const evidence = judgeFix(zone, fix);
      if (zone.id === HOME_ZONE_ID) homeEvidence = evidence;
      tracker.observe(householdId, person, zone, evidence, source);
    }
    // A person's first fix settles "away" as well as "home", so "everyone away" can become true;
    // but only a fix that says they are out. One at home waiting out the arrive delay, or too
    // vague to tell, settled "away" too, and a household with everyone else out was emptied
    // (`everyone_away`, the alarm) while the newcomer stood in the hall.
    const undecided = core.getValue(householdId, person, 'presence.home') === undefined;
    if (undecided && homeEvidence !== null && homeEvidence !== 'outside') return;
    household.publishPerson(householdId, person);
    household.publishHousehold(householdId);
  }

  /**
   * The phone's own geofence fired. Its region is matched to a zone by region id or name ("Home"
   * is the home zone); the event is evidence like a fix, so it waits out the same delays.
   */
  private receiveTransition(trackerThing: Thing, message: TransitionMessage): Outcome {
    const { clock, directory, tracker } = this.options;
    const meta = trackerMeta(trackerThing);
    if (!meta) return ignore('not a tracker');
    const now = clock.now();
    const problem = timestampProblem(message.ts, now);
    if (problem) return ignore(problem);
    const key = trackerKey(trackerThing);
    // Taken at the time it came when stamped ahead, as a fix is.
    const ts = Math.min(message.ts, now);
    const last = this.lastAcceptedFor(trackerThing);
    // The app sends a transition with the same tst as the location that triggered it, and leaving
    // one region while entering another gives two with the same tst: only older ones are refused.
    if (last !== undefined && ts < last) return ignore('replay: older than the last accepted fix');
    const lastTransition = this.lastTransition.get(key);
    if (
      (lastTransition !== undefined && ts < lastTransition) ||
      isAheadReplay(this.transitionsAhead, key, message.ts)
    ) {
      return ignore('replay: older than the last transition taken');
    }
    // Judged like a fix: the person's other tracker (a watch, the car) may have said since where
    // they are, and a phone's transition delivered late took them back to where they had been.
    const personTs = this.positionTime(trackerThing.householdId, meta.person);
    if (personTs !== undefined && ts < personTs) {
      return ignore('another tracker has a fresher fix than this transition');
    }
    // OwnTracks transitions carry the accuracy of the fix that fired them; a vague one moves no
    // one, as a vague location does not.
    const limit = directory.presenceSettings(trackerThing.householdId).accuracyLimit;
    if (message.accuracy !== undefined && message.accuracy > limit) {
      return ignore(`accuracy ${message.accuracy} m is worse than the ${limit} m limit; the person did not move`);
    }
    const wanted = message.region.toLowerCase();
    const zone = directory.zones(trackerThing.householdId).find((z) => {
      if (message.regionId && this.regionIdOf(trackerThing.householdId, z.id) === message.regionId) return true;
      return z.name.toLowerCase() === wanted || (z.id === HOME_ZONE_ID && wanted === HOME_ZONE_ID);
    });
    if (!zone) return ignore(`no zone matches the region ${JSON.stringify(message.region || message.regionId)}`);
    this.lastTransition.set(key, ts);
    rememberAhead(this.transitionsAhead, key, message.ts, ts);
    const evidence = message.event === 'enter' ? 'inside' : 'outside';
    tracker.observe(trackerThing.householdId, meta.person, zone, evidence, trackerThing.id);
    this.options.household.publishPerson(trackerThing.householdId, meta.person);
    this.options.household.publishHousehold(trackerThing.householdId);
    return { accepted: true, note: `${message.event} ${zone.id}` };
  }

  private async importRegions(
    trackerThing: Thing,
    waypoints: WaypointMessage[],
    notCircles: string[] = [],
  ): Promise<Outcome> {
    const { directory, log } = this.options;
    const { householdId } = trackerThing;
    const settings = directory.presenceSettings(householdId);
    if (!settings.importWaypoints) return ignore('waypoint import is off for this household');
    const imported: string[] = [];
    const notes: string[] = [];
    if (notCircles.length) notes.push(`regions without a radius are not zones: ${notCircles.join(', ')}`);
    for (const waypoint of waypoints) {
      // Every phone has a region named Home. It is the household's home, as a transition naming
      // it is: as a zone of its own it made each arrival home two (home and home-zone).
      if (waypoint.name.toLowerCase() === HOME_ZONE_ID) {
        notes.push(`"${waypoint.name}" is the household's home, set with PUT /api/household`);
        continue;
      }
      try {
        const zone = await directory.importRegion(householdId, {
          name: waypoint.name,
          latitude: waypoint.latitude,
          longitude: waypoint.longitude,
          radius: waypoint.radius,
          arriveDelay: settings.arriveDelay,
          leaveDelay: settings.leaveDelay,
          source: 'owntracks',
          regionId: waypoint.regionId,
        });
        imported.push(zone.id);
      } catch (error) {
        log.info('a region from a phone was not imported', {
          tracker: trackerThing.id,
          region: waypoint.name,
          error: String(error),
        });
      }
    }
    for (const person of directory.people(householdId)) this.rejudge(householdId, person.id);
    return { accepted: true, note: [`zones imported: ${imported.join(', ') || 'none'}`, ...notes].join('; ') };
  }

  private regionIdOf(householdId: string, zone: string): string | undefined {
    const meta = this.options.core.getThing(householdId, zone)?.meta;
    return typeof meta?.regionId === 'string' ? meta.regionId : undefined;
  }

  private lastAcceptedFor(tracker: Thing): number | undefined {
    const key = trackerKey(tracker);
    if (!this.lastAccepted.has(key)) {
      const seen = this.positionTime(tracker.householdId, tracker.id);
      if (seen !== undefined) this.lastAccepted.set(key, seen);
    }
    return this.lastAccepted.get(key);
  }

  /** When a thing's position was last reported, from the twin. */
  private positionTime(householdId: string, thing: string): number | undefined {
    return this.options.twins.get(householdId, thing)?.state.get('location.latitude')?.ts;
  }

  forgetTracker(householdId: string, id: string): void {
    this.lastAccepted.delete(`${householdId}\u0000${id}`);
    this.lastTransition.delete(`${householdId}\u0000${id}`);
    this.fixesAhead.delete(`${householdId}\u0000${id}`);
    this.transitionsAhead.delete(`${householdId}\u0000${id}`);
  }
}

const trackerKey = (tracker: Thing) => `${tracker.householdId}\u0000${tracker.id}`;

/** Whether `stamp` is that of a message already taken ahead of the hub's clock. */
function isAheadReplay(ahead: Map<string, Set<number>>, key: string, stamp: number): boolean {
  return ahead.get(key)?.has(stamp) ?? false;
}

/**
 * Notes a message stamped ahead and taken at `taken`. Stamps no longer ahead of the newest taken
 * are dropped: the ordinary "not newer" check refuses them now.
 */
function rememberAhead(ahead: Map<string, Set<number>>, key: string, stamp: number, taken: number): void {
  const stamps = ahead.get(key) ?? new Set<number>();
  for (const old of stamps) if (old < taken) stamps.delete(old);
  if (stamp > taken) stamps.add(stamp);
  if (stamps.size) ahead.set(key, stamps);
  else ahead.delete(key);
}

function locationReports(householdId: string, thing: string, fix: PhoneFix, source: string): Report[] {
  const values: Array<[string, number | undefined]> = [
    ['location.latitude', fix.latitude],
    ['location.longitude', fix.longitude],
    ['location.accuracy', fix.accuracy],
    ['location.speed', fix.speed],
    ['location.heading', fix.heading],
  ];
  return values
    .filter((entry): entry is [string, number] => entry[1] !== undefined)
    .map(([property, value]) => ({ householdId, thing, property, value, ts: fix.ts, source }));
}
