import type { Bus } from '../core/bus.ts';
import type { Clock } from '../core/clock.ts';
import type { StateChanged } from '../core/events.ts';
import { newId } from '../core/ids.ts';
import type { Logger } from '../core/log.ts';
import type { TwinRegistry } from '../core/twin.ts';
import { distanceMetres, type GeoPoint } from '../people/geo.ts';
import { walkHistory } from '../store/history-walk.ts';
import type { Store } from '../store/store.ts';

export const TRIP_EVENT = 'vehicle.trip';

export interface RoutePoint extends GeoPoint {
  ts: string;
}

/** What a finished trip records (the `data` of a `vehicle.trip` event). */
export interface TripRecord {
  start: string;
  end: string;
  durationS: number;
  distanceM: number;
  energyKwh: number | null;
  startLevel: number | null;
  endLevel: number | null;
  averageSpeedKmh: number;
  from: GeoPoint | null;
  to: GeoPoint | null;
  route: RoutePoint[];
}

interface Snapshot {
  ts: number;
  odometer: number | null;
  consumed: number | null;
  level: number | null;
  capacity: number | null;
  position: GeoPoint | null;
}

interface Trip {
  start: Snapshot;
  stop: Snapshot | null;
  cancelEnd: (() => void) | null;
  /** While history is replayed (see resume): when the stop's grace runs out, in history's time. */
  endsAt: number | null;
  route: RoutePoint[];
  travelled: number;
  /** The route's last point, if a position report made it, and the step to it (see apply). */
  lastFix: { point: RoutePoint; step: number } | null;
  /** The odometer and consumed-energy counter as read along the way, from their first reading. */
  counters: Partial<Record<CountedField, CounterReadings>>;
  /** Whether a counter going back has been logged for this trip (once is enough). */
  warned: boolean;
  /** The charge it used driving (see countCharge), for a car with no consumed-energy counter. */
  charge: ChargeUse | null;
}

/** A trip's charge: the last level read, and the % it has used on the road so far. */
interface ChargeUse {
  last: number;
  used: number;
}

/**
 * How far back resume replays history when no finished trip is more recent; a car that was on the
 * road before then is replayed from when it set off.
 */
const RESUME_LOOKBACK_MS = 24 * 3600_000;
type Reader = (householdId: string, thing: string, property: string) => unknown;

/** What a trip reads of its car: the state a replay starts from. */
const TRIP_PROPERTIES = [
  'vehicle.moving',
  'location.speed',
  'location.latitude',
  'location.longitude',
  'vehicle.odometer',
  'vehicle.consumed_energy',
  'battery.level',
  'battery.capacity',
];

/** The numbers a trip's start reads, by the property they come from. */
const START_FIELDS: Record<string, 'odometer' | 'consumed' | 'level' | 'capacity'> = {
  'vehicle.odometer': 'odometer',
  'vehicle.consumed_energy': 'consumed',
  'battery.level': 'level',
  'battery.capacity': 'capacity',
};

/** The counters a trip measures itself by, by the property they come from. */
type CountedField = 'odometer' | 'consumed';
const COUNTED: Record<string, CountedField> = { 'vehicle.odometer': 'odometer', 'vehicle.consumed_energy': 'consumed' };
/** Faster than this (per hour) a counter's jump up is suspect (CounterReadings): 500 km/h, 1 MW. */
export const FASTEST_PER_HOUR = { odometer: 500_000, consumed: 1_000, charged: 1_000 } as const;

/** A stop shorter than this (lights, a queue, dropping someone off) does not end a trip. */
export const DEFAULT_STOP_GRACE_MS = 3 * 60_000;
const MAX_ROUTE_POINTS = 2000;
/** Shorter than this, a drive is a nudge in the driveway, not a trip. */
const MIN_TRIP_M = 100;
const POINT_EVERY_M = 50;

