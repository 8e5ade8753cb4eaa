import { Worker } from 'node:worker_threads';
import { ChurnMap } from '../core/churn-map.ts';
import type { WriteOptions } from './store.ts';
import { WriterPriority } from './writer-priority.ts';

/** One statement and the rows of parameters it runs with, in a batch written as one transaction. */
export interface WriteStep {
  sql: string;
  rows: unknown[][];
  /**
   * Columns whose values are objects to be stored as their JSON text, encoded where the row is
   * written: on the writer thread, that takes the encoding off the event loop. Only traces use it:
   * a trace is large (its steps, conditions, trigger) and a busy rule's are written a hundred at a
   * time once a second, a burst of JSON the event loop would otherwise do while reports wait.
   * Commands and events, a row each per automated message (a command's statuses mostly share one
   * row), send their JSON text instead: the copy is not free at the other end. A command row as an
   * object cost ~1.9 µs to copy here, ~3.9 to read back on the thread (the structured clone's
   * deserialisation) and ~2.4 to encode there; as text, ~2.4 to encode here and ~0.4 to copy,
   * both ends (an event row: 2.5 µs against 0.6). Measured in the hub, alternating hubs at 1,000
   * and 5,000 reports/s: the thread spent ~8 µs an automated message less, the hub's thread ~2
   * more, 10–12 % less CPU in all and no worse p99. Plain JSON data only: the copy is a structured
   * clone, so a function fails the write (JSON.stringify would have dropped it) and a class loses
   * its toJSON. Traces hold parsed JSON, strings and numbers.
   */
  json?: readonly number[];
  /**
   * Every value of every row is a string, a finite number or null, and the strings are short
   * (history's points and latest values: ids, names, a value's JSON, times). Such rows go to the
   * thread as one JSON text rather than as arrays: V8's copy of a history row costs ~0.9 µs to
   * write and ~0.7 to read back, JSON ~0.35 and ~0.45 (bench/HISTORY.md, session 32), and a flood
   * copies every report's row. Not for events and commands: their rows carry long JSON texts,
   * which V8 copies whole for less than JSON escapes and unescapes them.
   */
  plain?: boolean;
}

/** A step as the thread receives it: plain rows as their JSON text and how many there are. */
type StepMessage = WriteStep | { sql: string; text: string; count: number };

function stepMessage(step: WriteStep): StepMessage {
  return step.plain ? { sql: step.sql, text: JSON.stringify(step.rows), count: step.rows.length } : step;
}

/** A row with its `json` columns as JSON text (the writer thread does the same, in sqlite-writer-thread.mjs). */
export function withJsonText(row: unknown[], json: readonly number[]): unknown[] {
  const encoded = row.slice();
  for (const column of json) encoded[column] = JSON.stringify(row[column]);
  return encoded;
}

interface Reply {
  /** The thread's id, sent once when it starts (Linux only), for WriterPriority. */
  thread?: number;
  id: number;
  changes?: number;
  /** How often the thread paused within the batch (see sqlite-writer-thread.mjs). */
  pauses?: number;
  /** Whether the batch's commit synced the log (false: a background batch left for a later sync). */
  synced?: boolean;
  /** The thread synced the log on its own, after commits at NORMAL; the hub's told of by then. */
  logSynced?: boolean;
  hubCommits?: number;
  error?: { message: string; code?: string };
}

interface Waiter {
  resolve: (changes: number) => void;
  reject: (error: Error) => void;
}

/** An error the writer thread's SQLite raised, with its code (SQLITE_CONSTRAINT_…), as inline ones have. */
export class SqliteWriteError extends Error {
  constructor(
    message: string,
    readonly code?: string,
  ) {
    super(message);
    this.name = 'SqliteError';
  }
}

