import { ChurnMap } from '../../core/churn-map.ts';
import type { HubServices } from '../../core/hub.ts';
import { processTimeZone } from '../../core/wall-time.ts';
import { GroupCommit } from '../../store/group-commit.ts';
import type { StoredTrace } from '../../store/store.ts';
import { FINAL_TRACE, type Trace } from '../runtime/trace.ts';
import type { AutomationWorld, CommandRecord } from '../runtime/world.ts';
import type { GeoPoint } from '../time/sun.ts';

export interface RetentionPolicy {
  /** Traces kept per rule. */
  perRule: number;
  /** Traces older than this are deleted. */
  maxAgeMs: number;
}

/**
 * How long a finished run's trace waits before it is written. The device's confirmation of the
 * run's command usually arrives within this window and rides along in the same row write, rather
 * than a second one; traces of many runs share one transaction, and a busy rule writes only the
 * traces retention keeps (see newestFinished). Reading traces writes the waiting ones first, so
 * the API never misses one; a crash loses at most this much of the finished traces (history's
 * window is shorter: traces explain, history is the record). A second rather than 250 ms: a rule
 * busier than retention writes its newest `perRule` traces once a window, so at 1,000 runs a
 * second that was 400 trace rows a second to keep 100, each ~1 KB of JSON; now 100. What waits
 * in memory is bounded by retention either way (holdBack). A trace of a run that is waiting
 * (delay, wait) is written at the end of the turn, with the run's timer.
 */
const TRACE_WRITE_WINDOW_MS = 1000;
/** The key of a trace's standing with the write window (see writeState in liveWorld). */
const TRACE_WRITE_STATE = Symbol('trace write state');
type WriteState = 'offered' | 'let-go';
type Marked = { [TRACE_WRITE_STATE]?: WriteState };
/**
 * Retention runs for a rule once it has written this many times the traces it keeps (so at most
 * that many more are stored for a while), or this long after its last run when fewer arrive: a
 * DELETE scans the rule's traces, so a busy rule should not pay one per run, nor per `perRule`.
 */
const PRUNE_AFTER_KEEPS = 5;
const PRUNE_INTERVAL_MS = 30_000;

/**
 * Reads a household's location from its settings: where `PUT /api/household {"latitude",
 * "longitude"}` keeps it (`presence`, see src/people/zones.ts), or, as earlier versions read it,
 * `home` or `location` (`{latitude, longitude}` or lat/lon).
 */
export function locationFromSettings(settings: Record<string, unknown>): GeoPoint | null {
  for (const candidate of [settings.presence, settings.home, settings.location]) {
    if (!candidate || typeof candidate !== 'object') continue;
    const o = candidate as Record<string, unknown>;
    const latitude = o.latitude ?? o.lat;
    const longitude = o.longitude ?? o.lon;
    if (
      typeof latitude === 'number' &&
      typeof longitude === 'number' &&
      Math.abs(latitude) <= 90 &&
      Math.abs(longitude) <= 180
    ) {
      return { latitude, longitude };
    }
  }
  return null;
}

/** A rule's finished traces waiting to be written, in the order they were saved. */
interface WaitingTraces {
  traces: ChurnMap<string, StoredTrace>;
  /** True while every trace was saved after those that started before it: the first is the oldest. */
  inStartOrder: boolean;
  /** The one that started last, while inStartOrder. */
  newest: StoredTrace | null;
}

/** Retention's order: by start, then id (ids are time-ordered too). */
function startsBefore(a: StoredTrace, b: StoredTrace): boolean {
  return a.startedAt < b.startedAt || (a.startedAt === b.startedAt && a.id < b.id);
}

function oldestOf(traces: ChurnMap<string, StoredTrace>): StoredTrace {
  let oldest: StoredTrace | undefined;
  // forEach, not for…of: no [id, trace] pair allocated per entry.
  traces.forEach((candidate) => {
    if (!oldest || startsBefore(candidate, oldest)) oldest = candidate;
  });
  return oldest as StoredTrace;
}

/**
 * The live world: the hub's twin, command service, bus and store. Locations are cached and
 * refreshed by the engine, because sun schedules ask for them synchronously.
 */