/**
 * Cuts a car's signals into trips: one starts when the car moves, and ends when it has stood still
 * for the grace period, measured from the moment it stopped. Distance comes from the odometer,
 * energy from the battery's consumed-energy counter (or, when a car has none, the charge it used
 * on the road: countCharge); either counter going back mid-trip (a reset) counts on from its new
 * reading (CounterReadings).
 */
export class TripRecorder {
  private readonly trips = new Map<string, Trip>();
  private unsubscribe: (() => void) | null = null;
  private readonly live: Reader = (householdId, thing, property) =>
    this.options.twins.value(householdId, thing, property);
  private readonly liveBefore: Reader = (householdId, thing, property) =>
    this.options.twins.valueBefore(householdId, thing, property);
  /** Where values are read: the live twin, or, while history is replayed, the state it had then. */
  private read = this.live;
  /**
   * How a trip's start reads the car: as it stood before the report that set it moving. Live, the
   * whole report is in the twin when its changes are heard, and a car heard of again after it set
   * off unheard (out of reach) is at its new odometer and place already: its trip starts where it
   * was last heard of, not there. In a replay, history's points come one at a time: `read`.
   */
  private readBefore = this.liveBefore;
  private replaying = false;

  constructor(
    private readonly options: { bus: Bus; clock: Clock; twins: TwinRegistry; stopGraceMs?: number; log?: Logger },
  ) {}

  start(): void {
    this.unsubscribe = this.options.bus.subscribe((event) => {
      if (event.type === 'state') this.onState(event);
      if (event.type === 'thing.removed') this.forget(`${event.householdId}\u0000${event.thing}`);
    });
  }

  stop(): void {
    this.unsubscribe?.();
    for (const trip of this.trips.values()) trip.cancelEnd?.();
    this.trips.clear();
  }

  /**
   * A car detached mid-trip takes its trip with it: left open, the next car attached under its
   * name carried it on, from the old car's start, odometer and place.
   */
  private forget(key: string): void {
    this.trips.get(key)?.cancelEnd?.();
    this.trips.delete(key);
  }

  /**
   * Picks up, from history, the trips that were under way when the hub stopped: a car that was
   * driving then is still on the same trip, and one that stopped before the restart has its trip
   * ended where it stopped (at once, if the grace period ran out while the hub was down). Without
   * this, a restart mid-drive lost the whole trip: the car's "moving" was already true, so no
   * change started a new one. Replays each vehicle's state changes since its last recorded trip
   * ended (at most a day back, unless the car was on the road then: from when it set off) through
   * the same rules as live ones. Call before start().
   */
  async resume(store: Store, householdIds: string[]): Promise<void> {
    const now = this.options.clock.now();
    for (const householdId of householdIds) {
      const vehicles = this.options.twins.list(householdId).filter((twin) => twin.thing.kind === 'vehicle');
      if (vehicles.length === 0) continue;
      const since = now - RESUME_LOOKBACK_MS;
      for (const { thing } of vehicles) {
        // The newest recorded trip is the one the car was on or ended last: only its end matters.
        const [latest] = await store.listEvents({
          householdId,
          types: [TRIP_EVENT],
          thing: thing.id,
          since,
          newest: true,
          limit: 1,
        });
        // Not before the car was attached: a car detached under this name before it left history of
        // its own, which must not join this one's trip.
        const attached = Date.parse(thing.createdAt);
        let from = Number.isFinite(attached) ? Math.max(since, attached) : since;
        const end = Date.parse(String((latest as { data?: { end?: unknown } } | undefined)?.data?.end));
        if (Number.isFinite(end)) from = Math.max(from, end + 1);
        // A car on the road and unheard of for longer than the look-back (out of reach, or the hub
        // down that long) is still on the trip it set off on: the replay starts where it set off.
        const setOff = await this.setOffBefore(store, householdId, thing.id, from);
        if (setOff !== null && !(setOff <= end) && !(setOff < attached)) from = setOff;
        await this.replay(store, householdId, thing.id, from, now);
      }
    }
  }