/**
 * How the connections that commit wait for the disk: FULL syncs the write-ahead log at every
 * commit, so a commit that settled (a command's 202, a timer stored before its run waits, history
 * acknowledged to a caller) survives a power cut, not only a crash of the hub. NORMAL, used
 * before, syncs only at checkpoints: the file stays consistent, but a power cut (a Raspberry Pi's
 * usual crash) can take the last second or so of commits that were already acknowledged. The cost
 * is one sync of the log per transaction, and write windows keep transactions to a few dozen a
 * second at any rate; measured in bench/HISTORY.md (session 22).
 */
export const SYNCHRONOUS = 'FULL';
/**
 * How long a background batch's commit may wait for a sync of the log (see WriteOptions): the most
 * of it a power cut can take. A sync every write window was most of the log's cost at steady rates
 * (three syncs every 50 ms, ~17 % of the writer thread's CPU at 1,000 reports/s).
 */
export const SYNC_WITHIN_MS = 1000;

/** Rows copied to the thread per message while the event loop keeps up (see SqliteWriter). */
export const PART_ROWS = 64;
/**
 * A batch of more parts than this goes over at once: that long, it comes from a flood (ingest, a
 * hub catching up), where a commit waiting on parts a turn at a time held the next batch back
 * (ingest ~6 % slower); write windows at steady rates hold a few hundred rows.
 */
export const MAX_SPREAD_PARTS = 8;
/** Batches waiting for the thread from which writes count as piling up (see WriterPriority). */
export const BUSY_BATCHES = 8;
/**
 * A thread that has answered nothing for this long while batches wait for it is starved (other
 * work has both cores): it takes its full share (see WriterPriority), so a write someone waits for
 * (a command's 202, a timer stored before a run waits) is held up by no more than this.
 */
export const STARVED_MS = 20;
/** A pump that runs this much later than asked finds the event loop behind (see `pumpOutbox`). */
const BEHIND_MS = 2;

/** One message to the thread: a part of a batch, the last of which has the batch committed. */
interface Part {
  id: number;
  steps: WriteStep[];
  last: boolean;
  /** A background batch (WriteOptions), said with its last part, when the thread commits it. */
  background: boolean;
}

function rowsIn(steps: WriteStep[]): number {
  return steps.reduce((n, step) => n + step.rows.length, 0);
}

/**
 * A batch's steps cut into parts of at most `size` rows, in order. A batch within one part, or one
 * that would take more than `maxParts`, stays one part, as it is.
 */
export function splitIntoParts(steps: WriteStep[], size: number, maxParts = Number.POSITIVE_INFINITY): WriteStep[][] {
  const total = rowsIn(steps);
  if (total <= size || total > size * maxParts) return [steps];
  const parts: WriteStep[][] = [];
  let part: WriteStep[] = [];
  let room = size;
  for (const step of steps) {
    for (let at = 0; at < step.rows.length; ) {
      const take = Math.min(room, step.rows.length - at);
      part.push({ ...step, rows: step.rows.slice(at, at + take) });
      at += take;
      room -= take;
      if (room === 0) {
        parts.push(part);
        part = [];
        room = size;
      }
    }
  }
  if (part.length) parts.push(part);
  return parts;
}

/**
 * The SQLite store's writes (history, events, commands, traces, audit, and the rest: one writer,
 * so they land in the order they were made) on a thread of their own. better-sqlite3 is
 * synchronous: a transaction of a few thousand history rows held the event loop for ~10 ms, and
 * every MQTT report or command due in that time waited it out (the p99 of the automation round
 * trip). On its own thread the commit overlaps the hub's work instead of pausing it. A batch's
 * promise settles after its commit, so what was acknowledged is on disk; batches are written in
 * the order they were sent. The thread holds a second connection to the same file; WAL lets the
 * main connection read alongside it and see every batch that has settled.
 *
 * Copying a batch to the thread (a structured clone) is itself work on the event loop: when the
 * bodies of commands and events still went over as objects (see WriteStep.json for why they are
 * text now), ~0.5–2 µs a row, and at 5,000 reports/s a write window's 250 history rows, 250
 * events and 250 commands held it ~0.8 ms per window, twenty times a second, while reports that
 * arrived meanwhile waited it out (the round trip's p99). These figures and PART_ROWS were
 * measured then; a window's copy is shorter with text bodies, and its JSON is made in the same
 * task (saveCommands, appendEvents). So a batch longer than PART_ROWS goes
 * over in parts, one part per turn of the event loop, and the thread commits it whole when its
 * last part arrives: the p99 at 5,000/s fell ~17 % (eight interleaved trials each). Parts of 32
 * rows made the 1,000/s p99 worse (its 50-row windows became two messages, two wake-ups of the
 * thread); at 64 a window at that rate still goes whole. A batch of more than MAX_SPREAD_PARTS
 * parts, and the rest of any batch when the event loop is already behind (working off a flood),
 * go in one message, as before, so ingest does not wait on parts.
 */
