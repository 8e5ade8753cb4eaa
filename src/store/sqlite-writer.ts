import { Worker } from 'node:worker_threads';
import { ChurnMap } from '../core/churn-map.ts';

/** One statement and the rows of parameters it runs with, in a batch written as one transaction. */
export interface WriteStep {
  sql: string;
  rows: unknown[][];
  /**
   * Columns whose values are objects to be stored as their JSON text, encoded where the row is
   * written: on the writer thread, that takes the encoding off the event loop. Building a command's
   * or a trace's JSON on the hub's thread cost ~6–10 µs a row (measured in the hub at 1,000
   * commands/s), all of it in the write window's one task, while every MQTT report waited; copying
   * the object to the thread costs about a third of that. Plain JSON data only: the copy is a
   * structured clone, so a function fails the write (JSON.stringify would have dropped it) and a
   * class loses its toJSON. Commands and traces hold parsed JSON, strings and numbers.
   */
  json?: readonly number[];
}

/** A row with its `json` columns as JSON text (the writer thread does the same, in sqlite-writer-thread.mjs). */
export function withJsonText(row: unknown[], json: readonly number[]): unknown[] {
  const encoded = row.slice();
  for (const column of json) encoded[column] = JSON.stringify(row[column]);
  return encoded;
}

interface Reply {
  id: number;
  changes?: number;
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
 * The SQLite store's writes (history, events, commands, traces, audit, and the rest: one writer,
 * so they land in the order they were made) on a thread of their own. better-sqlite3 is synchronous: a transaction of a few thousand history rows held the event
 * loop for ~10 ms, and every MQTT report or command due in that time waited it out (the p99 of the
 * automation round trip). On its own thread the commit overlaps the hub's work instead of pausing
 * it. A batch's promise settles after its commit, so what was acknowledged is on disk; batches are
 * written in the order they were sent. The thread holds a second connection to the same file; WAL
 * lets the main connection read alongside it and see every batch that has settled.
 */
export class SqliteWriter {
  private worker: Worker | null = null;
  private readonly waiting = new ChurnMap<number, Waiter>();
  private nextId = 1;
  private closed = false;

  constructor(
    private readonly file: string,
    private readonly busyTimeoutMs: number,
  ) {}

  /** Writes the steps in one transaction (a single row on its own); resolves with the rows changed. */
  write(steps: WriteStep[]): Promise<number> {
    if (this.closed) return Promise.reject(new Error('the store is closed'));
    const worker = this.thread();
    const id = this.nextId++;
    return new Promise<number>((resolve, reject) => {
      try {
        // Throws, at once, for a value that cannot be copied to the thread (a function…).
        worker.postMessage({ id, steps });
      } catch (error) {
        reject(error);
        return;
      }
      this.waiting.set(id, { resolve, reject });
      // Only a thread with work outstanding keeps the process alive.
      if (this.waiting.size === 1) worker.ref();
    });
  }

  /** Waits for every batch sent so far, then closes the thread's connection and ends the thread. */
  async close(): Promise<void> {
    if (this.closed) return;
    const worker = this.worker;
    // Closed for new writes from here on: one sent after the close message would never be run.
    this.closed = true;
    if (!worker) return;
    try {
      // The close message is queued behind every batch already sent, so it is answered once
      // they are written.
      const id = this.nextId++;
      await new Promise<void>((resolve) => {
        this.waiting.set(id, { resolve: () => resolve(), reject: () => resolve() });
        worker.ref();
        worker.postMessage({ id, close: true });
      });
    } finally {
      this.worker = null;
      for (const waiter of this.waiting.values()) waiter.reject(new Error('the store is closed'));
      this.waiting.clear();
      await worker.terminate();
    }
  }

  private thread(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(new URL('./sqlite-writer-thread.mjs', import.meta.url), {
      workerData: { file: this.file, busyTimeoutMs: this.busyTimeoutMs },
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
      for (const waiter of this.waiting.values()) waiter.reject(error);
      this.waiting.clear();
    };
    worker.on('error', (error) => lost(new Error(`the SQLite writer thread failed: ${error.message}`)));
    worker.on('exit', (code) => lost(new Error(`the SQLite writer thread stopped (exit code ${code})`)));
    this.worker = worker;
    return worker;
  }

  private settle(reply: Reply): void {
    const waiter = this.waiting.get(reply.id);
    if (!waiter) return;
    this.waiting.delete(reply.id);
    if (this.waiting.size === 0) this.worker?.unref();
    if (reply.error) waiter.reject(new SqliteWriteError(reply.error.message, reply.error.code));
    else waiter.resolve(reply.changes ?? 0);
  }
}
