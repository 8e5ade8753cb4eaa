import type { Bus } from '../core/bus.ts';
import type { Clock } from '../core/clock.ts';
import type { HubCore } from '../core/core.ts';
import type { Report } from '../core/events.ts';
import { newId } from '../core/ids.ts';
import type { PeopleDirectory } from './directory.ts';
import type { PresenceChange, PresenceTracker } from './presence.ts';
import { HOME_ZONE_ID } from './zones.ts';

/** The household thing every household has (see core/households.ts). */
const HOUSEHOLD_THING = 'household';
const SOURCE = 'people';

export interface HouseholdPresenceOptions {
  core: HubCore;
  bus: Bus;
  clock: Clock;
  directory: PeopleDirectory;
  tracker: PresenceTracker;
}

/**
 * Turns decided presence into state automations use: each person's `presence.zone` and
 * `presence.home`, the household's `presence.anyone_home` and `presence.everyone_away`, and the
 * moments that matter as events: `presence.arrived`, `presence.left`, `presence.first_arrived`
 * (the house was empty) and `presence.last_left` (the house is now empty).
 */
export class HouseholdPresence {
  constructor(private readonly options: HouseholdPresenceOptions) {}

  /** Called for every change the tracker decides. */
  onChange(change: PresenceChange): void {
    const { householdId, person, zone, inside } = change;
    const wasAnyoneHome = this.anyoneHome(householdId);
    this.publishPerson(householdId, person);
    this.announce(inside ? 'presence.arrived' : 'presence.left', householdId, person, { zone });
    if (zone === HOME_ZONE_ID) {
      const isAnyoneHome = this.anyoneHome(householdId);
      if (inside && !wasAnyoneHome) this.announce('presence.first_arrived', householdId, person, {});
      if (!inside && wasAnyoneHome && !isAnyoneHome) this.announce('presence.last_left', householdId, person, {});
    }
    this.publishHousehold(householdId);
  }

  /** Writes a person's presence from what the tracker holds; unchanged values make no events. */
  publishPerson(householdId: string, person: string): void {
    const { core, tracker, directory } = this.options;
    const zones = new Map(directory.zones(householdId).map((z) => [z.id, z]));
    const inside = tracker.zonesOf(householdId, person).filter((id) => zones.has(id));
    const home = inside.includes(HOME_ZONE_ID);
    // Home wins; otherwise the smallest zone, the most specific place someone can be said to be.
    const zone = home
      ? HOME_ZONE_ID
      : (inside.sort((a, b) => (zones.get(a)?.radius ?? 0) - (zones.get(b)?.radius ?? 0))[0] ?? null);
    const ts = this.options.clock.now();
    const reports: Report[] = [
      { householdId, thing: person, property: 'presence.zone', value: zone, ts, source: SOURCE },
      { householdId, thing: person, property: 'presence.home', value: home, ts, source: SOURCE },
    ];
    core.ingest(reports);
  }

  /**
   * Anyone home: at least one person is home. Everyone away: there are people and each of them is
   * known to be away; someone whose phone has never reported is not counted as away. Only people
   * with a tracker count (see trackedPeople).
   */
  publishHousehold(householdId: string): void {
    const { core } = this.options;
    if (!core.getThing(householdId, HOUSEHOLD_THING)) return;
    const people = this.trackedPeople(householdId);
    const homes = people.map((p) => core.getValue(householdId, p.id, 'presence.home'));
    const ts = this.options.clock.now();
    core.ingest([
      {
        householdId,
        thing: HOUSEHOLD_THING,
        property: 'presence.anyone_home',
        value: homes.some((h) => h === true),
        ts,
        source: SOURCE,
      },
      {
        householdId,
        thing: HOUSEHOLD_THING,
        property: 'presence.everyone_away',
        value: people.length > 0 && homes.every((h) => h === false),
        ts,
        source: SOURCE,
      },
    ]);
  }

  private anyoneHome(householdId: string): boolean {
    const { core } = this.options;
    return this.trackedPeople(householdId).some((p) => core.getValue(householdId, p.id, 'presence.home') === true);
  }

  /**
   * The people the household's presence rests on. One without a tracker (their last one removed)
   * kept their last presence for good, with nothing left that could change it: "anyone home"
   * never cleared. Their own presence stays as last decided, as a person's whose trackers went
   * stale does, but it is no evidence about the household.
   */
  private trackedPeople(householdId: string) {
    return this.options.directory.peopleWithTrackers(householdId);
  }

  private announce(
    type: `presence.${string}`,
    householdId: string,
    person: string,
    data: Record<string, unknown>,
  ): void {
    const { bus, clock, core } = this.options;
    const name = core.getThing(householdId, person)?.name ?? person;
    bus.publish({
      type,
      id: newId(clock.now(), 'evt_'),
      householdId,
      ts: clock.now(),
      thing: person,
      data: { person, name, ...data },
    });
  }
}
