import type { Clock } from '../../core/clock.ts';
import type { GenericEvent } from '../../core/events.ts';
import type { Logger } from '../../core/log.ts';
import type { Thing } from '../../model/thing.ts';
import type { StoredTimer } from '../../store/store.ts';
import type { GeoPoint } from '../time/sun.ts';
import type { Trace } from './trace.ts';

/** A command a rule sent (or, in a dry run, would have sent), as its trace shows it. */
export interface CommandRecord {
  id: string | null;
  thing: string;
  action: string;
  input: Record<string, unknown>;
  status: string;
  error: string | null;
  /**
   * The event that confirmed or failed it (the device's report, a state change), once known; null
   * when no event did: a report that changed nothing (the device was in that state already), or
   * an expiry.
   */
  finishedBy?: string | null;
}

export interface CommandOrder {
  householdId: string;
  thing: string;
  action: string;
  input: Record<string, unknown>;
  issuedBy: string;
  cause: string;
}

/**
 * Everything a rule can touch, behind one small interface. The live engine fills it with the
 * hub's twin, command service, bus and store; replay fills it with recorded history, a virtual
 * clock and recorders, so the same rule code runs in both and a dry run can send nothing.
 */
export interface AutomationWorld {
  readonly clock: Clock;
  readonly log: Logger;
  thing(householdId: string, id: string): Thing | undefined;
  value(householdId: string, thing: string, property: string): unknown;
  location(householdId: string): GeoPoint | null;
  /**
   * The household's time zone (see householdTimeZone), on whose clocks its `at:` and cron times,
   * weekdays, time conditions and `hour()` are. Asked when a schedule is armed and a condition or
   * expression reads the time, never per event.
   */
  timeZone(householdId: string): string;
  /**
   * Sends (live) or records (dry run) a command; throws (or rejects) when it is refused. A world
   * that answers at once returns the record itself, and a run whose steps all answer at once
   * ends within the turn that started it (see the runtime's `proceed`).
   */
  dispatch(order: CommandOrder): CommandRecord | Promise<CommandRecord>;
  /**
   * Resolves once the commands dispatched so far are stored, so a restart sends again those not
   * sent yet (live); absent where commands are not stored (a dry run).
   */
  commandsStored?(): Promise<void>;
  /** Publishes an event on the bus (live) or records it (dry run). */
  publish(event: GenericEvent): void;
  /** POSTs JSON to a notification webhook (live) or records that it would (dry run). */
  postWebhook(url: string, body: Record<string, unknown>): Promise<void>;
  /** Where timers are stored so they survive a restart; null in a dry run, where nothing outlives the run. */
  timers: TimerStore | null;
  traces: TraceStore;
  /**
   * Makes the ids of traces, runs, timers and events. Live leaves it out (the hub's time-ordered
   * random ids); replay passes a counter, because random bytes per run cost a million-event replay
   * a tenth of its time and its ids never leave the replay.
   */
  newId?(now: number, prefix: string): string;
}

/** Where durable timers live: the Store live, nowhere in a dry run. */
export interface TimerStore {
  save(timer: StoredTimer): Promise<void>;
  delete(id: string): Promise<void>;
}

/** Where traces go: the Store (with retention) live, a list in a dry run. */
export interface TraceStore {
  /**
   * True when `save` only keeps the object in memory and reads it back in the same process: the
   * runtime then hands over the trace itself, without the snapshot and ordered saves a real store
   * needs while the run goes on changing it.
   */
  readonly inMemory?: boolean;
  /**
   * Saves a copy of a trace. A store that writes later (in groups) keeps the object it is given
   * until then: the runtime hands over a snapshot of a trace whose run goes on, and the trace
   * itself once the run has ended, so the write catches the latest command statuses.
   */
  save(trace: Trace): Promise<void>;
  /** A stored trace, so a run resumed after a restart goes on writing the same trace. */
  load(householdId: string, id: string): Promise<Trace | null>;
  /** Writes every trace saved so far (before reading traces back, and at stop). */
  flush?(): Promise<void>;
}
