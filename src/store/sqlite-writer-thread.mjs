// The SQLite store's writer thread (see sqlite-writer.ts). Plain JavaScript, so it starts the same
// way however the hub itself was started (through tsx, or compiled): it only needs better-sqlite3.
// It owns a second connection to the hub's database file and runs the batches it is sent, each in
// one transaction, in the order they arrive; the reply goes out only after the commit. A batch may
// come in parts (`more: true` on all but the last): they are held until the last one arrives.
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

// The thread keeps the hub's priority. It ran ten nice steps lower for a while, so a report would
// never wait behind a commit; measured again on two cores (alternating trials), the round trip
// at 1,000 and 5,000 reports/s was the same either way, but under a flood of reports the lowered
// thread fell behind, the rows waiting for it were collected over and over on the hub's heap,
// and ingest ran 10-30 % slower at 7-25 % more CPU a report (bench figure 3, three pairs).
const db = new Database(workerData.file);
// journal_mode is the file's and was set by the main connection; these are per connection.
db.pragma('synchronous = NORMAL');
db.pragma(`busy_timeout = ${workerData.busyTimeoutMs}`);
db.pragma('foreign_keys = ON');

const statements = new Map();
function statement(sql) {
  let prepared = statements.get(sql);
  if (!prepared) {
    prepared = db.prepare(sql);
    statements.set(sql, prepared);
  }
  return prepared;
}

/** Runs every row of every step; returns the rows changed, for the callers that count them. */
function runSteps(steps) {
  let changes = 0;
  for (const step of steps) {
    const prepared = statement(step.sql);
    const json = step.json;
    for (const row of step.rows) {
      // Columns sent as objects are stored as their JSON text (WriteStep.json in sqlite-writer.ts).
      if (json) for (const column of json) row[column] = JSON.stringify(row[column]);
      changes += prepared.run(row).changes;
    }
  }
  return changes;
}

const inTransaction = db.transaction(runSteps);
/** Steps of batches whose last part has not arrived yet, by batch id. */
const held = new Map();

parentPort.on('message', (message) => {
  if (message.close) {
    db.close();
    parentPort.postMessage({ id: message.id, changes: 0 });
    return;
  }
  if (message.discard) {
    // A later part could not be copied to this thread: the batch is refused whole.
    held.delete(message.id);
    return;
  }
  if (message.more) {
    const earlier = held.get(message.id);
    if (earlier) earlier.push(...message.steps);
    else held.set(message.id, message.steps);
    return;
  }
  let steps = message.steps;
  const earlier = held.get(message.id);
  if (earlier) {
    held.delete(message.id);
    steps = earlier.concat(steps);
  }
  try {
    const rows = steps.reduce((n, step) => n + step.rows.length, 0);
    // A statement alone commits for less than one wrapped in a transaction.
    const changes = rows === 1 ? runSteps(steps) : inTransaction(steps);
    parentPort.postMessage({ id: message.id, changes });
  } catch (error) {
    parentPort.postMessage({
      id: message.id,
      error: { message: error instanceof Error ? error.message : String(error), code: error?.code },
    });
  }
});
