import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { LocalBus } from '../src/core/bus.ts';
import { VirtualClock } from '../src/core/clock.ts';
import type { HubEvent, StateChanged } from '../src/core/events.ts';
import { HistoryWriter } from '../src/core/history.ts';
import { createLogger } from '../src/core/log.ts';
import { GroupCommit } from '../src/store/group-commit.ts';
import { openStore } from '../src/store/index.ts';
import type { SqliteStore } from '../src/store/sqlite.ts';
import { SqliteWriter, SYNC_WITHIN_MS } from '../src/store/sqlite-writer.ts';
import type { Store, WriteOptions } from '../src/store/store.ts';
import { tempDir } from './helpers/hub-process.ts';
import { T0, unique } from './helpers/stores.ts';

/**
 * A write window's rows (history, events, command statuses, traces) commit without waiting for
 * the disk, and are synced within SYNC_WITHIN_MS; every write someone waits for syncs the log at
 * its commit, as before. What the thread did is read from its replies (`synced`) and its
 * `logSynced` message, and the connection's setting from the store.
 */

let dir: string;
before(async () => {
  dir = await tempDir('triad-lazy-sync-');
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const SQL = 'INSERT INTO samples (id, value) VALUES (?, ?)';

/** A writer on a file of its own with one table, and what its thread says back. */
async function writerOn(name: string, syncWithinMs: number) {
  const file = join(dir, `${name}.db`);
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE samples (id TEXT PRIMARY KEY, value TEXT)');
  const writer = new SqliteWriter(file, 5000, null, syncWithinMs);
  const replies: Array<{ id?: number; synced?: boolean; logSynced?: boolean }> = [];
  // The first write starts the thread; its messages are listened to from then on.
  await writer.write([{ sql: SQL, rows: [[unique('s'), 'first']] }]);
  (writer as unknown as { worker: { on(event: 'message', f: (m: never) => void): void } }).worker.on(
    'message',
    (reply: (typeof replies)[number]) => replies.push(reply),
  );
  const row = () => [unique('s'), 'x'];
  return {
    db,
    writer,
    replies,
    /** Writes two rows (a transaction) and returns whether the thread synced the log at its commit. */
    async write(options?: WriteOptions): Promise<boolean | undefined> {
      const before = replies.length;
      await writer.write([{ sql: SQL, rows: [row(), row()] }], options);
      return replies.slice(before).find((r) => r.id !== undefined)?.synced;
    },
    count: () => Number(db.prepare('SELECT count(*) FROM samples').pluck().get()),
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('the writer thread syncs the log for what is waited for, and within a while for the rest', () => {
  it('a background batch commits without a sync; a batch without the option syncs, as every write did', async () => {
    const w = await writerOn('each', 60_000);
    try {
      assert.equal(await w.write({ background: true }), false);
      assert.equal(await w.write({ background: true }), false);
      // Readable at once all the same: committed, only not yet synced.
      assert.equal(w.count(), 5);
      assert.equal(await w.write(), true);
      assert.equal(await w.write({ background: false }), true);
      // A lone row commits on its own, the same way.
      const before = w.replies.length;
      await w.writer.write([{ sql: SQL, rows: [[unique('s'), 'one']] }], { background: true });
      assert.equal(w.replies.slice(before).find((r) => r.id !== undefined)?.synced, false);
    } finally {
      await w.writer.close();
      w.db.close();
    }
  });

  it('a background batch syncs itself when the oldest unsynced commit is past the bound and the timer is late', async () => {
    const w = await writerOn('bound', 100);
    try {
      assert.equal(await w.write({ background: true }), false, 'the first waits');
      // A long batch holds the thread past the bound (the timer cannot run meanwhile); the batch
      // queued behind it comes first and finds the oldest unsynced commit past due.
      const burn = `INSERT INTO samples (id, value) SELECT 'burn' || x, NULL FROM
        (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 400000) SELECT x FROM c)`;
      const before = w.replies.length;
      const started = performance.now();
      const long = w.writer.write([{ sql: burn, rows: [[]] }], { background: true });
      const next = w.writer.write(
        [
          {
            sql: SQL,
            rows: [
              [unique('s'), 'a'],
              [unique('s'), 'b'],
            ],
          },
        ],
        {
          background: true,
        },
      );
      await Promise.all([long, next]);
      const took = performance.now() - started;
      const [longReply, nextReply] = w.replies.slice(before).filter((r) => r.id !== undefined);
      assert.equal(longReply.synced, false, 'the long batch began within the bound');
      if (took < 150) return; // too fast a machine to hold the thread past the bound
      assert.equal(nextReply.synced, true);
      assert.equal(await w.write({ background: true }), false, 'and the count starts again');
    } finally {
      await w.writer.close();
      w.db.close();
    }
  });

  it('a quiet spell after an unsynced commit gets a sync of the log of its own, once', async () => {
    const w = await writerOn('quiet', 150);
    try {
      await w.write({ background: true });
      await w.write({ background: true });
      const deadline = performance.now() + 5000;
      while (!w.replies.some((r) => r.logSynced) && performance.now() < deadline) await sleep(20);
      assert.equal(w.replies.filter((r) => r.logSynced).length, 1, 'one sync for both commits');
      await sleep(400);
      assert.equal(w.replies.filter((r) => r.logSynced).length, 1, 'and none while nothing is written');
      // A synced write in between leaves nothing for the timer.
      await w.write({ background: true });
      await w.write();
      await sleep(400);
      assert.equal(w.replies.filter((r) => r.logSynced).length, 1);
    } finally {
      await w.writer.close();
      w.db.close();
    }
  });

  it('a refused background batch stores nothing and changes nothing about what is synced', async () => {
    const w = await writerOn('refused', 60_000);
    try {
      const id = unique('s');
      await assert.rejects(
        w.writer.write(
          [
            { sql: SQL, rows: [[id, 'a']] },
            { sql: SQL, rows: [[id, 'again']] },
          ],
          { background: true },
        ),
        /UNIQUE/,
      );
      assert.equal(w.count(), 1, 'only the first write');
      // The connection is back at its resting setting, and the next waited-for write syncs.
      assert.equal(await w.write(), true);
    } finally {
      await w.writer.close();
      w.db.close();
    }
  });

  it('close syncs what is left unsynced, and the rows are there when the file is opened again', async () => {
    const file = join(dir, 'store.db');
    const store = (await openStore({ kind: 'sqlite', file })) as SqliteStore;
    const household = unique('hh');
    const changes: StateChanged[] = [1, 2, 3].map((n) => ({
      type: 'state',
      id: unique('sc'),
      householdId: household,
      ts: T0 + n,
      thing: 'car',
      property: 'battery.level',
      from: n - 1,
      to: n,
      source: 'test',
    }));
    await store.appendHistory(changes, { background: true });
    // The connection rests at FULL whatever the last batch was (2 is FULL).
    assert.deepEqual(await store.synchronous(), { connection: 2, writer: 2 });
    await store.close();
    const again = (await openStore({ kind: 'sqlite', file })) as SqliteStore;
    try {
      const points = await again.queryHistory({ householdId: household, thing: 'car', property: 'battery.level' });
      assert.deepEqual(
        points.map((p) => p.value),
        [1, 2, 3],
      );
    } finally {
      await again.close();
    }
  });

  it('the bound is a second', () => {
    assert.equal(SYNC_WITHIN_MS, 1000);
  });
});

describe('who asks for background writes', () => {
  it('a group commit batch is background only when nobody waits for any of its items', async () => {
    const clock = new VirtualClock(T0);
    const calls: Array<{ items: string[]; background: boolean }> = [];
    const commits = new GroupCommit<string>({
      clock,
      writeBatch: async (items, background) => {
        calls.push({ items, background });
      },
      writeOne: async (item, background) => {
        calls.push({ items: [item], background });
      },
      onError: () => {},
    });
    commits.write('a', 'a');
    commits.write('b', 'b');
    await commits.flush();
    commits.write('c', 'c');
    const waited = commits.commit('d', 'd');
    await commits.flush();
    await waited;
    commits.write('e', 'e');
    await commits.flush();
    await commits.commit('f', 'f');
    assert.deepEqual(calls, [
      { items: ['a', 'b'], background: true },
      { items: ['c', 'd'], background: false },
      { items: ['e'], background: true },
      { items: ['f'], background: false },
    ]);
  });

  it('a refused batch written again item by item: each item is background as it came', async () => {
    const clock = new VirtualClock(T0);
    const calls: Array<{ item: string; background: boolean }> = [];
    const commits = new GroupCommit<string>({
      clock,
      writeBatch: async () => {
        throw new Error('refused');
      },
      writeOne: async (item, background) => {
        calls.push({ item, background });
      },
      onError: () => {},
    });
    commits.write('a', 'a');
    const waited = commits.commit('b', 'b');
    await commits.flush();
    await waited;
    assert.deepEqual(calls, [
      { item: 'a', background: true },
      { item: 'b', background: false },
    ]);
  });

  it("the history writer's windows are background: history and events alike", async () => {
    const seen: Array<{ what: string; options?: WriteOptions }> = [];
    const store = {
      appendHistory: async (_rows: StateChanged[], options?: WriteOptions) => {
        seen.push({ what: 'history', options });
      },
      appendEvents: async (_rows: HubEvent[], options?: WriteOptions) => {
        seen.push({ what: 'events', options });
      },
    } as unknown as Store;
    const clock = new VirtualClock(T0);
    const bus = new LocalBus();
    const history = new HistoryWriter({ bus, store, clock, log: createLogger({ level: 'error' }) });
    history.start();
    bus.publish({
      type: 'state',
      id: unique('sc'),
      householdId: 'hh',
      ts: T0,
      thing: 'car',
      property: 'battery.level',
      from: 1,
      to: 2,
      source: 'test',
    });
    bus.publish({ type: 'thing.removed', id: unique('ev'), householdId: 'hh', ts: T0, thing: 'car' } as HubEvent);
    await history.flush();
    await history.stop();
    assert.deepEqual(seen, [
      { what: 'history', options: { background: true } },
      { what: 'events', options: { background: true } },
    ]);
  });
});