  /** When the car set off, if history has it moving just before `from`; null if it was not. */
  private async setOffBefore(store: Store, householdId: string, thing: string, from: number): Promise<number | null> {
    const before = await store.valuesBefore(householdId, from, {
      thing,
      properties: ['vehicle.moving', 'location.speed'],
    });
    const moving = before.find((value) => value.property === 'vehicle.moving');
    if (moving) return moving.value === true ? moving.ts : null;
    const speed = before.find((value) => value.property === 'location.speed');
    return Number(speed?.value ?? 0) > 0 ? (speed as { ts: number }).ts : null;
  }

  private async replay(store: Store, householdId: string, thing: string, from: number, now: number): Promise<void> {
    const values = new Map<string, unknown>();
    for (const value of await store.valuesBefore(householdId, from, { thing, properties: TRIP_PROPERTIES })) {
      values.set(value.property, value.value);
    }
    this.read = (h, t, property) => (h === householdId && t === thing ? values.get(property) : undefined);
    this.readBefore = this.read;
    this.replaying = true;
    const key = `${householdId}\u0000${thing}`;
    try {
      await walkHistory(store, { householdId, thing, from, to: now }, (point) => {
        if (point.property === undefined) return;
        const trip = this.trips.get(key);
        // A stop whose grace ran out before this point ended its trip then.
        if (trip && trip.endsAt !== null && point.ts >= trip.endsAt) this.finish(key, householdId, thing);
        values.set(point.property, point.value);
        this.apply(householdId, thing, point.property, point.ts);
      });
    } finally {
      this.read = this.live;
      this.readBefore = this.liveBefore;
      this.replaying = false;
    }
    // What history leaves open carries on live: a drive goes on, a stop waits out what is left of
    // its grace (nothing, if it ran out while the hub was down).
    const trip = this.trips.get(key);
    if (!trip || trip.endsAt === null) return;
    const endsAt = trip.endsAt;
    trip.endsAt = null;
    if (endsAt <= now) this.finish(key, householdId, thing);
    else trip.cancelEnd = this.options.clock.setTimeout(() => this.finish(key, householdId, thing), endsAt - now);
  }

  private onState(event: StateChanged): void {
    this.apply(event.householdId, event.thing, event.property, event.ts);
  }

  private apply(householdId: string, thing: string, property: string, ts: number): void {
    const twin = this.options.twins.get(householdId, thing);
    if (twin?.thing.kind !== 'vehicle') return;
    const key = `${householdId}\u0000${thing}`;
    const trip = this.trips.get(key);
    if (property === 'vehicle.moving' || property === 'location.speed') {
      const moving = this.isMoving(householdId, thing);
      if (moving && !trip) {
        const start = this.snapshot(householdId, thing, ts, this.readBefore);
        const route = start.position ? [{ ...start.position, ts: iso(ts) }] : [];
        const counters: Trip['counters'] = {};
        if (start.odometer !== null) counters.odometer = this.counter('odometer', start.odometer, ts);
        if (start.consumed !== null) counters.consumed = this.counter('consumed', start.consumed, ts);
        this.trips.set(key, {
          start,
          stop: null,
          cancelEnd: null,
          endsAt: null,
          route,
          travelled: 0,
          lastFix: null,
          counters,
          warned: false,
          charge: start.level === null ? null : { last: start.level, used: 0 },
        });
      } else if (moving && trip?.stop) {
        trip.cancelEnd?.();
        trip.cancelEnd = null;
        trip.endsAt = null;
        trip.stop = null;
      } else if (!moving && trip && !trip.stop) {
        trip.stop = this.snapshot(householdId, thing, ts);
        const grace = this.options.stopGraceMs ?? DEFAULT_STOP_GRACE_MS;
        if (this.replaying) trip.endsAt = ts + grace;
        else trip.cancelEnd = this.options.clock.setTimeout(() => this.finish(key, householdId, thing), grace);
      }
      return;
    }
    if (trip) this.fillStart(trip, householdId, thing, property);
    if (trip && COUNTED[property]) this.count(trip, householdId, thing, property, ts);
    if (trip && property === 'battery.level') this.countCharge(trip, householdId, thing);
    if (trip && !trip.stop && (property === 'location.latitude' || property === 'location.longitude')) {
      const position = this.position(householdId, thing);
      if (!position) return;
      // A car sends a fix's latitude and longitude apart (over VISS, each is a subscription of its
      // own), stamped alike: the second half moves the point the first made, rather than adding a
      // corner that made a car with no odometer drive up to 41 % further than it did.
      const fix = trip.lastFix;
      if (fix && fix.point === trip.route.at(-1) && fix.point.ts === iso(ts)) {
        trip.route.pop();
        trip.travelled -= fix.step;
      }
      trip.lastFix = null;
      const last = trip.route.at(-1);
      const step = last ? distanceMetres(last, position) : 0;
      if (last && step < POINT_EVERY_M) return;
      trip.travelled += step;
      const point = { ...position, ts: iso(ts) };
      trip.route.push(point);
      trip.lastFix = { point, step };
      // A very long drive keeps its shape at half the resolution rather than growing without end.
      if (trip.route.length > MAX_ROUTE_POINTS) trip.route = trip.route.filter((_, i) => i % 2 === 0);
    }
  }

