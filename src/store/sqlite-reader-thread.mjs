// The SQLite store's start-up reader (see sqlite-reader.ts). Plain JavaScript, like the writer
// thread, so it starts the same way however the hub was started. It opens the database read-only,
// runs the queries it was given one after the other, and posts their raw rows in chunks as it
// steps them, so the hub builds its twins from one chunk while this thread reads the next.
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

const { file, queries, chunkRows } = workerData;
let db;
try {
  db = new Database(file, { readonly: true, fileMustExist: true });
  for (let query = 0; query < queries.length; query++) {
    const { sql, shareColumn } = queries[query];
    // A text seen before in the shared column goes as its number (the order it was first sent
    // in): a hundred thousand things of a few kinds repeat a few spec texts, and copying each
    // again to the hub's thread was most of what crossed.
    const sent = new Map();
    let rows = [];
    for (const row of db.prepare(sql).raw().iterate()) {
      if (shareColumn !== undefined) {
        const text = row[shareColumn];
        if (typeof text === 'string') {
          const n = sent.get(text);
          if (n === undefined) sent.set(text, sent.size);
          else row[shareColumn] = n;
        }
      }
      rows.push(row);
      if (rows.length === chunkRows) {
        parentPort.postMessage({ query, rows });
        rows = [];
      }
    }
    if (rows.length > 0) parentPort.postMessage({ query, rows });
  }
  parentPort.postMessage({ done: true });
} catch (error) {
  parentPort.postMessage({ error: error instanceof Error ? error.message : String(error) });
} finally {
  db?.close();
}