export class SqliteWriter {
  private worker: Worker | null = null;
  private readonly waiting = new ChurnMap<number, Waiter>();
  private nextId = 1;
  private closed = false;
  /** Parts not yet sent, in the order their batches were written. */
  private outbox: Part[] = [];
  private pump: NodeJS.Immediate | null = null;
  private pumpAskedAt = 0;
  /** When the thread last answered, or began to be waited for (see STARVED_MS). */
  private lastProgress = 0;
  private watchdog: NodeJS.Timeout | null = null;
  /** Callers of `settled`, each with the last batch handed over when it asked. */
  private settledWaiters: Array<{ upTo: number; resolve: () => void }> = [];
  /**
   * Background commits the hub made on its own connection (see committedByHub), counted, and the
   * count the thread was last told of while a sync of the log is due for them (0: none is due).
   */
  private hubCommits = 0;
  private hubCommitsTold = 0;

  /**
   * @param priority moves the thread between Linux's idle and normal classes (see WriterPriority);
   *   null leaves it in the normal class throughout.
   */
  constructor(
    private readonly file: string,
    private readonly busyTimeoutMs: number,
    private readonly priority: WriterPriority | null = process.platform === 'linux' ? new WriterPriority() : null,
    /** SYNC_WITHIN_MS; 0 syncs every commit (the tests shorten it). */
    private readonly syncWithinMs = SYNC_WITHIN_MS,
  ) {}

  /**
   * Nothing handed over is still waiting: a commit made elsewhere now lands after every batch
   * before it, and takes no lock the thread holds.
   */
  get idle(): boolean {
    return this.waiting.size === 0 && this.outbox.length === 0 && !this.closed;
  }

  /** Whether background batches may wait for a sync at all (SYNC_WITHIN_MS; 0 in some tests). */
  get syncsLater(): boolean {
    return this.syncWithinMs > 0;
  }

  /**
   * The hub committed a background batch at NORMAL on its own connection, while the thread was
   * idle: the thread syncs the log within syncWithinMs, as for its own such commits, and
   * checkpoints after (the hub's connection does not). Told once per sync, not per commit: the
   * thread wakes once a second at most for it.
   */
  committedByHub(): void {
    this.hubCommits++;
    if (this.hubCommitsTold === 0) this.tell();
  }

  private tell(): void {
    this.hubCommitsTold = this.hubCommits;
    this.thread().postMessage({ hubCommits: this.hubCommits });
  }

  /** Writes the steps in one transaction (a single row on its own); resolves with the rows changed. */
  write(steps: WriteStep[], options: WriteOptions = {}): Promise<number> {
    if (this.closed) return Promise.reject(new Error('the store is closed'));
    const worker = this.thread();
    const id = this.nextId++;
    return new Promise<number>((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      // Only a thread with work outstanding keeps the process alive.
      if (this.waiting.size === 1) {
        worker.ref();
        this.lastProgress = performance.now();
      }
      this.watch();
      const parts = splitIntoParts(steps, PART_ROWS, MAX_SPREAD_PARTS);
      // A batch from a flood, or batches the thread has not caught up with: it takes its full share.
      if (this.waiting.size >= BUSY_BATCHES || rowsIn(steps) > PART_ROWS * MAX_SPREAD_PARTS) this.priority?.busy();
      const idle = this.outbox.length === 0;
      const background = options.background === true;
      for (let i = 0; i < parts.length; i++)
        this.outbox.push({ id, steps: parts[i], last: i === parts.length - 1, background });
      // Behind nothing else, the first part goes at once, as a whole batch did before.
      if (idle) this.send(worker, this.outbox.shift() as Part);
      if (this.outbox.length) this.schedulePump();
    });
  }

