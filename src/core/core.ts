import type { AdapterContext } from '../adapters/adapter.ts';
import { validate } from '../model/schema.ts';
import { THING_ID_PATTERN, type Thing } from '../model/thing.ts';
import type { LatestValue, Store } from '../store/store.ts';
import type { Bus } from './bus.ts';
import type { Clock } from './clock.ts';
import type { CommandService } from './commands.ts';
import { badRequest } from './errors.ts';
import type { Report, StateChanged } from './events.ts';
import { newId } from './ids.ts';
import type { Logger } from './log.ts';
import { sameValue, type Twin, type TwinRegistry } from './twin.ts';

export interface HubCoreOptions {
  clock: Clock;
  bus: Bus;
  store: Store;
  twins: TwinRegistry;
  commands: CommandService;
  log: Logger;
  /**
   * Writes what the history writer holds. Asked before a thing is deleted: rows it held for the
   * thing, committed after the delete, put its latest values back, and a thing made later under
   * the same id (a car attached under the old one's name) started from them at the next start.
   */
  flushHistory?: () => Promise<void>;
}

/** Reports further ahead of the hub's clock than this are clamped: a device's clock is wrong. */
const MAX_FUTURE_SKEW_MS = 5 * 60_000;

/**
 * A report stamped less than this before the hub took it counts as stamped on arrival, and is
 * never judged late: an adapter that stamps its reports itself reads the same clock a moment
 * before ingest does (a millisecond may tick between, a pause may take longer).
 */
const ARRIVAL_SLACK_MS = 1_000;

/** Each thing's createdAt in ms, read once per version of the thing rather than once per report. */
const addedTimes = new WeakMap<Thing, number | undefined>();

/**
 * When the thing now under its id was added, in ms; undefined when its createdAt does not read.
 * A thing's history and events begin there (GET /api/things/{id}/history, /api/events?thing=):
 * what was recorded under its id before was a removed thing's.
 */