export function liveWorld(
  hub: HubServices,
  options: {
    retention: RetentionPolicy;
    locations: Map<string, GeoPoint | null>;
    /**
     * The household's time zone, kept by the engine like locations (see AutomationWorld.timeZone);
     * the hub's own when absent.
     */
    timeZone?(householdId: string): string;
    webhookTimeoutMs: number;
  },
): AutomationWorld {
  const { store, clock } = hub;
  const log = hub.log.child('automations');
  /** Per rule: finished traces written since its last pruning, and when that was. */
  const sincePrune = new Map<string, { count: number; at: number }>();
  const prune = async (written: StoredTrace[]) => {
    for (const trace of written) {
      if (!FINAL_TRACE.has(trace.status as Trace['status'])) continue;
      const key = `${trace.householdId}\u0000${trace.rule}`;
      const entry = sincePrune.get(key) ?? { count: 0, at: clock.now() };
      entry.count++;
      sincePrune.set(key, entry);
      const due = entry.count >= PRUNE_AFTER_KEEPS * options.retention.perRule;
      if (!due && clock.now() - entry.at < PRUNE_INTERVAL_MS) continue;
      sincePrune.set(key, { count: 0, at: clock.now() });
      await store.pruneTraces({
        householdId: trace.householdId,
        rule: trace.rule,
        keep: options.retention.perRule,
        olderThan: clock.now() - options.retention.maxAgeMs,
      });
    }
  };
  /**
   * Per rule, its finished traces waiting to be written (their stored copies). Past retention's
   * count, the one that started first is taken back before it is written (a busy rule would
   * otherwise hold a thousand traces in memory per write window, only to write and then delete
   * most of them: retention keeps the newest by start), and the rule is marked for pruning.
   */
  const waiting = new Map<string, WaitingTraces>();
  const crowdedRules = new Map<string, { householdId: string; rule: string }>();
  /** Runs whose trace was stored unfinished (they waited): their final copy is always written. */
  const storedUnfinished = new Set<string>();
  /**
   * Where a finished trace stands with the write window, kept on the trace object itself (under a
   * symbol: neither JSON nor the copy to the store's thread carries it). 'offered': offered once,
   * so a later copy (a command confirmed late) is always written… 'let-go': …unless retention let
   * it go before it was written: newer ones of its rule fill what retention keeps, so a later copy
   * would only be written to be pruned. Without that, every run's trace came back into the window
   * when its command was confirmed, and a busy rule held every trace of the last write window in
   * memory again (each outliving a young-generation collection). Two WeakSets did this before: an
   * entry for every run cost ~2 % of the hub's main thread at 5,000 runs a second (the ephemeron
   * write barrier and table growth) and made every young-generation collection sweep them.
   */
  const writeState = (trace: object) => (trace as Marked)[TRACE_WRITE_STATE];
  const setWriteState = (trace: object, state: WriteState) => {
    (trace as Marked)[TRACE_WRITE_STATE] = state;
  };
  const holdBack = (stored: StoredTrace) => {
    const key = `${stored.householdId}\u0000${stored.rule}`;
    let queue = waiting.get(key);
    if (!queue) {
      queue = { traces: new ChurnMap(), inStartOrder: true, newest: null };
      waiting.set(key, queue);
    }
    if (queue.traces.size === 0) {
      queue.inStartOrder = true;
      queue.newest = null;
    }
    if (queue.newest && startsBefore(stored, queue.newest)) queue.inStartOrder = false;
    else queue.newest = stored;
    queue.traces.set(stored.id, stored);
    if (queue.traces.size <= options.retention.perRule) return;
    // Runs mostly end in the order they started, and then the first queued trace is the oldest:
    // no scan of up to `perRule` traces on every save of a busy rule.
    const dropped = queue.inStartOrder ? (queue.traces.values().next().value as StoredTrace) : oldestOf(queue.traces);
    queue.traces.delete(dropped.id);
    if (traces.drop(dropped.id)) {
      // The stored copy's body is the runtime's own Trace object, the one a later save passes.
      setWriteState(dropped.body, 'let-go');
      crowdedRules.set(key, { householdId: stored.householdId, rule: stored.rule });
    }
  };
  /** What a write of these traces settles: they wait no more, and a final one was stored as such. */
  const written = (batch: StoredTrace[]) => {
    for (const trace of batch) {
      const queue = waiting.get(`${trace.householdId}\u0000${trace.rule}`);
      // An emptied queue lets go of its newest trace too: a rule that stops running holds none.
      if (queue?.traces.delete(trace.id) && queue.traces.size === 0) queue.newest = null;
      if (FINAL_TRACE.has(trace.status as Trace['status'])) storedUnfinished.delete(trace.id);
    }
  };
  const traces = new GroupCommit<StoredTrace>({
    clock,
    writeBatch: async (batch, background) => {
      written(batch);
      const { kept, crowded } = newestFinished(batch, options.retention.perRule);
      await store.saveTraces(kept, { background });
      // Written is written: a failed pruning is logged, not charged to the batch.
      await prune(kept).catch((error: unknown) => log.error('could not prune traces', { error }));
      for (const rule of crowded) crowdedRules.set(`${rule.householdId}\u0000${rule.rule}`, rule);
      const due = [...crowdedRules.values()];
      crowdedRules.clear();
      // A rule whose traces filled its retention before they were written keeps none of its
      // older ones: pruned now, which also removes an unfinished copy of a trace left out above.
      for (const { householdId, rule } of due) {
        sincePrune.delete(`${householdId}\u0000${rule}`);
        await store
          .pruneTraces({
            householdId,
            rule,
            keep: options.retention.perRule,
            olderThan: clock.now() - options.retention.maxAgeMs,
          })
          .catch((error: unknown) => log.error('could not prune traces', { error }));
      }
    },
    writeOne: (trace, background) => {
      written([trace]);
      return store.saveTrace(trace, { background });
    },
    onError: (error, trace) => log.error('could not save trace', { trace: trace.id, error }),
  });
  return {
    clock,
    log,
    thing: (householdId, id) => hub.twins.get(householdId, id)?.thing,
    value: (householdId, thing, property) => hub.twins.value(householdId, thing, property),
    location: (householdId) => options.locations.get(householdId) ?? null,
    timeZone: options.timeZone ?? (() => processTimeZone()),
    // Synchronous: a rule's command is sent before dispatchNow returns, so a run that only
    // sends commands ends in the turn its trigger came in.
    dispatch(order): CommandRecord {
      const command = hub.commands.dispatchNow(order);
      return {
        id: command.id,
        thing: command.thing,
        action: command.action,
        input: command.input,
        status: command.status,
        error: command.error ?? null,
      };
    },
    // Writes the waiting command rows now rather than within their window: asked only by a run
    // that ends after it waited, and by a webhook's caller (see the engine's webhook).
    commandsStored: () => hub.commands.flush(),
    publish: (event) => hub.bus.publish(event),
    async postWebhook(url, body) {
      // An HTTP timeout bounds a slow receiver; it is about the network, not a rule's timing.
      // fetch refuses a URL with credentials in it: they go as HTTP Basic authentication.
      const target = new URL(url);
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (target.username || target.password) {
        const user = decodeURIComponent(target.username);
        const password = decodeURIComponent(target.password);
        headers.authorization = `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
        target.username = '';
        target.password = '';
      }
      const response = await fetch(target, {
        method: 'POST',
        headers,
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(options.webhookTimeoutMs),
      });
      await response.body?.cancel();
      if (!response.ok) throw new Error(`answered ${response.status}`);
    },
    timers: {
      save: (timer) => store.saveTimer(timer),
      delete: (id) => store.deleteTimer(id),
    },
    traces: {
      async save(trace: Trace) {
        if (writeState(trace) === 'let-go') return;
        const stored = toStored(trace);
        const final = FINAL_TRACE.has(trace.status);
        traces.write(trace.id, stored, final ? TRACE_WRITE_WINDOW_MS : 0);
        if (!final) storedUnfinished.add(trace.id);
        else if (!storedUnfinished.has(trace.id) && writeState(trace) === undefined) {
          setWriteState(trace, 'offered');
          holdBack(stored);
        }
      },
      async load(householdId, id) {
        await traces.flush();
        const stored = await store.getTrace(householdId, id);
        return stored ? (stored.body as unknown as Trace) : null;
      },
      flush: () => traces.flush(),
    },
  };
}

/**
 * The traces of a batch worth writing: all of them, except that a rule with more finished traces
 * in the batch than retention keeps loses the oldest of those at once (a rule running a thousand
 * times a second would otherwise write, then delete, nine in ten of its traces). Order is kept.
 */
export function newestFinished(
  batch: StoredTrace[],
  perRule: number,
): { kept: StoredTrace[]; crowded: Array<{ householdId: string; rule: string }> } {
  const finished = new Map<string, StoredTrace[]>();
  for (const trace of batch) {
    if (!FINAL_TRACE.has(trace.status as Trace['status'])) continue;
    const key = `${trace.householdId}\u0000${trace.rule}`;
    const list = finished.get(key);
    if (list) list.push(trace);
    else finished.set(key, [trace]);
  }
  const left = new Set<StoredTrace>();
  const crowded: Array<{ householdId: string; rule: string }> = [];
  for (const list of finished.values()) {
    if (list.length <= perRule) continue;
    crowded.push({ householdId: list[0].householdId, rule: list[0].rule });
    // Newest first by start, then id, as retention orders them.
    const sorted = [...list].sort((a, b) => b.startedAt - a.startedAt || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
    for (const trace of sorted.slice(Math.max(0, perRule))) left.add(trace);
  }
  return { kept: left.size ? batch.filter((t) => !left.has(t)) : batch, crowded };
}

function toStored(trace: Trace): StoredTrace {
  return {
    id: trace.id,
    householdId: trace.householdId,
    rule: trace.rule,
    startedAt: trace.startedAt,
    status: trace.status,
    body: trace as unknown as Record<string, unknown>,
  };
}
