import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Clock } from '../core/clock.ts';
import type { HubEvent, StateChanged } from '../core/events.ts';
import { createLogger, type Logger } from '../core/log.ts';
import { processTimeZone } from '../core/wall-time.ts';
import { type Thing, vocabularyActions, vocabularyProperties } from '../model/thing.ts';
import type { LatestValue, Store } from '../store/store.ts';
import type { Rule, TriggerData } from './model.ts';
import { parseRule } from './parse/rule.ts';
import { AutomationRuntime } from './runtime/runtime.ts';
import { boundSteps, FINAL_TRACE, TRACE_STEPS, type Trace } from './runtime/trace.ts';
import type { AutomationWorld, CommandRecord } from './runtime/world.ts';
import type { GeoPoint } from './time/sun.ts';

/** Recorded history as a replay reads it: the state at the start, then the stream in pages. */
export interface HistorySource {
  initial(): Promise<LatestValue[]>;
  pages(options: { events: boolean }): AsyncIterable<HubEvent[]>;
}

export interface ReplayOptions {
  rules: Rule[];
  householdId: string;
  from: number;
  to: number;
  source: HistorySource;
  thing(id: string): Thing | undefined;
  location: GeoPoint | null;
  /** The household's time zone (see householdTimeZone); the hub's own when absent. */
  timeZone?: string;
  /** Called after each page with the events replayed so far and the time reached. */
  onProgress?(events: number, at: number): void;
  /**
   * Runs ended after which the replay stops where it got to, truncated, with `until` saying
   * where: what bounds the answer's size. REPLAY_MAX_RUNS when absent.
   */
  maxRuns?: number;
  /**
   * Triggers judged (runs, and those whose conditions failed or a mode skipped) after which the
   * replay stops where it got to, truncated, with `until` saying where. Unbounded when absent.
   */
  maxTriggers?: number;
  /**
   * Steps taken (each action, each action of each round of a repeat) and commands recorded after
   * which the replay stops where it got to, truncated, with `until` saying where: what bounds the
   * work of runs that do much each. REPLAY_MAX_STEPS when absent.
   */
  maxSteps?: number;
  log?: Logger;
}

/** One run the rule would have made: when, why, and what it would have sent. */
export interface ReplayRun {
  /** When the run started (for a `for:` trigger, once the state had held; `trigger.ts` is when it came). */
  at: string;
  rule: string;
  status: string;
  trigger: TriggerData;
  actions: Array<{ action: string; thing?: string; input?: Record<string, unknown>; message?: string }>;
  /**
   * The run's trace. One of more than REPLAY_TRACE_STEPS steps (a long repeat) shows the first
   * and last half of them, and `omittedSteps` says how many were left out between (`actions`
   * still lists every command).
   */
  trace: Trace;
  /** Steps left out of `trace.steps` after its first `after`; absent when none were. */
  omittedSteps?: { after: number; count: number };
}

export interface ReplayResult {
  runs: ReplayRun[];
  events: number;
  /** Triggers whose conditions were false, and those a mode skipped: not runs, but counted. */
  conditionFailed: number;
  skipped: number;
  truncated: boolean;
  /**
   * Where the replay stopped short of `to` (maxTriggers, maxRuns or maxSteps reached), as an ISO
   * time: the runs are exactly those of a replay whose `to` was this time (for maxSteps, but for
   * the run it was in, stopped at its step with an error saying so, and those due later in that
   * millisecond); or, when `to` was in the future, now (see `note`). Absent when it did not stop
   * short.
   */
  until?: string;
  /** Why the replay ended before the `to` asked for when no bound stopped it: `to` was in the future. */
  note?: string;
}

/**
 * A replay runs against recorded history, and there is none after now: a `to` in the future is
 * brought back to now (the answer says so with `until` and `note`), and a `from` in the future is
 * a problem, described. Times are epoch milliseconds.
 */
export function recordedRange(
  from: number,
  to: number,
  now: number,
): { to: number; note?: string } | { problem: string } {
  const nowIso = new Date(now).toISOString();
  if (from > now)
    return {
      problem: `from (${new Date(from).toISOString()}) is in the future: there is no recorded history after now (${nowIso})`,
    };
  if (to <= now) return { to };
  return {
    to: now,
    note: `to (${new Date(to).toISOString()}) is in the future; replayed recorded history up to now (${nowIso})`,
  };
}