  /**
   * The trip a car is on, as far as it has come: what a finished trip records, with no end yet
   * (`end: null`, `underWay: true`), measured to now. A car that has stopped but not yet for the
   * grace period is still on it. Null when it is on none.
   */
  underWay(householdId: string, thing: string): (Omit<TripRecord, 'end'> & { end: null; underWay: true }) | null {
    const trip = this.trips.get(`${householdId}\u0000${thing}`);
    if (!trip) return null;
    const now = trip.stop ?? this.snapshot(householdId, thing, Math.max(trip.start.ts, this.options.clock.now()));
    const route = [...trip.route];
    if (now.position && !sameSpot(route.at(-1), now.position)) route.push({ ...now.position, ts: iso(now.ts) });
    const record = this.record(trip, now, route);
    // Not yet a trip: a nudge in the driveway is never recorded, so it is not listed either.
    if (record.distanceM < MIN_TRIP_M) return null;
    return { ...record, end: null, underWay: true };
  }

  private finish(key: string, householdId: string, thing: string): void {
    const trip = this.trips.get(key);
    this.trips.delete(key);
    if (!trip?.stop) return;
    const { stop } = trip;
    if (stop.position && !sameSpot(trip.route.at(-1), stop.position)) {
      trip.route.push({ ...stop.position, ts: iso(stop.ts) });
    }
    const record = this.record(trip, stop, trip.route);
    // A nudge in the driveway is not a trip.
    if (record.distanceM < MIN_TRIP_M) return;
    this.options.bus.publish({
      type: TRIP_EVENT,
      id: newId(this.options.clock.now(), 'evt_'),
      householdId,
      ts: stop.ts,
      cause: null,
      thing,
      data: { ...record },
    });
  }

  /** A trip from its start to `stop` (where it ended, or where the car is now). */
  private record(trip: Trip, stop: Snapshot, route: RoutePoint[]): TripRecord {
    const { start } = trip;
    const { odometer, consumed } = trip.counters;
    // An odometer that went back (a cluster replaced, a reset, a wrong reading) counts on from its
    // new reading rather than taking the trip back to nothing.
    const distanceM =
      odometer && stop.odometer !== null ? Math.round(odometer.total(stop.odometer)) : Math.round(trip.travelled);
    const durationS = Math.max(0, (stop.ts - start.ts) / 1000);
    const energyKwh =
      consumed && stop.consumed !== null
        ? round(consumed.total(stop.consumed), 3)
        : trip.charge && stop.capacity !== null
          ? round((Math.max(0, trip.charge.used) / 100) * stop.capacity, 3)
          : null;
    return {
      start: iso(start.ts),
      end: iso(stop.ts),
      durationS: Math.round(durationS),
      distanceM,
      energyKwh,
      startLevel: start.level,
      endLevel: stop.level,
      averageSpeedKmh: durationS > 0 ? round(distanceM / 1000 / (durationS / 3600), 1) : 0,
      from: start.position,
      to: stop.position,
      route,
    };
  }

