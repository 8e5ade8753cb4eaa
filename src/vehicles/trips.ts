import type { Bus } from '../core/bus.ts';
import type { Clock } from '../core/clock.ts';
import type { StateChanged } from '../core/events.ts';
import { newId } from '../core/ids.ts';
import type { TwinRegistry } from '../core/twin.ts';
import { distanceMetres, type GeoPoint } from '../people/geo.ts';

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
  route: RoutePoint[];
  travelled: number;
}

/** A stop shorter than this (lights, a queue, dropping someone off) does not end a trip. */
export const DEFAULT_STOP_GRACE_MS = 3 * 60_000;
const MAX_ROUTE_POINTS = 2000;
const POINT_EVERY_M = 50;

/**
 * Cuts a car's signals into trips: one starts when the car moves, and ends when it has stood still
 * for the grace period, measured from the moment it stopped. Distance comes from the odometer,
 * energy from the battery's consumed-energy counter (or the drop in charge when a car has none).
 */
export class TripRecorder {
  private readonly trips = new Map<string, Trip>();
  private unsubscribe: (() => void) | null = null;

  constructor(private readonly options: { bus: Bus; clock: Clock; twins: TwinRegistry; stopGraceMs?: number }) {}

  start(): void {
    this.unsubscribe = this.options.bus.subscribe((event) => {
      if (event.type === 'state') this.onState(event);
    });
  }

  stop(): void {
    this.unsubscribe?.();
    for (const trip of this.trips.values()) trip.cancelEnd?.();
    this.trips.clear();
  }

  private onState(event: StateChanged): void {
    const twin = this.options.twins.get(event.householdId, event.thing);
    if (twin?.thing.kind !== 'vehicle') return;
    const key = `${event.householdId}\u0000${event.thing}`;
    const trip = this.trips.get(key);
    if (event.property === 'vehicle.moving' || event.property === 'location.speed') {
      const moving = this.isMoving(event.householdId, event.thing);
      if (moving && !trip) {
        const start = this.snapshot(event.householdId, event.thing, event.ts);
        const route = start.position ? [{ ...start.position, ts: iso(event.ts) }] : [];
        this.trips.set(key, { start, stop: null, cancelEnd: null, route, travelled: 0 });
      } else if (moving && trip?.stop) {
        trip.cancelEnd?.();
        trip.cancelEnd = null;
        trip.stop = null;
      } else if (!moving && trip && !trip.stop) {
        trip.stop = this.snapshot(event.householdId, event.thing, event.ts);
        const grace = this.options.stopGraceMs ?? DEFAULT_STOP_GRACE_MS;
        trip.cancelEnd = this.options.clock.setTimeout(() => this.finish(key, event.householdId, event.thing), grace);
      }
      return;
    }
    if (trip && !trip.stop && (event.property === 'location.latitude' || event.property === 'location.longitude')) {
      const position = this.position(event.householdId, event.thing);
      const last = trip.route.at(-1);
      if (!position) return;
      const step = last ? distanceMetres(last, position) : 0;
      if (last && step < POINT_EVERY_M) return;
      trip.travelled += step;
      trip.route.push({ ...position, ts: iso(event.ts) });
      // A very long drive keeps its shape at half the resolution rather than growing without end.
      if (trip.route.length > MAX_ROUTE_POINTS) trip.route = trip.route.filter((_, i) => i % 2 === 0);
    }
  }

  private finish(key: string, householdId: string, thing: string): void {
    const trip = this.trips.get(key);
    this.trips.delete(key);
    if (!trip?.stop) return;
    const { start, stop } = trip;
    const distanceM =
      start.odometer !== null && stop.odometer !== null ? stop.odometer - start.odometer : Math.round(trip.travelled);
    const durationS = Math.max(0, (stop.ts - start.ts) / 1000);
    // A nudge in the driveway is not a trip.
    if (distanceM < 100) return;
    const energyKwh =
      start.consumed !== null && stop.consumed !== null
        ? round(stop.consumed - start.consumed, 3)
        : start.level !== null && stop.level !== null && stop.capacity !== null
          ? round(((start.level - stop.level) / 100) * stop.capacity, 3)
          : null;
    if (stop.position && !sameSpot(trip.route.at(-1), stop.position)) {
      trip.route.push({ ...stop.position, ts: iso(stop.ts) });
    }
    const record: TripRecord = {
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
      route: trip.route,
    };
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

  private isMoving(householdId: string, thing: string): boolean {
    const moving = this.options.twins.value(householdId, thing, 'vehicle.moving');
    if (typeof moving === 'boolean') return moving;
    return Number(this.options.twins.value(householdId, thing, 'location.speed') ?? 0) > 0;
  }

  private position(householdId: string, thing: string): GeoPoint | null {
    const latitude = this.options.twins.value(householdId, thing, 'location.latitude');
    const longitude = this.options.twins.value(householdId, thing, 'location.longitude');
    return typeof latitude === 'number' && typeof longitude === 'number' ? { latitude, longitude } : null;
  }

  private snapshot(householdId: string, thing: string, ts: number): Snapshot {
    const value = (property: string) => {
      const v = this.options.twins.value(householdId, thing, property);
      return typeof v === 'number' ? v : null;
    };
    return {
      ts,
      odometer: value('vehicle.odometer'),
      consumed: value('vehicle.consumed_energy'),
      level: value('battery.level'),
      capacity: value('battery.capacity'),
      position: this.position(householdId, thing),
    };
  }
}

const iso = (ms: number) => new Date(ms).toISOString();
const round = (n: number, digits: number) => Math.round(n * 10 ** digits) / 10 ** digits;
const sameSpot = (a: GeoPoint | undefined, b: GeoPoint) =>
  a !== undefined && a.latitude === b.latitude && a.longitude === b.longitude;
