/**
 * A small background batch (a write window's rows at a steady rate) is committed on the hub's own
 * connection while the writer thread is idle, rather than handed to the thread; the thread still
 * syncs it within SYNC_WITHIN_MS and checkpoints it into the database file (the hub's connection
 * never checkpoints). A batch someone waits for, a large one, and any batch while the thread is
 * busy go to the thread, in order.
 */
import assert from 'node:assert/strict';
import { copyFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import type { StateChanged } from '../src/core/events.ts';
import { openStore } from '../src/store/index.ts';
import { BACKGROUND_ROWS_HERE } from '../src/store/sqlite.ts';
import { SYNC_WITHIN_MS } from '../src/store/sqlite-writer.ts';
import type { Store } from '../src/store/store.ts';
import { tempDir } from './helpers/hub-process.ts';
import { T0, unique } from './helpers/stores.ts';

const dirs: string[] = [];
after(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

async function storeIn(name: string): Promise<{ store: Store; file: string; dir: string }> {
  const dir = await tempDir(`triad-here-${name}-`);
  dirs.push(dir);
  const file = join(dir, 'triad.db');
  return { store: await openStore({ kind: 'sqlite', file, writer: 'thread' }), file, dir };
}

function readings(household: string, count: number, from = 0): StateChanged[] {
  return Array.from({ length: count }, (_, i) => ({
    type: 'state',
    id: unique('sc'),
    householdId: household,
    ts: T0 + from + i,
    thing: 'meter',
    property: 'sensor.power',
    from: from + i - 1,
    to: from + i,
    source: 'test',
  }));
}

const pointsOf = async (store: Store, household: string) =>
  (await store.queryHistory({ householdId: household, thing: 'meter', property: 'sensor.power', limit: 50_000 }))
    .length;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('background batches committed by the hub itself', () => {
  it('commits a small background batch at once, on its own connection, while the thread is idle', async () => {
    const { store } = await storeIn('small');
    try {
      const household = unique('hh');
      // Not awaited: a batch handed to the thread is not in the file before the thread's reply.
      const written = store.appendHistory(readings(household, 50), { background: true });
      assert.equal(await pointsOf(store, household), 50);
      await written;
      // Larger than BACKGROUND_ROWS_HERE (with its latest value), or waited for: the thread's.
      const large = store.appendHistory(readings(household, BACKGROUND_ROWS_HERE, 100), { background: true });
      const waited = store.appendHistory(readings(household, 5, 1000));
      assert.equal(await pointsOf(store, household), 50, 'the thread has not answered yet');
      await Promise.all([large, waited]);
      assert.equal(await pointsOf(store, household), 50 + BACKGROUND_ROWS_HERE + 5);
    } finally {
      await store.close();
    }
  });

  it('leaves traces to the thread, small as their batch may be (each one is JSON to encode too)', async () => {
    const { store } = await storeIn('traces');
    try {
      const household = unique('hh');
      const id = unique('trc');
      const trace = { id, householdId: household, rule: 'r', startedAt: T0, status: 'finished' as const, body: { id } };
      const written = store.saveTraces([trace, { ...trace, id: unique('trc') }], { background: true });
      assert.equal(await store.getTrace(household, id), null, 'not written before the thread answers');
      await written;
      assert.equal((await store.getTrace(household, id))?.id, id);
    } finally {
      await store.close();
    }
  });

  it('hands a small background batch to the thread while the thread is busy, behind what it holds', async () => {
    const { store } = await storeIn('busy');
    try {
      const household = unique('hh');
      const big = store.appendHistory(readings(household, 5000), { background: true });
      // The same ids again, smaller: written first, it would be the one kept (ON CONFLICT DO
      // NOTHING). Behind the big batch, it changes nothing.
      const first = readings(household, 10).map((r) => ({ ...r, to: -1 }));
      const again = store.appendHistory(first, { background: true });
      await Promise.all([big, again]);
      const points = await store.queryHistory({
        householdId: household,
        thing: 'meter',
        property: 'sensor.power',
        limit: 10,
      });
      assert.equal(points.length, 10);
      // Ids differ, so both landed; the order of their commits shows in the latest value.
      const latest = await store.latestValues(household);
      assert.equal(latest.find((v) => v.property === 'sensor.power')?.value, -1, 'the small batch landed last');
    } finally {
      await store.close();
    }
  });

  it('is in the database file itself within the sync interval: the thread synced and checkpointed it', async () => {
    const { store, file, dir } = await storeIn('synced');
    try {
      const household = unique('hh');
      await store.appendHistory(readings(household, 40), { background: true });
      // Only the database file, as a power cut that lost the log would leave it.
      const copy = join(dir, 'copy.db');
      const deadline = Date.now() + SYNC_WITHIN_MS + 3000;
      let found = 0;
      while (found < 40 && Date.now() < deadline) {
        await sleep(100);
        await copyFile(file, copy);
        await rm(`${copy}-wal`, { force: true });
        const db = new Database(copy, { readonly: true });
        try {
          // Before the first checkpoint even the schema is only in the log.
          const tables = db.prepare("SELECT count(*) FROM sqlite_schema WHERE name = 'history'").pluck().get();
          if (tables === 1)
            found = Number(
              db.prepare('SELECT count(*) FROM history WHERE household_id = ?').pluck().get(household) as number,
            );
        } finally {
          db.close();
        }
      }
      assert.equal(found, 40, `checkpointed into the database file (${found})`);
    } finally {
      await store.close();
    }
  });
});
