import type { Bus } from '../core/bus.ts';
import type { Clock } from '../core/clock.ts';
import type { HubCore } from '../core/core.ts';
import type { StateChanged } from '../core/events.ts';
import { newId } from '../core/ids.ts';
import type { Logger } from '../core/log.ts';
import type { TwinRegistry } from '../core/twin.ts';
import type { GeoPoint } from '../people/geo.ts';
import { walkHistory } from '../store/history-walk.ts';
import type { Store } from '../store/store.ts';
import { CounterReadings, FASTEST_PER_HOUR } from './trips.ts';

export const CHARGING_SESSION_EVENT = 'vehicle.charging_session';

/** What a finished charging session records (the `data` of a `vehicle.charging_session` event). */
export interface ChargingSessionRecord {
  start: string;
  end: string;
  durationS: number;
  energyKwh: number | null;
  averagePowerKw: number | null;
  maxPowerKw: number;
  startLevel: number | null;
  endLevel: number | null;
  location: GeoPoint | null;
}

interface Session {
  startTs: number;
  /** The charged-energy counter as read since the start; null until its first reading. */
  charged: CounterReadings | null;
  startLevel: number | null;
  maxPowerKw: number;
  /** Whether the counter going back has been logged for this session (once is enough). */
  warned: boolean;
}

/**
 * Cuts a car's signals into charging sessions: from charging on to charging off. Energy added is
 * the growth of the battery's charged-energy counter (or the rise in charge times capacity); it is
 * also reported live as `charging.energy`, so a dashboard shows the session as it runs. A counter
 * that goes back mid-session (a reset) counts on from its new reading: never less than nothing.
 */
export class ChargingSessionRecorder {
  private readonly sessions = new Map<string, Session>();
  private unsubscribe: (() => void) | null = null;

  constructor(private readonly options: { bus: Bus; clock: Clock; twins: TwinRegistry; core: HubCore; log?: Logger }) {}

  start(): void {
    this.unsubscribe = this.options.bus.subscribe((event) => {
      if (event.type === 'state') this.onState(event);
      // A car detached mid-charge takes its session with it, as a trip (TripRecorder.forget).
      if (event.type === 'thing.removed') this.sessions.delete(`${event.householdId}\u0000${event.thing}`);
    });
  }

  stop(): void {
    this.unsubscribe?.();
    this.sessions.clear();
  }

  /**
   * Picks up, from history, the charges that were running when the hub stopped, so the session
   * is recorded when the car stops charging, from when it started. Without this, a restart while
   * a car charged lost the session: "charging" was already true, so no change started one. The
   * energy counter and charge level are read as they were when charging started; the peak power
   * from history since. Call before start().
   */
  async resume(store: Store, householdIds: string[]): Promise<void> {
    const now = this.options.clock.now();
    for (const householdId of householdIds) {
      for (const twin of this.options.twins.list(householdId)) {
        if (twin.thing.kind !== 'vehicle' || twin.state.get('charging.charging')?.value !== true) continue;
        const thing = twin.thing.id;
        // History holds changes, so the last recorded "charging" is the moment it started.
        const [started] = await store.valuesBefore(householdId, now + 1, { thing, properties: ['charging.charging'] });
        if (started?.value !== true) continue;
        // Not before the car was attached (as a trip, TripRecorder.resume): a car detached under
        // this name mid-charge left its charge and its readings in history, which are not this one's.
        const attached = Date.parse(twin.thing.createdAt);
        const ours = (ts: number) => !(ts < attached);
        if (!ours(started.ts)) continue;
        const properties = ['vehicle.charged_energy', 'battery.level', 'charging.power'];
        const then = new Map<string, unknown>();
        for (const value of await store.valuesBefore(householdId, started.ts + 1, { thing, properties })) {
          if (ours(value.ts)) then.set(value.property, value.value);
        }
        const session: Session = {
          startTs: started.ts,
          charged: counterFrom(then.get('vehicle.charged_energy'), started.ts),
          startLevel: numberOrNull(then.get('battery.level')),
          maxPowerKw: numberOrNull(then.get('charging.power')) ?? 0,
          warned: false,
        };
        const key = `${householdId}\u0000${thing}`;
        await walkHistory(store, { householdId, thing, property: 'charging.power', from: started.ts, to: now }, (p) => {
          session.maxPowerKw = Math.max(session.maxPowerKw, numberOrNull(p.value) ?? 0);
        });
        // The counter's readings since, so a reset before the restart is counted as one.
        const charged = { householdId, thing, property: 'vehicle.charged_energy', from: started.ts, to: now };
        await walkHistory(store, charged, (p) =>
          this.countCharged(householdId, thing, session, numberOrNull(p.value), p.ts),
        );
        this.sessions.set(key, session);
      }
    }
  }

