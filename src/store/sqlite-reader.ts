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
