import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { LocalBus } from '../src/core/bus.ts';
import { VirtualClock } from '../src/core/clock.ts';
import type { StateChanged } from '../src/core/events.ts';
import { HistoryWriter } from '../src/core/history.ts';
import { createLogger, type LogLine } from '../src/core/log.ts';
import { PostgresStore } from '../src/store/postgres.ts';
import { SqliteStore } from '../src/store/sqlite.ts';
import type { Store } from '../src/store/store.ts';
import { needService, services } from './helpers/services.ts';
import { dropSchema, T0, unique } from './helpers/stores.ts';

/**
 * The history writer against real stores: a row the store refuses is dropped at once, even alone,
 * and rows that fail because the store cannot be reached are kept, however the failures fall.
 */

/** A real store that the test can make unreachable and bring back. */
interface Outage {
  name: string;
  skip: false | string;
  open(): Promise<Store>;
  goDown(): Promise<void>;
  comeBack(): Promise<void>;
  dispose(): Promise<void>;
}

/** SQLite, made unreachable by another connection holding a write transaction (SQLITE_BUSY). */
function sqliteOutage(): Outage {
  const dir = mkdtempSync(join(tmpdir(), 'triad-history-errors-'));
  const file = join(dir, 'triad.db');
  let holder: Database.Database | null = null;
  return {
    name: 'SQLite',
    skip: false,
    open: async () => {
      // A short wait for the lock, so each attempt while it is held fails quickly.
      const store = new SqliteStore({ file, busyTimeoutMs: 20 });
      await store.migrate();
      return store;
    },
    goDown: async () => {
      holder = new Database(file);
      holder.exec('BEGIN IMMEDIATE');
    },
    comeBack: async () => {
      holder?.exec('ROLLBACK');
      holder?.close();
      holder = null;
    },
    dispose: async () => rmSync(dir, { recursive: true, force: true }),
  };
}

/**
 * PostgreSQL in a schema of its own, reached through a proxy on 127.0.0.1 that the test closes
 * (its connections cut, the port refusing) and opens again on the same port.
 */
async function postgresOutage(): Promise<Outage> {
  const skip = await needService('pg');
  const schema = `triad_test_${randomBytes(6).toString('hex')}`;
  const target = new URL(services.pg);
  const sockets = new Set<Socket>();
  let server: Server | null = null;
  let port = 0;
  const listen = () =>
    new Promise<void>((resolve, reject) => {
      const proxy = createServer((client) => {
        const upstream = connect(Number(target.port || 5432), target.hostname);
        for (const socket of [client, upstream]) {
          sockets.add(socket);
          socket.on('error', () => {});
          socket.on('close', () => {
            sockets.delete(socket);
            client.destroy();
            upstream.destroy();
          });
        }
        client.pipe(upstream).pipe(client);
      });
      proxy.once('error', reject);
      proxy.listen(port, '127.0.0.1', () => {
        port = (proxy.address() as AddressInfo).port;
        server = proxy;
        resolve();
      });
    });
  const close = () =>
    new Promise<void>((resolve) => {
      for (const socket of sockets) socket.destroy();
      if (server) server.close(() => resolve());
      else resolve();
      server = null;
    });
  return {
    name: 'PostgreSQL',
    skip,
    open: async () => {
      await listen();
      const url = new URL(services.pg);
      url.port = String(port);
      const store = new PostgresStore({ url: url.toString(), schema });
      await store.migrate();
      return store;
    },
    // The next write follows at once: the pool may hand out a connection whose end it has not
    // seen yet, which then fails that write and raises an 'error' on the checked-out client (it
    // crashed the hub before PostgresStore.transaction listened for it).
    goDown: close,
    comeBack: listen,
    dispose: async () => {
      await close();
      await dropSchema(schema);
    },
  };
}

function change(householdId: string, n: number): StateChanged {
  return {
    type: 'state',
    id: unique(`evt${n}`),
    householdId,
    ts: T0 + n,
    thing: 'meter',
    property: 'power.w',
    from: null,
    to: n,
    source: 'test',
  };
}