/** Marks a result whose range was brought back to now (see recordedRange). */
export function noteClamped(result: ReplayResult, range: { to: number; note?: string }): ReplayResult {
  if (range.note === undefined) return result;
  if (!result.truncated) result.until = new Date(range.to).toISOString();
  result.note = range.note;
  return result;
}

/**
 * Runs one replay returns at most (it stops there, truncated, with `until`): each run carries its
 * whole trace, ~1 KB for a one-step rule, so this keeps an answer near 20 MB. A week of a rule on
 * a one-minute cron (10,080 runs) fits.
 */
export const REPLAY_MAX_RUNS = 20_000;

/**
 * Steps and commands one replay runs at most (it stops there, truncated, with `until`): what the
 * runs cost, where REPLAY_MAX_RUNS counts only how many there are. A toggle in a repeat is two
 * (its step and its command), ~290 bytes of answer; with the runs' own ~1 KB each, 50,000 keep
 * the answer near 20 MB and the work under a second. A rule of a few steps reaches REPLAY_MAX_RUNS
 * first (a week of a one-minute cron of one command is 20,160); a repeat of 10,000 rounds in every
 * run of a one-minute cron took 35 s, 2 GB, and a 500 once the answer outgrew a string.
 */
export const REPLAY_MAX_STEPS = 50_000;

/** Trace steps a replay's run shows (the first and last half): the bound a live run's trace has. */
export const REPLAY_TRACE_STEPS = TRACE_STEPS;

/** Time a replay works without a break before it lets the hub's other work in (see pace). */
const REPLAY_TURN_MS = 5;

/**
 * A clock that moves only when the replay moves it, firing due timers in order. It is driven
 * event by event, so it stays synchronous: a replay of a million events cannot afford to await
 * between each of them.
 */
class ReplayClock implements Clock {
  private timers: Array<{ id: number; due: number; fn: () => void; every?: number }> = [];
  private nextId = 1;
  constructor(private current: number) {}
  now(): number {
    return this.current;
  }
  setTimeout(fn: () => void, ms: number): () => void {
    const timer = { id: this.nextId++, due: this.current + Math.max(0, ms), fn };
    this.timers.push(timer);
    return () => {
      this.timers = this.timers.filter((t) => t !== timer);
    };
  }
  setInterval(fn: () => void, ms: number): () => void {
    const timer = { id: this.nextId++, due: this.current + Math.max(1, ms), fn, every: Math.max(1, ms) };
    this.timers.push(timer);
    return () => {
      this.timers = this.timers.filter((t) => t !== timer);
    };
  }
  /** The earliest timer's due time, or Infinity when none is set. */
  nextDue(): number {
    let due = Number.POSITIVE_INFINITY;
    for (const t of this.timers) if (t.due < due) due = t.due;
    return due;
  }
  /** Fires the earliest timer due at or before `time`; false when none is. */
  fireNext(time: number): boolean {
    let next: (typeof this.timers)[number] | undefined;
    for (const t of this.timers) if (!next || t.due < next.due || (t.due === next.due && t.id < next.id)) next = t;
    if (!next || next.due > time) return false;
    this.current = Math.max(this.current, next.due);
    if (next.every) next.due += next.every;
    else this.timers = this.timers.filter((t) => t !== next);
    next.fn();
    return true;
  }
  set(time: number): void {
    this.current = Math.max(this.current, time);
  }
}

/**
 * Runs rules against recorded history on a virtual clock and returns the runs they would have
 * made. Nothing is sent: commands and notifications are recorded, never dispatched or published.
 *
 * Commanded state is deliberately not simulated: the recording already holds what the devices
 * really did next, and a rule judged against invented state would be judged against a home that
 * never existed. A dry-run command therefore shows `status: "dry_run"` and changes nothing.
 */
