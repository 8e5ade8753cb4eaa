import { Worker } from 'node:worker_threads';

/** A query for the reader thread; rows repeat the text in `shareColumn` often (see the thread). */
export interface ThreadQuery {
  sql: string;
  shareColumn?: number;
}

/** Rows a message carries: small enough to interleave, large enough that messages stay few. */
const CHUNK_ROWS = 1000;

/**
 * Runs read-only queries on a thread of its own and hands their rows to `visit` chunk by chunk,
 * in order, query after query. The thread steps SQLite (most of the cost of reading 100,000
 * things and a million latest values) while this thread turns the rows it already has into
 * objects: at start-up the two overlap instead of taking turns. A visitor that throws stops the
 * read and rejects with its error.
 */
export function readInThread(
  file: string,
  queries: ThreadQuery[],
  visit: (query: number, rows: unknown[][]) => void,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./sqlite-reader-thread.mjs', import.meta.url), {
      workerData: { file, queries, chunkRows: CHUNK_ROWS },
      // The hub's own loader flags (tsx) are not needed by the thread's plain JavaScript.
      execArgv: [],
    });
    /** Texts of each query's shared column, by the number the thread sends for a repeat. */
    const shared = queries.map(() => [] as string[]);
    let settled = false;
    const finish = (error?: Error) => {
      if (settled) return;
      settled = true;
      if (error) {
        void worker.terminate();
        reject(error);
      } else resolve();
    };
    worker.on('message', (message: { query: number; rows: unknown[][] } | { done: true } | { error: string }) => {
      if (settled) return;
      if ('error' in message) return finish(new Error(`reading the store failed: ${message.error}`));
      if ('done' in message) return finish();
      const column = queries[message.query].shareColumn;
      if (column !== undefined) {
        const texts = shared[message.query];
        for (const row of message.rows) {
          const value = row[column];
          if (typeof value === 'string') texts.push(value);
          else if (typeof value === 'number') row[column] = texts[value];
        }
      }
      try {
        visit(message.query, message.rows);
      } catch (error) {
        finish(error as Error);
      }
    });
    worker.on('error', (error) => finish(new Error(`the SQLite reader thread failed: ${error.message}`)));
    // Node delivers a thread's last messages before its exit, so an exit that finds the read
    // unsettled lost the rest of it.
    worker.on('exit', (code) =>
      finish(new Error(`the SQLite reader thread stopped before it was done (exit code ${code})`)),
    );
  });
}

/**
 * A read-only connection on a thread of its own for queries that read many rows to answer few
 * (a week of a 1 Hz meter summed up into a chart's buckets: ~0.9 s of SQLite): run on the hub's
 * thread, such a query held every MQTT report and command for that long. Started at the first
 * query; it keeps the process alive only while a query is out. WAL lets it read beside the
 * writer, and it sees every batch that has settled.
 */
export class SqliteQueryThread {
  private worker: Worker | null = null;
  private readonly waiting = new Map<number, { resolve: (rows: unknown[]) => void; reject: (error: Error) => void }>();
  private nextId = 1;

  constructor(
    private readonly file: string,
    private readonly busyTimeoutMs: number,
  ) {}

  all<Row>(sql: string, params: unknown[]): Promise<Row[]> {
    const worker = this.thread();
    const id = this.nextId++;
    return new Promise<Row[]>((resolve, reject) => {
      this.waiting.set(id, { resolve: (rows) => resolve(rows as Row[]), reject });
      if (this.waiting.size === 1) worker.ref();
      worker.postMessage({ id, sql, params });
    });
  }

  async close(): Promise<void> {
    const worker = this.worker;
    this.worker = null;
    this.fail(new Error('the store is closed'));
    await worker?.terminate();
  }

  private thread(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(new URL('./sqlite-query-thread.mjs', import.meta.url), {
      workerData: { file: this.file, busyTimeoutMs: this.busyTimeoutMs },
      execArgv: [],
    });
    worker.unref();
    worker.on('message', (reply: { id: number; rows?: unknown[]; error?: string }) => {
      const waiter = this.waiting.get(reply.id);
      if (!waiter) return;
      this.waiting.delete(reply.id);
      if (this.waiting.size === 0) worker.unref();
      if (reply.error !== undefined) waiter.reject(new Error(reply.error));
      else waiter.resolve(reply.rows ?? []);
    });
    // A thread that dies fails what it was asked; the next query starts a new one.
    const lost = (error: Error) => {
      if (this.worker !== worker) return;
      this.worker = null;
      this.fail(error);
    };
    worker.on('error', (error) => lost(new Error(`the SQLite query thread failed: ${error.message}`)));
    worker.on('exit', (code) => lost(new Error(`the SQLite query thread stopped (exit code ${code})`)));
    this.worker = worker;
    return worker;
  }

  private fail(error: Error): void {
    for (const waiter of this.waiting.values()) waiter.reject(error);
    this.waiting.clear();
  }
}