export function thingAddedAt(thing: Thing): number | undefined {
  if (addedTimes.has(thing)) return addedTimes.get(thing);
  const added = Date.parse(thing.createdAt);
  const known = Number.isFinite(added) ? added : undefined;
  addedTimes.set(thing, known);
  return known;
}

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
    // Streamed where the store can: 100,000 things and their million values never sit in one array.
    const putThing = (thing: Thing) => twins.put(thing);
    // One string per property name for the twins' state keys, not one per row read.
    const names = new Map<string, string>();
    // Values come grouped by thing, so one lookup serves a thing's every property.
    let twin: Twin | undefined;
    const apply = (latest: LatestValue) => {
      if (twin?.thing.id !== latest.thing || twin.thing.householdId !== latest.householdId) {
        twin = twins.get(latest.householdId, latest.thing);
      }
      if (twin && Object.hasOwn(twin.thing.properties, latest.property)) {
        let name = names.get(latest.property);
        if (name === undefined) {
          name = latest.property;
          names.set(name, name);
        }
        twin.state.set(name, { value: latest.value, ts: latest.ts });
      }
    };
    if (store.loadAll) return store.loadAll(putThing, apply);
    if (store.forEachThing) await store.forEachThing(putThing);
    else for (const thing of await store.listThings()) putThing(thing);
    if (store.forEachLatestValue) await store.forEachLatestValue(apply);
    else for (const latest of await store.latestValues()) apply(latest);
  }

  async upsertThing(input: Omit<Thing, 'createdAt' | 'updatedAt'>): Promise<Thing> {
    const [thing] = await this.upsertThings([input]);
    return thing;
  }

  /**
   * upsertThing for many things at once, as an adapter announcing a whole network would: the
   * same checks, events and results as one call each, but written to the store in one batch
   * (one transaction instead of one per thing, about a fifth of the cost in SQLite). Nothing is
   * written when any id is invalid.
   */
  async upsertThings(inputs: Omit<Thing, 'createdAt' | 'updatedAt'>[]): Promise<Thing[]> {
    for (const input of inputs) {
      if (!THING_ID_PATTERN.test(input.id)) throw badRequest(`thing id ${JSON.stringify(input.id)} is not a valid id`);
    }
    const { twins, store, clock, bus } = this.options;
    const now = new Date(clock.now()).toISOString();
    const results: Thing[] = [];
    const changed: { thing: Thing; added: boolean }[] = [];
    // Things earlier in the batch count as existing for later ones, as they would one call at a time.
    const pending = new Map<string, Thing>();
    for (const input of inputs) {
      const key = `${input.householdId}\u0000${input.id}`;
      const existing = pending.get(key) ?? twins.get(input.householdId, input.id)?.thing;
      const thing: Thing = { ...input, createdAt: existing?.createdAt ?? now, updatedAt: now };
      if (existing && sameValue(stripTimes(existing), stripTimes(thing))) {
        results.push(existing);
        continue;
      }
      pending.set(key, thing);
      changed.push({ thing, added: !existing });
      results.push(thing);
    }
    if (changed.length === 0) return results;
    if (store.saveThings && pending.size > 1) await store.saveThings([...pending.values()]);
    else for (const thing of pending.values()) await store.saveThing(thing);
    for (const { thing, added } of changed) {
      twins.put(thing);
      bus.publish({
        type: added ? 'thing.added' : 'thing.updated',
        id: newId(clock.now(), 'evt_'),
        householdId: thing.householdId,
        ts: clock.now(),
        thing: thing.id,
      });
    }
    return results;
  }

  async removeThing(householdId: string, id: string): Promise<void> {
    const { twins, store, clock, bus } = this.options;
    // Out of the twin first: a report arriving while the store forgets the thing is refused,
    // rather than written after the delete and bringing its latest values back.
    const known = twins.remove(householdId, id);
    await this.options.flushHistory?.();
    await store.deleteThing(householdId, id);
    if (!known) return;
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
   *
   * A thing's reports that come together (one device message: a light's on and brightness) are
   * all in its twin before its changes go out, so whatever one change starts (a rule on `light.on`
   * reading `light.brightness`) sees the device's whole report, as Home Assistant runs a rule after
   * the message has updated every entity it carries. What the report replaced stays readable
   * while its changes are delivered: TwinRegistry.valueBefore.
   *
   * Late reports. A report of another value that its device stamped before the property's current
   * one (a charge point sending what it queued while offline; messages that overtook each other)
   * tells what was, not what is: it leaves the twin as it is, starts no rule, confirms no command
   * and writes no history. Not even as a past point: history is read by (thing, property, ts) as
   * steps, each row holding until the next, and the device's newer word has no row when it only
   * repeated the value, so the late row would hold to this day; the trip and energy accounting,
   * which follow changes as they come, could not take it back either. "Current" is the device's
   * newest word, not the last change: a report of the value the twin has moves its time forward.
   * That time is the twin's alone (the store keeps when a value last changed), so after a restart a
   * late report is judged against the last change. A report stamped on arrival (no device time, or
   * the hub's clock read by its adapter, as MQTT's do: ARRIVAL_SLACK_MS) is never judged late: the
   * hub's clock may have stepped back (a Raspberry Pi booting without a clock, an NTP correction),
   * and the newest arrival is still the newest word.
   */
  ingest(reports: Report[]): void {
    const { twins, clock } = this.options;
    const now = clock.now();
    /** Reports stamped before this were stamped by their device, not on arrival (ARRIVAL_SLACK_MS). */
    const arrived = now - ARRIVAL_SLACK_MS;
    let touchedHousehold = '';
    let touchedThing = '';
    /** Whether the thing being looked at had a live report: only those can confirm a command. */
    let touchedLive = false;
    /** The thing's changes so far, in order; the usual single change is held on its own, not in an array. */
    let held: StateChanged | StateChanged[] | null = null;
    /** When the thing being looked at was added (-Infinity when unknown), read once per thing of a batch. */
    let addedFor: Twin | null = null;
    let added = Number.NEGATIVE_INFINITY;
    for (const report of reports) {
      // Reports come in per-device bursts; check commands once per thing, not once per property,
      // and with that thing's own last change as the cause (not the next thing's).
      if (report.thing !== touchedThing || report.householdId !== touchedHousehold) {
        this.settle(touchedHousehold, touchedThing, held, touchedLive);
        touchedHousehold = report.householdId;
        touchedThing = report.thing;
        touchedLive = false;
        held = null;
      }
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
      // A device time that is not a number (a bad date parsed to NaN) counts as arrival time.
      const ts = Math.min(Number.isFinite(report.ts) ? (report.ts as number) : now, now + MAX_FUTURE_SKEW_MS);
      if (addedFor !== twin) {
        addedFor = twin;
        added = thingAddedAt(twin.thing) ?? Number.NEGATIVE_INFINITY;
      }
      const previous = twin.state.get(report.property);
      if (previous && sameValue(previous.value, report.value)) {
        previous.ts = Math.max(previous.ts, ts);
      } else if (previous !== undefined && ts < previous.ts && ts < arrived) {
        // Stamped before the value it would replace (see above): the device's past, not its state.
        this.refuse(report, 'stamped before the current value', 'debug');
        continue;
      } else {
        twin.state.set(report.property, { value: report.value, ts });
        const change: StateChanged = {
          type: 'state',
          id: newId(now, 'evt_'),
          householdId: report.householdId,
          // A change its device stamped before the thing was added (a phone's last fix, a charge
          // point's queue, a clock a second behind) is recorded as of the adding: the thing's
          // history begins there, and what lies before it under this id is a removed thing's.
          // The twin keeps the device's own time, by which a later report is judged late.
          ts: Math.max(ts, added),
          cause: report.cause ?? null,
          thing: report.thing,
          property: report.property,
          from: previous?.value ?? null,
          to: report.value,
          source: report.source,
        };
        if (held === null) held = change;
        else if (Array.isArray(held)) held.push(change);
        else held = [held, change];
      }
      if (!report.retained) touchedLive = true;
    }
    this.settle(touchedHousehold, touchedThing, held, touchedLive);
  }

  /**
   * Ends one thing's part of a batch, its reports all in the twin: its changes go on the bus in the
   * order reported, then the commands waiting on it are judged, with its last change as the cause.
   * After the changes, so a rule they start still sees its command open (a state change counts as
   * the effect of a command to that thing while the command is open).
   */
  private settle(
    householdId: string,
    thing: string,
    changes: StateChanged | StateChanged[] | null,
    live: boolean,
  ): void {
    if (changes !== null) this.announce(changes);
    if (!live) return;
    const last = changes === null ? null : Array.isArray(changes) ? changes[changes.length - 1] : changes;
    this.options.commands.onReport(householdId, thing, last?.id ?? null);
  }

  /** Publishes one thing's changes, with them as the report TwinRegistry.valueBefore answers for meanwhile. */
  private announce(changes: StateChanged | StateChanged[]): void {
    const { bus, twins } = this.options;
    // A subscriber may ingest a report of its own while it handles one (a car's charged energy):
    // its delivery stands in for this one's until it is done.
    const outer = twins.delivering;
    twins.delivering = changes;
    try {
      if (!Array.isArray(changes)) bus.publish(changes);
      else for (const change of changes) bus.publish(change);
    } finally {
      twins.delivering = outer;
    }
  }

  setAvailability(householdId: string, thing: string, online: boolean): void {
    const { twins, clock, bus } = this.options;
    const twin = twins.get(householdId, thing);
    if (!twin || twin.online === online) return;
    twin.online = online;
    bus.publish({ type: 'availability', id: newId(clock.now(), 'evt_'), householdId, ts: clock.now(), thing, online });
  }

  /**
   * Logs a refused report, at most once a minute per thing and reason, so a broken device cannot
   * flood the log; `debug` for a report that is refused but not wrong (a late one).
   */
  private refuse(report: Report, reason: string, level: 'warn' | 'debug' = 'warn'): void {
    const key = `${report.householdId}\u0000${report.thing}\u0000${reason}`;
    const now = this.options.clock.now();
    const last = this.refusals.get(key);
    if (last !== undefined && now - last < 60_000) return;
    if (this.refusals.size > 10_000) this.refusals.clear();
    this.refusals.set(key, now);
    this.log[level]('report refused', {
      thing: report.thing,
      property: report.property,
      source: report.source,
      reason,
    });
  }
}

function stripTimes(thing: Thing): Omit<Thing, 'createdAt' | 'updatedAt'> {
  const { createdAt: _c, updatedAt: _u, ...rest } = thing;
  return rest;
}
