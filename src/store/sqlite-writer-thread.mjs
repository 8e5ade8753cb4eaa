// The SQLite store's writer thread (see sqlite-writer.ts). Plain JavaScript, so it starts the same
// way however the hub itself was started (through tsx, or compiled): it only needs better-sqlite3.
// It owns a second connection to the hub's database file and runs the batches it is sent, each in
// one transaction, in the order they arrive; the reply goes out only after the commit. A batch may
// come in parts (`more: true` on all but the last): they are held until the last one arrives.
import { closeSync, fdatasyncSync, openSync, readlinkSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

// The hub moves this thread between Linux's idle and normal scheduling classes (writer-priority.ts):
// idle while it keeps up, so a report that wakes never waits for a commit to give up its core;
// normal while writes pile up. Ten nice steps lower, tried before, did neither: the round trip at
// 1,000 and 5,000 reports/s was the same, and under a flood the lowered thread fell behind, the
// rows waiting for it were collected over and over on the hub's heap, and ingest ran 10-30 %
// slower at 7-25 % more CPU a report (bench figure 3, three pairs).
const db = new Database(workerData.file);
// journal_mode is the file's and was set by the main connection; these are per connection. This
// connection makes the commits, so its `synchronous` is what a power cut keeps (SYNCHRONOUS in
// sqlite.ts says why it is FULL).
db.pragma(`synchronous = ${workerData.synchronous}`);
db.pragma(`busy_timeout = ${workerData.busyTimeoutMs}`);
db.pragma('foreign_keys = ON');

// The thread's own id, for the hub to move it between scheduling classes (writer-priority.ts).
// Linux only: elsewhere there is no /proc/thread-self, and the thread stays as it is.
try {
  parentPort.postMessage({ thread: Number(readlinkSync('/proc/thread-self').split('/').pop()) });
} catch {
  // not Linux
}

const statements = new Map();
function statement(sql) {
  let prepared = statements.get(sql);
  if (!prepared) {
    prepared = db.prepare(sql);
    statements.set(sql, prepared);
  }
  return prepared;
}

/**
 * The thread steps aside for a moment after every SLICE_MS of a batch's rows. On two cores, a
 * commit of a few milliseconds in one piece (a 50 ms write window at 1,000 reports/s) delayed
 * whatever the machine was to run next: the report on its way through the broker, the command on
 * its way back. Measured with the ideal relay beside a thread busy 3 ms every 50 ms, its p99 at
 * 1,000 reports/s went from ~0.8 to ~2.5 ms, at any nice level; the same work in 0.3 ms slices
 * with these sleeps between them left it at ~0.85. Here, Triad's own p99 at 1,000 reports/s went
 * from a median of 2.41 to 1.77 ms (nine trials a side, alternating). The sleep asks for 50 µs;
 * the kernel's timer slack makes it ~0.1 ms, so a window's transaction stays open a few
 * milliseconds longer (WAL readers never see it half done), and it costs wall time, not CPU. A
 * batch from a flood (more rows than the hub spreads over parts, `pausedBatchRows`: PART_ROWS ×
 * MAX_SPREAD_PARTS in sqlite-writer.ts) runs without pauses: there the thread's throughput is
 * what counts, and everything else is busy anyway. The pause comes before a row, never after the
 * last one, so the commit does not wait for it.
 */
const SLICE_MS = 0.3;
const PAUSE_MS = 0.05;
const pauseCell = new Int32Array(new SharedArrayBuffer(4));
let sliceStart = 0;
let pausing = false;
/** Pauses in the current batch, sent with its reply (the tests look at it). */
let pauses = 0;

/** Runs every row of every step; returns the rows changed, for the callers that count them. */
function runSteps(steps) {
  let changes = 0;
  for (const step of steps) {
    const prepared = statement(step.sql);
    const json = step.json;
    // Plain rows come as one JSON text (WriteStep.plain in sqlite-writer.ts).
    const rows = step.text === undefined ? step.rows : JSON.parse(step.text);
    for (const row of rows) {
      if (pausing && performance.now() - sliceStart > SLICE_MS) {
        Atomics.wait(pauseCell, 0, 0, PAUSE_MS);
        pauses++;
        sliceStart = performance.now();
      }
      // Columns sent as objects are stored as their JSON text (WriteStep.json in sqlite-writer.ts).
      if (json) for (const column of json) row[column] = JSON.stringify(row[column]);
      changes += prepared.run(row).changes;
    }
  }
  return changes;
}

const inTransaction = db.transaction(runSteps);

/**
 * When the disk is waited for (see SYNCHRONOUS and WriteOptions.background in sqlite-writer.ts).
 * The connection rests at FULL: every commit someone waits for (a command's 202, a stored timer, a
 * rule) syncs the log before its reply. A background batch (a write window's history, events,
 * command statuses, traces, audit lines: rows nobody is waiting on) commits at NORMAL, without a
 * sync, as long as the oldest commit not yet synced is younger than `syncWithinMs`; past that, it
 * commits at FULL itself. The log is one file written in order, so any sync also makes every
 * commit before it durable; a quiet spell after an unsynced commit gets a sync of the log file of
 * its own, `syncWithinMs` later. A power cut then loses at most that much of what nobody was told
 * was stored (a crash of the hub loses none of it: the commits are in the operating system's
 * hands), in exchange for one sync a second at most, rather than three every write window (at
 * 1,000 reports/s ~12 µs of the thread's CPU an automated message, and on an SD card each sync
 * takes milliseconds).
 */
const syncWithinMs = workerData.syncWithinMs;
const lazy = db.prepare('PRAGMA synchronous = NORMAL');
const full = db.prepare(`PRAGMA synchronous = ${workerData.synchronous}`);
/** performance.now() of the oldest commit the log has not been synced since; null when none. */
let unsyncedSince = null;
let syncTimer = null;
/**
 * The hub's own commits (small background batches it commits on its connection while this thread
 * is idle, see SqliteStore.write): the latest one it has told of, and the latest one a checkpoint
 * has followed. The hub's connection never checkpoints (a checkpoint there would hold its event
 * loop), so this thread does, after the sync that follows those commits.
 */
let hubCommits = 0;
let hubCommitsCheckpointed = 0;

/** From the first commit the log has not been synced since, a sync of it within syncWithinMs. */
function unsynced(now) {
  if (unsyncedSince !== null) return;
  unsyncedSince = now;
  syncTimer = setTimeout(syncLog, syncWithinMs);
}

/** Syncs the log file itself, for commits made at NORMAL that nothing synced since. */
function syncLog() {
  if (syncTimer) clearTimeout(syncTimer);
  syncTimer = null;
  if (unsyncedSince === null) return;
  unsyncedSince = null;
  // Read before the sync: the hub's commits told of by now are all in the log file it syncs.
  const upTo = hubCommits;
  let fd = null;
  try {
    fd = openSync(`${workerData.file}-wal`, 'r');
    fdatasyncSync(fd);
  } catch {
    // No log file: a checkpoint emptied it into the database file and synced that.
  } finally {
    if (fd !== null) closeSync(fd);
  }
  if (upTo > hubCommitsCheckpointed) {
    hubCommitsCheckpointed = upTo;
    // PASSIVE: copies what no reader still needs, waits for nobody, and writers go on meanwhile.
    db.pragma('wal_checkpoint(PASSIVE)');
  }
  parentPort.postMessage({ logSynced: true, hubCommits: upTo });
}

/** Runs a batch's steps, committed at NORMAL when it may wait for the disk (see above); returns whether it synced. */
function commit(steps, rows, background) {
  const now = performance.now();
  const deferred = background && syncWithinMs > 0 && (unsyncedSince === null || now - unsyncedSince < syncWithinMs);
  if (deferred) lazy.run();
  let changes;
  try {
    // A statement alone commits for less than one wrapped in a transaction.
    changes = rows === 1 ? runSteps(steps) : inTransaction(steps);
  } finally {
    if (deferred) full.run();
  }
  if (!deferred) {
    unsyncedSince = null;
    if (syncTimer) clearTimeout(syncTimer);
    syncTimer = null;
  } else unsynced(now);
  return { changes, synced: !deferred };
}
/** Steps of batches whose last part has not arrived yet, by batch id. */
const held = new Map();

parentPort.on('message', (message) => {
  if (message.close) {
    syncLog();
    db.close();
    parentPort.postMessage({ id: message.id, changes: 0 });
    return;
  }
  if (message.setting) {
    // What this connection runs with (`synchronous`), for the store to report; no write.
    parentPort.postMessage({ id: message.id, changes: db.pragma(message.setting, { simple: true }) });
    return;
  }
  if (message.hubCommits !== undefined) {
    // The hub committed at NORMAL on its own connection (see hubCommits): the log is to be synced.
    hubCommits = Math.max(hubCommits, message.hubCommits);
    unsynced(performance.now());
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
    const rows = steps.reduce((n, step) => n + (step.text === undefined ? step.rows.length : step.count), 0);
    pausing = rows <= workerData.pausedBatchRows;
    sliceStart = performance.now();
    pauses = 0;
    const { changes, synced } = commit(steps, rows, message.background === true);
    parentPort.postMessage({ id: message.id, changes, pauses, synced });
  } catch (error) {
    parentPort.postMessage({
      id: message.id,
      error: { message: error instanceof Error ? error.message : String(error), code: error?.code },
    });
  }
});