function historySuite(outage: Outage): void {
  describe(`history writer on ${outage.name}: refused rows and an unreachable store`, { skip: outage.skip }, () => {
    let store: Store;
    before(async () => {
      store = await outage.open();
    });
    after(async () => {
      await store?.close();
      await outage.dispose();
    });

    function writerOn(target: Store, lines: LogLine[], maxBacklog?: number) {
      const bus = new LocalBus();
      const log = createLogger({ level: 'error', sink: (line) => lines.push(line) });
      const clock = new VirtualClock(T0);
      const writer = new HistoryWriter({ bus, store: target, clock, log, flushEveryMs: 60_000, maxBacklog });
      writer.start();
      return { bus, writer };
    }

    async function values(householdId: string): Promise<unknown[]> {
      const points = await store.queryHistory({ householdId, thing: 'meter', property: 'power.w' });
      return points.map((p) => p.value);
    }

    it('drops a row the store refuses, even alone, and writes the rows after it', async () => {
      const household = unique('hh');
      const lines: LogLine[] = [];
      const { bus, writer } = writerOn(store, lines);
      // Without a source the row breaks the history table's NOT NULL, in either store.
      bus.publish({ ...change(household, 0), source: null as unknown as string });
      for (let flush = 0; flush < 3; flush++) await writer.flush();
      assert.equal(writer.backlog, 0, 'the refused row is not tried again');
      bus.publish(change(household, 1));
      bus.publish(change(household, 2));
      await writer.flush();
      assert.equal(writer.backlog, 0);
      assert.deepEqual(await values(household), [1, 2]);
      assert.deepEqual(
        lines.map((line) => line.message),
        ['dropped rows the store refused'],
        'the row is dropped once, with nothing retried',
      );
      await writer.stop();
    });

    it('drops a value no store can hold (a BigInt, a cycle, a function) rather than retrying it until the backlog is full', async () => {
      const household = unique('hh');
      const lines: LogLine[] = [];
      const { bus, writer } = writerOn(store, lines);
      const cycle: Record<string, unknown> = {};
      cycle.self = cycle;
      bus.publish({ ...change(household, 0), to: 10n as unknown as number });
      bus.publish({ ...change(household, 1), to: cycle as unknown as number });
      // JSON leaves a function out: this one is written, as `{}`, and holds nothing back.
      bus.publish({
        type: 'notification',
        id: unique('evt'),
        householdId: household,
        ts: T0 + 2,
        data: { call: () => {} },
      } as never);
      for (let flush = 0; flush < 3; flush++) await writer.flush();
      assert.equal(writer.backlog, 0, 'nothing is tried again');
      bus.publish(change(household, 3));
      await writer.flush();
      assert.deepEqual(await values(household), [3]);
      assert.ok(
        lines.every((line) => line.message === 'dropped rows the store refused'),
        lines.map((line) => `${line.message} ${JSON.stringify(line)}`).join('\n'),
      );
      assert.ok(lines.length >= 1);
      await writer.stop();
    });

    it('keeps every row while the store is unreachable and writes them all, in order, once it is back', async () => {
      const household = unique('hh');
      const lines: LogLine[] = [];
      // The store comes back after the seventh attempt: wherever that falls, in a flush or while
      // a batch is being split, no row that failed for want of the store may be taken for refused.
      let attempts = 0;
      const flaky = Object.create(store) as Store;
      flaky.appendHistory = async (rows) => {
        try {
          await store.appendHistory(rows);
        } finally {
          if (++attempts === 7) await outage.comeBack();
        }
      };
      const { bus, writer } = writerOn(flaky, lines);
      await outage.goDown();
      for (let n = 0; n < 8; n++) bus.publish(change(household, n));
      for (let flush = 0; flush < 12 && writer.backlog > 0; flush++) await writer.flush();
      assert.ok(attempts > 7, 'the store was back before the writer gave up');
      assert.equal(writer.backlog, 0);
      assert.deepEqual(await values(household), [0, 1, 2, 3, 4, 5, 6, 7]);
      assert.ok(
        lines.every((line) => line.message === 'could not write history; will retry'),
        JSON.stringify(lines.map((line) => line.message)),
      );
      await writer.stop();
    });

    it('keeps no more than its backlog while the store is unreachable: the oldest history goes first, then the oldest events', async () => {
      const household = unique('hh');
      const lines: LogLine[] = [];
      const { bus, writer } = writerOn(store, lines, 5);
      await outage.goDown();
      for (let n = 0; n < 2; n++) bus.publish(change(household, n));
      const events = [0, 1, 2, 3, 4, 5].map((n) => ({
        type: 'automation.ran' as const,
        id: unique(`ran${n}`),
        householdId: household,
        ts: T0 + 10 + n,
        thing: `rule-${n}`,
      }));
      for (const event of events) bus.publish(event);
      await writer.flush();
      assert.equal(writer.backlog, 5, 'the backlog is held to its limit');
      await outage.comeBack();
      await writer.flush();
      assert.deepEqual(await values(household), [], 'both state changes were the oldest rows');
      const kept = await store.listEvents({ householdId: household, types: ['automation.ran'] });
      assert.deepEqual(
        kept.map((e) => e.id),
        events.slice(1).map((e) => e.id),
      );
      await writer.stop();
    });
  });
}

historySuite(sqliteOutage());
historySuite(await postgresOutage());
