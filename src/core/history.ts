import { isRefusedByStore } from '../store/errors.ts';
import type { Store, WriteOptions } from '../store/store.ts';
import type { Bus } from './bus.ts';
import type { Clock } from './clock.ts';
import type { HubEvent, StateChanged } from './events.ts';
import type { Logger } from './log.ts';

export interface HistoryWriterOptions {
  bus: Bus;
  store: Store;
  clock: Clock;
  log: Logger;
  /** How often buffered events are committed. */
  flushEveryMs?: number;
  /** A buffer this large is committed at once instead of waiting for the timer. */
  maxBatch?: number;
  /** The most rows one transaction writes (see writeOrSplit). */
  chunk?: number;
  /** Past this many waiting rows (the store is down), the oldest are dropped and logged. */
  maxBacklog?: number;
}

const BACKGROUND: WriteOptions = { background: true };

/**
 * Records every event from the bus in batched transactions: state changes into history, the rest
 * into the event log. One transaction per batch is what lets a Raspberry Pi's SD card keep up.
 */
export class HistoryWriter {
  private states: StateChanged[] = [];
  private others: HubEvent[] = [];
  private unsubscribe: (() => void) | null = null;
  private cancelTimer: (() => void) | null = null;
  private writing: Promise<void> = Promise.resolve();
  private dropped = 0;
  /** Why the last write that will be retried failed, for the log line that says so. */
  private lastError: unknown = null;

  constructor(private readonly options: HistoryWriterOptions) {}

  start(): void {
    this.unsubscribe = this.options.bus.subscribe((event) => this.take(event));
    this.cancelTimer = this.options.clock.setInterval(() => {
      void this.flush();
    }, this.options.flushEveryMs ?? 50);
  }

  /**
   * Commits everything buffered so far; resolves when it is committed, so readable. It is durable
   * against a crash of the hub from then on, and against a power cut within a second (the store's
   * WriteOptions.background).
   */
  flush(): Promise<void> {
    const states = this.states;
    const others = this.others;
    if (states.length === 0 && others.length === 0) return this.writing;
    this.states = [];
    this.others = [];
    this.writing = this.writing.then(() => this.write(states, others));
    return this.writing;
  }

  async stop(): Promise<void> {
    this.unsubscribe?.();
    this.cancelTimer?.();
    await this.flush();
  }

  /** Rows waiting to be written. */
  get backlog(): number {
    return this.states.length + this.others.length;
  }

  private take(event: HubEvent): void {
    // A command's events are kept in its own row (its log, written by the command service), and
    // the event log reads them from there.
    if (event.type === 'command') return;
    if (event.type === 'state') this.states.push(event);
    else this.others.push(event);
    const max = this.options.maxBatch ?? 5000;
    if (this.backlog >= max) void this.flush();
  }

  private async write(states: StateChanged[], others: HubEvent[]): Promise<void> {
    // Nobody waits on these rows to be on disk, only to be readable (flush's callers read their
    // own writes): the store may leave their sync for later (WriteOptions.background).
    const history = await this.writeOrSplit(states, (rows) => this.options.store.appendHistory(rows, BACKGROUND));
    const events = await this.writeOrSplit(others, (rows) => this.options.store.appendEvents(rows, BACKGROUND));
    if (history.length || events.length) {
      this.options.log.error('could not write history; will retry', {
        rows: history.length + events.length,
        error: this.lastError,
      });
      this.requeue(history, events);
    }
  }

  /**
   * Writes rows in transactions of at most `chunk` rows, letting other work run between them: a
   * synchronous store (SQLite) holds the event loop for the whole of a transaction, and every
   * command due in that time waits it out. Smaller is not free: each transaction also moves the
   * latest value of every property it touches, so 128-row chunks cost ingest a third of its rate
   * (measured with `npm run bench -- --only ingest`); 2,000 keeps ingest above 50,000 reports/s.
   * A chunk the store refuses (isRefusedByStore: a constraint, a bad value) is split, so one row it
   * will never take cannot hold back everything queued behind it: such a row is dropped and logged,
   * even alone, and the rest is written. Any other failure (the store is unreachable) drops nothing.
   * Returns the rows to retry later, in order.
   */
  private async writeOrSplit<T>(rows: T[], write: (rows: T[]) => Promise<void>): Promise<T[]> {
    const size = this.options.chunk ?? 2_000;
    for (let at = 0; at < rows.length; at += size) {
      if (at > 0) await new Promise<void>((resolve) => setImmediate(resolve));
      const part = rows.length <= size ? rows : rows.slice(at, at + size);
      try {
        await write(part);
      } catch (error) {
        if (!isRefusedByStore(error)) {
          this.lastError = error;
          return rows.slice(at);
        }
        const refused: unknown[] = [];
        const left = await this.bisect(part, error, write, refused);
        if (refused.length) {
          this.options.log.error('dropped rows the store refused', { rows: refused.length, error: refused[0] });
        }
        if (left.length) return left.concat(rows.slice(at + size));
      }
    }
    return [];
  }

  /**
   * Writes rows the store refused together (with `error`) in halves, down to single rows; a row
   * refused on its own is dropped, its error added to `refused`. Returns the rows not yet written
   * when the store failed otherwise (it became unreachable), to retry in order.
   */
  private async bisect<T>(
    rows: T[],
    error: unknown,
    write: (rows: T[]) => Promise<void>,
    refused: unknown[],
  ): Promise<T[]> {
    if (rows.length === 1) {
      refused.push(error);
      return [];
    }
    const half = rows.length >> 1;
    const parts = [rows.slice(0, half), rows.slice(half)];
    for (const [i, part] of parts.entries()) {
      try {
        await write(part);
      } catch (partError) {
        if (!isRefusedByStore(partError)) {
          this.lastError = partError;
          return rows.slice(i * half);
        }
        const left = await this.bisect(part, partError, write, refused);
        if (left.length) return i === 0 ? left.concat(parts[1]) : left;
      }
    }
    return [];
  }

  private requeue(states: StateChanged[], others: HubEvent[]): void {
    this.states = states.concat(this.states);
    this.others = others.concat(this.others);
    const limit = this.options.maxBacklog ?? 1_000_000;
    const excess = this.backlog - limit;
    if (excess > 0) {
      // History first (the oldest state changes), then the oldest other events if that is not enough.
      const fromStates = Math.min(excess, this.states.length);
      this.states.splice(0, fromStates);
      this.others.splice(0, excess - fromStates);
      this.dropped += excess;
      this.options.log.error('history backlog full; oldest rows dropped', { dropped: this.dropped });
    }
  }
}
