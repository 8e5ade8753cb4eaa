import type { Store } from '../store/store.ts';
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
  /** Past this many waiting rows (the store is down), the oldest are dropped and logged. */
  maxBacklog?: number;
}

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

  constructor(private readonly options: HistoryWriterOptions) {}

  start(): void {
    this.unsubscribe = this.options.bus.subscribe((event) => this.take(event));
    this.cancelTimer = this.options.clock.setInterval(() => {
      void this.flush();
    }, this.options.flushEveryMs ?? 250);
  }

  /** Commits everything buffered so far; resolves when it is durable. */
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
    if (event.type === 'state') this.states.push(event);
    else this.others.push(event);
    const max = this.options.maxBatch ?? 5000;
    if (this.backlog >= max) void this.flush();
  }

  private async write(states: StateChanged[], others: HubEvent[]): Promise<void> {
    try {
      if (states.length) await this.options.store.appendHistory(states);
    } catch (error) {
      this.options.log.error('could not write history; will retry', { rows: states.length, error });
      this.requeue(states, []);
    }
    try {
      if (others.length) await this.options.store.appendEvents(others);
    } catch (error) {
      this.options.log.error('could not write events; will retry', { rows: others.length, error });
      this.requeue([], others);
    }
  }

  private requeue(states: StateChanged[], others: HubEvent[]): void {
    this.states = states.concat(this.states);
    this.others = others.concat(this.others);
    const limit = this.options.maxBacklog ?? 1_000_000;
    const excess = this.backlog - limit;
    if (excess > 0) {
      this.states.splice(0, Math.min(excess, this.states.length));
      this.dropped += excess;
      this.options.log.error('history backlog full; oldest rows dropped', { dropped: this.dropped });
    }
  }
}