  /**
   * After batches stop waiting (answered, refused, or lost with the thread): with none left, the
   * thread no longer keeps the process alive and may step back; callers of `settled` hear of theirs.
   */
  private afterSettling(): void {
    if (this.waiting.size === 0) {
      this.worker?.unref();
      this.priority?.quiet();
    }
    this.resolveSettled();
  }

  /**
   * Resolves once every batch handed over so far is settled (written, or failed); batches handed
   * over later do not hold it up.
   */
  settled(): Promise<void> {
    const upTo = this.nextId - 1;
    if (!this.waitsFor(upTo)) return Promise.resolve();
    return new Promise((resolve) => this.settledWaiters.push({ upTo, resolve }));
  }

  /**
   * Whether a batch numbered `upTo` or lower still waits: ids grow, and `waiting` keeps its keys
   * in the order they were added (a ChurnMap renews itself as `new Map(old)`, which keeps it).
   */
  private waitsFor(upTo: number): boolean {
    const oldest = this.waiting.keys().next();
    return !oldest.done && oldest.value <= upTo;
  }

  private resolveSettled(): void {
    if (this.settledWaiters.length === 0) return;
    const still: typeof this.settledWaiters = [];
    for (const waiter of this.settledWaiters) {
      if (this.waitsFor(waiter.upTo)) still.push(waiter);
      else waiter.resolve();
    }
    this.settledWaiters = still;
  }

  /**
   * Checks every STARVED_MS, while batches wait, that the thread is getting somewhere; a thread in
   * the idle class that is not takes its full share. Off where the thread is never moved.
   */
  private watch(): void {
    if (this.watchdog || !this.priority || this.priority.policy === 'off') return;
    this.watchdog = setTimeout(() => {
      this.watchdog = null;
      if (this.waiting.size === 0) return;
      if (this.priority?.policy === 'idle' && performance.now() - this.lastProgress >= STARVED_MS) this.priority.busy();
      this.watch();
    }, STARVED_MS);
    this.watchdog.unref();
  }

  /**
   * A setting of the thread's connection (a pragma's name, `synchronous`), read once every batch
   * handed over so far is settled, so the reply is not held behind parts still queued.
   */
  async setting(name: 'synchronous'): Promise<number> {
    await this.settled();
    if (this.closed) throw new Error('the store is closed');
    const worker = this.thread();
    const id = this.nextId++;
    return new Promise<number>((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      if (this.waiting.size === 1) worker.ref();
      worker.postMessage({ id, setting: name });
    });
  }

  /** Waits for every batch sent so far, then closes the thread's connection and ends the thread. */
  async close(): Promise<void> {
    if (this.closed) return;
    const worker = this.worker;
    // Closed for new writes from here on: one sent after the close message would never be run.
    this.closed = true;
    if (!worker) return;
    // What is left to write goes at the thread's full share.
    this.priority?.busy();
    try {
      // Every part still queued goes first; the close message is queued behind them all, so it is
      // answered once they are written.
      this.sendAll(worker);
      const id = this.nextId++;
      await new Promise<void>((resolve) => {
        this.waiting.set(id, { resolve: () => resolve(), reject: () => resolve() });
        worker.ref();
        worker.postMessage({ id, close: true });
      });
    } finally {
      this.priority?.stop();
      if (this.watchdog) clearTimeout(this.watchdog);
      this.watchdog = null;
      this.worker = null;
      for (const waiter of this.waiting.values()) waiter.reject(new Error('the store is closed'));
      this.waiting.clear();
      this.afterSettling();
      await worker.terminate();
    }
  }