  /**
   * Takes a reading of the odometer or the consumed-energy counter into the trip's count. While the
   * car stands in a stop's grace the count waits: the stop measured the trip to there, and the next
   * reading on the road counts from the last one before it. A reading that goes back is taken at
   * once even then (a car restarted at a standstill comes back with its new cluster's reading), so
   * the drive on counts from it rather than losing its first stretch.
   */
  private count(trip: Trip, householdId: string, thing: string, property: string, ts: number): void {
    const field = COUNTED[property];
    const value = this.read(householdId, thing, property);
    if (typeof value !== 'number' || !Number.isFinite(value)) return;
    const counter = trip.counters[field];
    if (!counter) {
      trip.counters[field] = this.counter(field, value, ts);
      return;
    }
    if (trip.stop && value >= counter.latest) return;
    if (!counter.read(value, ts) || trip.warned) return;
    trip.warned = true;
    this.options.log?.warn('a car counter went back mid-trip; the trip counts on from the new reading', {
      householdId,
      thing,
      property,
      reading: value,
    });
  }

  private counter(field: CountedField, first: number, at: number): CounterReadings {
    return new CounterReadings(first, { at, perHour: FASTEST_PER_HOUR[field] });
  }

  /**
   * Takes a reading of the charge into what the trip used, for a car with no consumed-energy
   * counter. The charge also rises on a trip: regenerating on the road takes off what the drive
   * used (a trip downhill uses nothing, never less), and charging at a stop within the grace takes
   * nothing off, so the drive on counts from the new charge. Without this, a trip's energy was its
   * start's charge less its end's, negative for a car that arrived with more than it set off with.
   */
  private countCharge(trip: Trip, householdId: string, thing: string): void {
    const value = this.read(householdId, thing, 'battery.level');
    if (typeof value !== 'number' || !Number.isFinite(value)) return;
    if (!trip.charge) trip.charge = { last: value, used: 0 };
    // Standing, like the counters: a drop waits for the drive on, a rise (a charge) is taken at once.
    else if (trip.stop) trip.charge.last = Math.max(trip.charge.last, value);
    else {
      trip.charge.used += trip.charge.last - value;
      trip.charge.last = value;
    }
  }

  /**
   * A trip that started before the car's other signals were known (the hub attached to a car
   * already on the road) takes the first reading of each as its start: without it, the trip's
   * energy stayed unknown and its distance came from the sparse route instead of the odometer.
   */
  private fillStart(trip: Trip, householdId: string, thing: string, property: string): void {
    const field = START_FIELDS[property];
    if (field) {
      const value = this.read(householdId, thing, property);
      if (trip.start[field] === null && typeof value === 'number') trip.start[field] = value;
      return;
    }
    if (trip.start.position !== null || (property !== 'location.latitude' && property !== 'location.longitude')) return;
    trip.start.position = this.position(householdId, thing);
  }

  private isMoving(householdId: string, thing: string): boolean {
    const moving = this.read(householdId, thing, 'vehicle.moving');
    if (typeof moving === 'boolean') return moving;
    return Number(this.read(householdId, thing, 'location.speed') ?? 0) > 0;
  }

  private position(householdId: string, thing: string, read = this.read): GeoPoint | null {
    const latitude = read(householdId, thing, 'location.latitude');
    const longitude = read(householdId, thing, 'location.longitude');
    return typeof latitude === 'number' && typeof longitude === 'number' ? { latitude, longitude } : null;
  }