export async function replayRules(options: ReplayOptions): Promise<ReplayResult> {
  const { householdId, from, to } = options;
  const clock = new ReplayClock(from);
  const timeZone = options.timeZone ?? processTimeZone();
  const state = new Map<string, Map<string, unknown>>();
  const runs: ReplayRun[] = [];
  const maxRuns = options.maxRuns ?? REPLAY_MAX_RUNS;
  const maxSteps = options.maxSteps ?? REPLAY_MAX_STEPS;
  /** Steps taken and commands recorded so far, against maxSteps. */
  let steps = 0;
  /** Set when maxSteps was reached: nothing more is replayed, not even the rest of that millisecond. */
  let outOfSteps = false;
  const result: ReplayResult = { runs, events: 0, conditionFailed: 0, skipped: 0, truncated: false };
  /** Traces of runs not yet ended: those still waiting when the range ends are reported as they stand. */
  const unfinished = new Map<string, Trace>();
  let idCounter = 0;
  const world: AutomationWorld = {
    clock,
    log: options.log ?? createLogger({ level: 'silent' }),
    thing: (_h, id) => options.thing(id),
    value: (_h, thing, property) => state.get(thing)?.get(property),
    location: () => options.location,
    timeZone: () => timeZone,
    dispatch(order): CommandRecord {
      if (!options.thing(order.thing)) throw new Error(`thing ${JSON.stringify(order.thing)} not found`);
      steps++;
      return { id: null, thing: order.thing, action: order.action, input: order.input, status: 'dry_run', error: null };
    },
    publish: () => {},
    postWebhook: async () => {},
    // Nothing in a replay outlives it, so no timer is stored.
    timers: null,
    traces: {
      inMemory: true,
      save: async (trace) => {
        if (FINAL_TRACE.has(trace.status)) unfinished.delete(trace.id);
        else unfinished.set(trace.id, trace);
      },
      load: async (_h, id) => unfinished.get(id) ?? null,
    },
    newId: (now, prefix) =>
      `${prefix}${Math.floor(now).toString(16).padStart(12, '0')}${(idCounter++).toString(16).padStart(8, '0')}`,
  };
  let judged = 0;
  const maxTriggers = options.maxTriggers ?? Number.POSITIVE_INFINITY;
  // When a bound is reached the replay still finishes the millisecond it is in (other timers and
  // events of that instant), so that `until` is a time up to which every trigger was judged.
  let stopAt = Number.POSITIVE_INFINITY;
  const record = (trace: Trace) => {
    judged++;
    if (trace.status === 'condition_failed') result.conditionFailed++;
    else if (trace.status === 'skipped') result.skipped++;
    else runs.push(toRun(trace));
    if (stopAt === Number.POSITIVE_INFINITY && (judged >= maxTriggers || runs.length >= maxRuns)) {
      stopAt = clock.now();
    }
  };
  // The run that reaches the bound is stopped at that step, and the replay stops with it: the rest
  // of that millisecond would be more of the same work, each run refused at its first step.
  const beforeStep = () => {
    if (++steps <= maxSteps) return null;
    outOfSteps = true;
    if (stopAt === Number.POSITIVE_INFINITY) stopAt = clock.now();
    return `the replay stopped here, at its bound of ${maxSteps} steps and commands; replay from its "until" for the rest`;
  };
  const runtime = new AutomationRuntime({ world, dryRun: true, onRunEnd: record, beforeStep, everyStep: true });
  for (const value of await options.source.initial()) {
    let props = state.get(value.thing);
    if (!props) {
      props = new Map();
      state.set(value.thing, props);
    }
    props.set(value.property, value.value);
  }
  for (const rule of options.rules) await runtime.load({ ...rule, householdId, enabled: true });
  // Everything a replay world does resolves at once, so a run settles within a few microtask
  // turns; a macrotask turn per event (setImmediate) would cost more than the event itself.
  const settle = async () => {
    for (let i = 0; i < 100 && runtime.busy; i++) await undefined;
    for (let i = 0; i < 1000 && runtime.busy; i++) await nextTurn();
  };
  // A rule on a timer (a cron every minute over years) fires with no event in between, and a page
  // of events is thousands: without a turn of the event loop every few milliseconds, the hub
  // answered nothing else until the replay ended. Time is read every 64 events or timers only.
  let worked = 0;
  let turnStarted = performance.now();
  const pace = async () => {
    if (++worked % 64 !== 0 || performance.now() - turnStarted < REPLAY_TURN_MS) return;
    await nextTurn();
    turnStarted = performance.now();
  };
  const advance = async (time: number) => {
    while (!outOfSteps && clock.fireNext(Math.min(time, stopAt))) {
      if (runtime.busy) await settle();
      await pace();
    }
    clock.set(Math.min(time, stopAt));
  };
  const wantsEvents = options.rules.some(
    (rule) => rule.triggers.some((t) => t.type === 'event') || rule.lists.flat().some((a) => a.type === 'wait'),
  );
  pages: for await (const page of options.source.pages({ events: wantsEvents })) {
    for (const event of page) {
      if (event.ts < from || event.ts > to) continue;
      if (clock.nextDue() <= event.ts) await advance(event.ts);
      // A bound reached before this event (here or in the timers just fired) ends the replay.
      if (event.ts > stopAt || outOfSteps) break pages;
      clock.set(event.ts);
      if (event.type === 'state') apply(state, event);
      runtime.handle(event);
      if (runtime.busy) await settle();
      result.events++;
      await pace();
    }
    options.onProgress?.(result.events, clock.now());
    await nextTurn();
    turnStarted = performance.now();
  }
  await advance(to);
  await settle();
  if (stopAt < to || outOfSteps) {
    result.truncated = true;
    result.until = new Date(stopAt).toISOString();
  }
  // Runs still in a delay or wait when the range (or the replay) ends are reported as they stand:
  // they were triggered in it, so leaving them out would claim less than it judged.
  for (const trace of unfinished.values()) if (trace.status === 'waiting' || trace.status === 'running') record(trace);
  await runtime.stop();
  runs.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
  return result;
}