  private schedulePump(): void {
    if (this.pump) return;
    this.pumpAskedAt = performance.now();
    this.pump = setImmediate(this.pumpOutbox);
  }

  /** Made once: sends the next part, or every part when the event loop has fallen behind. */
  private readonly pumpOutbox = () => {
    this.pump = null;
    const worker = this.worker;
    if (!worker) return;
    if (performance.now() - this.pumpAskedAt > BEHIND_MS) this.sendAll(worker);
    else {
      const next = this.outbox.shift();
      if (next) this.send(worker, next);
    }
    if (this.outbox.length) this.schedulePump();
  };

  private sendAll(worker: Worker): void {
    while (this.outbox.length) this.send(worker, this.outbox.shift() as Part);
  }

  private send(worker: Worker, part: Part): void {
    try {
      worker.postMessage({
        id: part.id,
        steps: part.steps.map(stepMessage),
        more: !part.last,
        ...(part.last && part.background ? { background: true } : {}),
      });
    } catch (error) {
      // A value that cannot be copied (a function…): the batch fails, none of it is written. The
      // thread drops the parts it holds for it; the parts still queued never go.
      this.outbox = this.outbox.filter((queued) => queued.id !== part.id);
      worker.postMessage({ id: part.id, discard: true });
      const waiter = this.waiting.get(part.id);
      this.waiting.delete(part.id);
      waiter?.reject(error as Error);
      this.afterSettling();
    }
  }

  private thread(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(new URL('./sqlite-writer-thread.mjs', import.meta.url), {
      // Batches up to the longest the hub spreads over parts pause now and then (see the thread).
      workerData: {
        file: this.file,
        busyTimeoutMs: this.busyTimeoutMs,
        pausedBatchRows: PART_ROWS * MAX_SPREAD_PARTS,
        synchronous: SYNCHRONOUS,
        syncWithinMs: this.syncWithinMs,
      },
      // The hub's own loader flags (tsx) are not needed by the thread's plain JavaScript.
      execArgv: [],
    });
    worker.unref();
    worker.on('message', (reply: Reply) => this.settle(reply));
    // A thread that dies takes its unanswered batches with it: they fail, and the next write
    // starts a new thread.
    const lost = (error: Error) => {
      if (this.worker !== worker) return;
      this.worker = null;
      // Parts of batches that fail here must not go to the next thread.
      this.outbox = [];
      for (const waiter of this.waiting.values()) waiter.reject(error);
      this.waiting.clear();
      // The next thread is a new one: its id comes with it, and it hears of the hub's next commit.
      this.hubCommitsTold = 0;
      this.priority?.stop();
      this.afterSettling();
    };
    worker.on('error', (error) => lost(new Error(`the SQLite writer thread failed: ${error.message}`)));
    worker.on('exit', (code) => lost(new Error(`the SQLite writer thread stopped (exit code ${code})`)));
    this.worker = worker;
    return worker;
  }

  private settle(reply: Reply): void {
    if (reply.thread !== undefined) {
      void this.priority?.start(reply.thread);
      return;
    }
    if (reply.logSynced) {
      // Commits the hub made after the thread looked are not known to be synced: tell it again.
      if (this.hubCommits > (reply.hubCommits ?? 0)) this.tell();
      else this.hubCommitsTold = 0;
      return;
    }
    // A synced commit of the thread's covers every commit before it, the hub's too: the hub
    // commits only while the thread is idle, so none of its commits lands between this one and
    // its reply.
    if (reply.synced) this.hubCommitsTold = 0;
    const waiter = this.waiting.get(reply.id);
    if (!waiter) return;
    this.waiting.delete(reply.id);
    this.lastProgress = performance.now();
    if (reply.error) waiter.reject(new SqliteWriteError(reply.error.message, reply.error.code));
    else waiter.resolve(reply.changes ?? 0);
    // After the batch's own promise: whoever awaits `settled` hears of it after its writers do.
    this.afterSettling();
  }
}