  private onState(event: StateChanged): void {
    const { householdId, thing } = event;
    const twin = this.options.twins.get(householdId, thing);
    if (twin?.thing.kind !== 'vehicle') return;
    const key = `${householdId}\u0000${thing}`;
    const session = this.sessions.get(key);
    const { twins } = this.options;
    const number = (property: string) => numberOrNull(twins.value(householdId, thing, property));
    if (event.property === 'charging.charging') {
      if (event.to === true && !session) {
        // The counters as they stood before the report that says the car charges: one it began
        // while out of reach counts from where it was last heard of, not from where it is now.
        const before = (property: string) => numberOrNull(twins.valueBefore(householdId, thing, property));
        this.sessions.set(key, {
          startTs: event.ts,
          charged: counterFrom(before('vehicle.charged_energy'), event.ts),
          startLevel: before('battery.level'),
          maxPowerKw: number('charging.power') ?? 0,
          warned: false,
        });
        this.reportEnergy(householdId, thing, 0, event.ts, event.id);
      } else if (event.to !== true && session) {
        this.sessions.delete(key);
        this.finish(householdId, thing, session, event.ts);
      }
      return;
    }
    if (!session) return;
    if (event.property === 'vehicle.charged_energy')
      this.countCharged(householdId, thing, session, number('vehicle.charged_energy'), event.ts);
    if (event.property === 'battery.level' && session.startLevel === null) session.startLevel = number('battery.level');
    if (event.property === 'charging.power')
      session.maxPowerKw = Math.max(session.maxPowerKw, number('charging.power') ?? 0);
    if (event.property === 'vehicle.charged_energy') {
      const added = this.energyAdded(householdId, thing, session);
      if (added !== null) this.reportEnergy(householdId, thing, added, event.ts, event.id);
    }
  }

  private finish(householdId: string, thing: string, session: Session, end: number): void {
    const energyKwh = this.energyAdded(householdId, thing, session);
    const hours = (end - session.startTs) / 3_600_000;
    const latitude = this.options.twins.value(householdId, thing, 'location.latitude');
    const longitude = this.options.twins.value(householdId, thing, 'location.longitude');
    const level = this.options.twins.value(householdId, thing, 'battery.level');
    const record: ChargingSessionRecord = {
      start: iso(session.startTs),
      end: iso(end),
      durationS: Math.round(hours * 3600),
      energyKwh,
      averagePowerKw: energyKwh !== null && hours > 0 ? round(energyKwh / hours, 2) : null,
      maxPowerKw: round(session.maxPowerKw, 2),
      startLevel: session.startLevel,
      endLevel: typeof level === 'number' ? level : null,
      location: typeof latitude === 'number' && typeof longitude === 'number' ? { latitude, longitude } : null,
    };
    this.options.bus.publish({
      type: CHARGING_SESSION_EVENT,
      id: newId(this.options.clock.now(), 'evt_'),
      householdId,
      ts: end,
      cause: null,
      thing,
      data: { ...record },
    });
  }

  /**
   * Takes a reading of the charged-energy counter into the session's count. A session that started
   * before the counter was known (the hub attached to a car already charging) counts from its first
   * reading, rather than never knowing its energy.
   */
  private countCharged(householdId: string, thing: string, session: Session, value: number | null, at: number): void {
    if (value === null || !Number.isFinite(value)) return;
    if (!session.charged) {
      session.charged = counterFrom(value, at);
      return;
    }
    if (!session.charged.read(value, at) || session.warned) return;
    session.warned = true;
    this.options.log?.warn(
      'a car charged-energy counter went back mid-charge; the session counts on from the new reading',
      {
        householdId,
        thing,
        reading: value,
      },
    );
  }

  private energyAdded(householdId: string, thing: string, session: Session): number | null {
    const charged = this.options.twins.value(householdId, thing, 'vehicle.charged_energy');
    if (session.charged && typeof charged === 'number') return round(session.charged.total(charged), 3);
    const level = this.options.twins.value(householdId, thing, 'battery.level');
    const capacity = this.options.twins.value(householdId, thing, 'battery.capacity');
    if (session.startLevel === null || typeof level !== 'number' || typeof capacity !== 'number') return null;
    return round(Math.max(0, ((level - session.startLevel) / 100) * capacity), 3);
  }

  private reportEnergy(householdId: string, thing: string, kwh: number, ts: number, cause: string): void {
    const twin = this.options.twins.get(householdId, thing);
    if (!twin || !Object.hasOwn(twin.thing.properties, 'charging.energy')) return;
    this.options.core.ingest([
      { householdId, thing, property: 'charging.energy', value: Math.max(0, kwh), ts, source: 'vehicles', cause },
    ]);
  }
}

const numberOrNull = (value: unknown) => (typeof value === 'number' ? value : null);
const counterFrom = (value: unknown, at: number) =>
  typeof value === 'number' && Number.isFinite(value)
    ? new CounterReadings(value, { at, perHour: FASTEST_PER_HOUR.charged })
    : null;
const iso = (ms: number) => new Date(ms).toISOString();
const round = (n: number, digits: number) => Math.round(n * 10 ** digits) / 10 ** digits;
