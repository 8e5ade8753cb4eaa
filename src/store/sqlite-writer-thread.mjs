// The SQLite store's writer thread (see sqlite-writer.ts). Plain JavaScript, so it starts the same
// way however the hub itself was started (through tsx, or compiled): it only needs better-sqlite3.
// It owns a second connection to the hub's database file and runs the batches it is sent, each in
// one transaction, in the order they arrive; the reply goes out only after the commit. A batch may
// come in parts (`more: true` on all but the last): they are held until the last one arrives.
import { readlinkSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

// Writing is background work: a history row or a command's status already waits out a window of
// tens of milliseconds, while every MQTT report waits for the main thread. On Linux each thread
// has a nice value of its own, so this thread takes ten steps lower priority than the hub: when
// the cores are busy, the event loop runs first (at 5,000 reports a second on two cores, the
// thread otherwise took the core from under a report for several milliseconds at a time). Alone
// on a core it still runs flat out. Elsewhere (no /proc/thread-self) it keeps the hub's priority.
try {
  const thread = Number(readlinkSync('/proc/thread-self').split('/').pop());
  if (Number.isInteger(thread) && thread > 0) setPriority(thread, Math.min(19, getPriority(thread) + 10));
} catch {
  // Not Linux, or not allowed: the thread keeps the priority it was born with.
}

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