function apply(state: Map<string, Map<string, unknown>>, change: StateChanged): void {
  let props = state.get(change.thing);
  if (!props) {
    props = new Map();
    state.set(change.thing, props);
  }
  props.set(change.property, change.to);
}

function toRun(trace: Trace): ReplayRun {
  const actions: ReplayRun['actions'] = [];
  for (const step of trace.steps) {
    for (const command of step.commands ?? [])
      actions.push({ action: command.action, thing: command.thing, input: command.input });
    if (step.action === 'notify') actions.push({ action: 'notify', message: step.detail });
  }
  const run: ReplayRun = {
    // When the run started: for a `for:` trigger, that is when the state had held long enough,
    // not when the trigger came (that time is the trigger's own `ts`).
    at: new Date(trace.startedAt).toISOString(),
    rule: trace.rule,
    status: trace.status,
    trigger: trace.trigger,
    actions,
    trace,
  };
  // Bounded here, not as the run goes (as a live run's trace is): `actions` lists every command.
  const shown = boundSteps(trace);
  if (shown) {
    // A copy: the runtime still holds the trace of a run reported while it waits.
    run.trace = { ...trace, ...shown };
    run.omittedSteps = shown.omittedSteps;
  }
  return run;
}

/**
 * The store's history for one household as a replay source: state changes (and, when rules need
 * them, other events) merged in (ts, id) order, read in keyset pages so memory stays flat.
 */
export function storeSource(
  store: Store,
  householdId: string,
  from: number,
  to: number,
  pageSize = 5000,
): HistorySource {
  return {
    initial: () => store.valuesBefore(householdId, from),
    async *pages({ events }) {
      const history = cursor((after) => store.pageHistory({ householdId, from, to, after, limit: pageSize }));
      const others = events
        ? cursor((after) => store.pageEvents({ householdId, from, to, after, limit: pageSize }))
        : null;
      let batch: HubEvent[] = [];
      for (;;) {
        const a = await history.peek();
        const b = others ? await others.peek() : undefined;
        if (!a && !b) break;
        const takeA = a && (!b || a.ts < b.ts || (a.ts === b.ts && a.id < b.id));
        batch.push(takeA ? history.take() : (others as NonNullable<typeof others>).take());
        if (batch.length >= pageSize) {
          yield batch;
          batch = [];
        }
      }
      if (batch.length) yield batch;
    },
  };
}

/** Reads pages lazily and hands out rows one at a time. */
function cursor<T extends { ts: number; id: string }>(
  page: (after: { ts: number; id: string } | undefined) => Promise<T[]>,
) {
  let rows: T[] = [];
  let index = 0;
  let done = false;
  let last: { ts: number; id: string } | undefined;
  return {
    async peek(): Promise<T | undefined> {
      if (index < rows.length) return rows[index];
      if (done) return undefined;
      rows = await page(last);
      index = 0;
      if (rows.length === 0) {
        done = true;
        return undefined;
      }
      const tail = rows[rows.length - 1];
      last = { ts: tail.ts, id: tail.id };
      return rows[0];
    },
    take(): T {
      return rows[index++];
    },
  };
}

/** A source over events already in memory (tests, benchmarks, imports). */
export function memorySource(initial: LatestValue[], events: HubEvent[], pageSize = 5000): HistorySource {
  return {
    initial: async () => initial,
    async *pages() {
      for (let i = 0; i < events.length; i += pageSize) yield events.slice(i, i + pageSize);
    },
  };
}

/**
 * The benchmark hook: replays `events` synthetic state changes of a busy household (temperature,
 * motion, lights, presence, a car's battery) through a set of rules and reports the speed.
 */