  /** The car's counters and place at `ts`, as `read` sees them (the stop's: as the report left it). */
  private snapshot(householdId: string, thing: string, ts: number, read = this.read): Snapshot {
    const value = (property: string) => {
      const v = read(householdId, thing, property);
      return typeof v === 'number' ? v : null;
    };
    return {
      ts,
      odometer: value('vehicle.odometer'),
      consumed: value('vehicle.consumed_energy'),
      level: value('battery.level'),
      capacity: value('battery.capacity'),
      position: this.position(householdId, thing, read),
    };
  }
}

/** Readings come late and in batches: a jump up is judged over the time between them and this. */
const JUMP_SLACK_MS = 10_000;

/**
 * A counter the car keeps (its odometer, its energy counters) as read along a trip or a charge:
 * how far it has gone forward. One that goes back (an instrument cluster replaced, a reset) takes
 * nothing back of what was counted: the count goes on from the new reading, a sum of the stretches
 * it went forward. A reading that goes back and is undone by the next one was a wrong reading: it
 * counts nothing either way, rather than the whole jump back up. So does one that jumps up faster
 * than the car can go (`perHour`; a glitch, a "not available" of 4,294,967,295) when the next takes
 * the counter back to where it was before it: without that, one such reading of the odometer made a
 * drive of a few km a trip of 4 million km.
 */
export class CounterReadings {
  /** The stretches before the latest drop. */
  private counted = 0;
  /** Where the stretch under way began, and its latest reading (when, if known). */
  private from: number;
  private last: number;
  private lastAt: number;
  /** The reading before the latest, and whether the latest jumped up from it faster than the counter can. */
  private previous: number;
  private jumped = false;
  /** The count as it stood before the latest drop, while the next reading may still undo it. */
  private beforeDrop: { counted: number; from: number; last: number } | null = null;

  constructor(
    first: number,
    private readonly options: { at?: number; perHour?: number } = {},
  ) {
    this.from = first;
    this.last = first;
    this.lastAt = options.at ?? Number.NaN;
    this.previous = first;
  }

  /** The last reading taken. */
  get latest(): number {
    return this.last;
  }

  /** Takes the next reading, taken `at` (ms), if known; true when it goes back. */
  read(value: number, at = Number.NaN): boolean {
    const dropped = this.beforeDrop;
    this.beforeDrop = null;
    if (dropped && value >= dropped.last) {
      ({ counted: this.counted, from: this.from } = dropped);
      this.take(dropped.last, value, at, false);
      return false;
    }
    if (value >= this.last) {
      const fastest =
        ((this.options.perHour ?? Number.POSITIVE_INFINITY) * (Math.max(0, at - this.lastAt) + JUMP_SLACK_MS)) /
        3_600_000;
      // Unknown times (NaN) judge no jump.
      this.take(this.last, value, at, value - this.last > fastest);
      return false;
    }
    if (this.jumped && value >= this.previous) {
      // Back to where it was before a jump up it could not have made: that reading was wrong.
      this.take(this.previous, value, at, false);
      return false;
    }
    this.beforeDrop = { counted: this.counted, from: this.from, last: this.last };
    this.counted += this.last - this.from;
    this.from = value;
    this.take(value, value, at, false);
    return true;
  }

  /** The count so far, up to `now` (a reading not taken: where the counter stands now), never below 0. */
  total(now: number): number {
    const dropped = this.beforeDrop;
    if (dropped && now >= dropped.last) return dropped.counted + now - dropped.from;
    return this.counted + Math.max(now, this.last) - this.from;
  }

  private take(previous: number, value: number, at: number, jumped: boolean): void {
    this.previous = previous;
    this.last = value;
    this.lastAt = at;
    this.jumped = jumped;
  }
}

const iso = (ms: number) => new Date(ms).toISOString();
const round = (n: number, digits: number) => Math.round(n * 10 ** digits) / 10 ** digits;
const sameSpot = (a: GeoPoint | undefined, b: GeoPoint) =>
  a !== undefined && a.latitude === b.latitude && a.longitude === b.longitude;
