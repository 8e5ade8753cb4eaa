import type { AdapterContext } from '../adapters/adapter.ts';
import { validate } from '../model/schema.ts';
import { THING_ID_PATTERN, type Thing } from '../model/thing.ts';
import type { Store } from '../store/store.ts';
import type { Bus } from './bus.ts';
import type { Clock } from './clock.ts';
import type { CommandService } from './commands.ts';
import { badRequest } from './errors.ts';
import type { Report } from './events.ts';
import { newId } from './ids.ts';
import type { Logger } from './log.ts';
import { sameValue, type TwinRegistry } from './twin.ts';

export interface HubCoreOptions {
  clock: Clock;
  bus: Bus;
  store: Store;
  twins: TwinRegistry;
  commands: CommandService;
  log: Logger;
}

/** Reports further ahead of the hub's clock than this are clamped: a device's clock is wrong. */
const MAX_FUTURE_SKEW_MS = 5 * 60_000;

/**
 * The data path's middle: reports in, state changes out. It is what every adapter sees as its
 * context, so adapters stay ignorant of the store, the twin and each other.
 */
export class HubCore implements AdapterContext {
  readonly clock: Clock;
  readonly bus: Bus;
  readonly log: Logger;
  private readonly refusals = new Map<string, number>();

  constructor(private readonly options: HubCoreOptions) {
    this.clock = options.clock;
    this.bus = options.bus;
    this.log = options.log;
  }

  /** The context one adapter sees: the core's methods, with the adapter's own logger. */
  contextFor(log: Logger): AdapterContext {
    return {
      clock: this.clock,
      bus: this.bus,
      log,
      upsertThing: (thing) => this.upsertThing(thing),
      removeThing: (householdId, id) => this.removeThing(householdId, id),
      getThing: (householdId, id) => this.getThing(householdId, id),
      getValue: (householdId, thing, property) => this.getValue(householdId, thing, property),
      ingest: (reports) => this.ingest(reports),
      setAvailability: (householdId, thing, online) => this.setAvailability(householdId, thing, online),
    };
  }

  /** Loads things and their last known values, so the twin is right before any adapter starts. */
  async load(): Promise<void> {
    const { store, twins } = this.options;
    for (const thing of await store.listThings()) twins.put(thing);
    for (const latest of await store.latestValues()) {
      const twin = twins.get(latest.householdId, latest.thing);
      if (twin && Object.hasOwn(twin.thing.properties, latest.property)) {
        twin.state.set(latest.property, { value: latest.value, ts: latest.ts });
      }
    }
  }

  async upsertThing(input: Omit<Thing, 'createdAt' | 'updatedAt'>): Promise<Thing> {
    if (!THING_ID_PATTERN.test(input.id)) throw badRequest(`thing id ${JSON.stringify(input.id)} is not a valid id`);
    const { twins, store, clock, bus } = this.options;
    const existing = twins.get(input.householdId, input.id);
    const now = new Date(clock.now()).toISOString();
    const thing: Thing = { ...input, createdAt: existing?.thing.createdAt ?? now, updatedAt: now };
    if (existing && sameValue(stripTimes(existing.thing), stripTimes(thing))) return existing.thing;
    await store.saveThing(thing);
    twins.put(thing);
    bus.publish({
      type: existing ? 'thing.updated' : 'thing.added',
      id: newId(clock.now(), 'evt_'),
      householdId: thing.householdId,
      ts: clock.now(),
      thing: thing.id,
    });
    return thing;
  }

  async removeThing(householdId: string, id: string): Promise<void> {
    const { twins, store, clock, bus } = this.options;
    await store.deleteThing(householdId, id);
    if (!twins.remove(householdId, id)) return;
    bus.publish({ type: 'thing.removed', id: newId(clock.now(), 'evt_'), householdId, ts: clock.now(), thing: id });
  }

  getThing(householdId: string, id: string): Thing | undefined {
    return this.options.twins.get(householdId, id)?.thing;
  }

  getValue(householdId: string, thing: string, property: string): unknown {
    return this.options.twins.value(householdId, thing, property);
  }

  /**
   * Applies reports to the twin. A value that changes becomes a StateChanged event on the bus; a
   * report that changes nothing still lets waiting commands see it (devices confirm that way).
   * Invalid reports are refused with a log line and touch nothing.
   */
  ingest(reports: Report[]): void {
    const { twins, clock, bus, commands } = this.options;
    const now = clock.now();
    let touchedHousehold = '';
    let touchedThing = '';
    let lastCause: string | null = null;
    for (const report of reports) {
      const twin = twins.get(report.householdId, report.thing);
      if (!twin) {
        this.refuse(report, 'unknown thing');
        continue;
      }
      const spec = Object.hasOwn(twin.thing.properties, report.property)
        ? twin.thing.properties[report.property]
        : undefined;
      if (!spec) {
        this.refuse(report, `unknown property ${report.property}`);
        continue;
      }
      const error = validate(spec.schema, report.value, report.property);
      if (error) {
        this.refuse(report, error);
        continue;
      }
      const ts = Math.min(report.ts ?? now, now + MAX_FUTURE_SKEW_MS);
      const previous = twin.state.get(report.property);
      if (previous && sameValue(previous.value, report.value)) {
        previous.ts = Math.max(previous.ts, ts);
      } else {
        twin.state.set(report.property, { value: report.value, ts });
        const id = newId(now, 'evt_');
        lastCause = id;
        bus.publish({
          type: 'state',
          id,
          householdId: report.householdId,
          ts,
          cause: report.cause ?? null,
          thing: report.thing,
          property: report.property,
          from: previous?.value ?? null,
          to: report.value,
          source: report.source,
        });
      }
      // Reports come in per-device bursts; check commands once per thing, not once per property.
      if (report.thing !== touchedThing || report.householdId !== touchedHousehold) {
        if (touchedThing) commands.onReport(touchedHousehold, touchedThing, lastCause);
        touchedHousehold = report.householdId;
        touchedThing = report.thing;
      }
    }
    if (touchedThing) commands.onReport(touchedHousehold, touchedThing, lastCause);
  }

  setAvailability(householdId: string, thing: string, online: boolean): void {
    const { twins, clock, bus } = this.options;
    const twin = twins.get(householdId, thing);
    if (!twin || twin.online === online) return;
    twin.online = online;
    bus.publish({ type: 'availability', id: newId(clock.now(), 'evt_'), householdId, ts: clock.now(), thing, online });
  }

  /** Logs a refused report, at most once a minute per thing and reason, so a broken device cannot flood the log. */
  private refuse(report: Report, reason: string): void {
    const key = `${report.householdId}\u0000${report.thing}\u0000${reason}`;
    const now = this.options.clock.now();
    const last = this.refusals.get(key);
    if (last !== undefined && now - last < 60_000) return;
    if (this.refusals.size > 10_000) this.refusals.clear();
    this.refusals.set(key, now);
    this.log.warn('report refused', { thing: report.thing, property: report.property, source: report.source, reason });
  }
}

function stripTimes(thing: Thing): Omit<Thing, 'createdAt' | 'updatedAt'> {
  const { createdAt: _c, updatedAt: _u, ...rest } = thing;
  return rest;
}