export async function benchmarkReplay(options: { events: number; rules?: number }): Promise<{
  events: number;
  runs: number;
  seconds: number;
  eventsPerSecond: number;
}> {
  const householdId = 'bench';
  const things = benchmarkThings(householdId);
  const byId = new Map(things.map((t) => [t.id, t]));
  const rules = benchmarkRules(options.rules ?? 20).map((doc) =>
    parseRule(doc, { householdId, thing: (id) => byId.get(id), hasLocation: false, origin: { kind: 'draft' } }),
  );
  const from = Date.UTC(2026, 0, 5);
  const events = syntheticHistory(householdId, from, options.events);
  const to = events.length ? events[events.length - 1].ts : from;
  const started = performance.now();
  const result = await replayRules({
    rules,
    householdId,
    from,
    to,
    source: memorySource([], events),
    thing: (id) => byId.get(id),
    location: null,
    maxRuns: 100_000,
  });
  const seconds = (performance.now() - started) / 1000;
  return { events: result.events, runs: result.runs.length, seconds, eventsPerSecond: result.events / seconds };
}

function benchmarkThings(householdId: string): Thing[] {
  const thing = (id: string, properties: string[], capability?: string): Thing => ({
    id,
    householdId,
    kind: 'device',
    name: id,
    adapter: 'bench',
    properties: vocabularyProperties(properties),
    actions: capability ? vocabularyActions(capability) : {},
    createdAt: '2026-01-01T00:00:00.000Z',
    updatedAt: '2026-01-01T00:00:00.000Z',
  });
  const list: Thing[] = [];
  for (let room = 0; room < 10; room++) {
    list.push(thing(`sensor-${room}`, ['sensor.temperature', 'sensor.humidity', 'sensor.motion']));
    list.push(thing(`light-${room}`, ['light.on', 'light.brightness'], 'light'));
  }
  list.push(thing('car', ['battery.level', 'charging.charging'], 'charging'));
  return list;
}

function benchmarkRules(count: number): Record<string, unknown>[] {
  const rules: Record<string, unknown>[] = [];
  for (let i = 0; i < count; i++) {
    const room = i % 10;
    rules.push(
      i % 2 === 0
        ? {
            id: `motion-${i}`,
            mode: 'restart',
            triggers: [{ trigger: 'state', thing: `sensor-${room}`, property: 'sensor.motion', to: true }],
            conditions: [
              { condition: 'numeric_state', thing: `sensor-${room}`, property: 'sensor.temperature', below: 30 },
            ],
            actions: [
              { action: 'turn_on', thing: `light-${room}`, data: { brightness: 60 } },
              { delay: '2m' },
              { action: 'turn_off', thing: `light-${room}` },
            ],
          }
        : {
            id: `hot-${i}`,
            triggers: [
              {
                trigger: 'numeric_state',
                thing: `sensor-${room}`,
                property: 'sensor.temperature',
                above: 24,
                for: '5m',
              },
            ],
            conditions: [`state('car', 'battery.level') > 20`],
            actions: [{ action: 'turn_off', thing: `light-${room}` }],
          },
    );
  }
  return rules;
}

/** A deterministic week-like stream: one change every ~600 ms across rooms and the car. */
function syntheticHistory(householdId: string, from: number, count: number): StateChanged[] {
  const events: StateChanged[] = [];
  let seed = 42;
  const random = () => {
    seed = (seed * 1_103_515_245 + 12_345) & 0x7fffffff;
    return seed / 0x7fffffff;
  };
  const temperature = Array.from({ length: 10 }, () => 21);
  for (let n = 0; n < count; n++) {
    const ts = from + n * 600;
    const room = Math.floor(random() * 10);
    const pick = random();
    let thing = `sensor-${room}`;
    let property = 'sensor.temperature';
    let to: unknown;
    if (pick < 0.5) {
      temperature[room] = Math.round((temperature[room] + (random() - 0.5) * 1.5) * 10) / 10;
      temperature[room] = Math.min(30, Math.max(15, temperature[room]));
      to = temperature[room];
    } else if (pick < 0.8) {
      property = 'sensor.motion';
      to = random() < 0.5;
    } else if (pick < 0.95) {
      thing = `light-${room}`;
      property = 'light.on';
      to = random() < 0.5;
    } else {
      thing = 'car';
      property = 'battery.level';
      to = Math.round(random() * 100);
    }
    events.push({
      type: 'state',
      id: `evt_${ts.toString(16).padStart(12, '0')}${n.toString(16).padStart(8, '0')}`,
      householdId,
      ts,
      cause: null,
      thing,
      property,
      from: null,
      to,
      source: 'bench',
    });
  }
  return events;
}
