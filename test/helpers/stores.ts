import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import Database from 'better-sqlite3';
import pg from 'pg';
import type { Command, StateChanged } from '../../src/core/events.ts';
import type { StoreChoice } from '../../src/core/hub.ts';
import { openStore } from '../../src/store/index.ts';
import type { Store } from '../../src/store/store.ts';
import { needService, services } from './services.ts';

/** One store implementation under test: a fresh, empty store each time, and a clean-up. */
export interface StoreBackend {
  name: string;
  skip: false | string;
  /** Opens the backend's one place of data; called again, it reopens the same data. */
  open(): Promise<Store>;
  /** Runs one statement behind the store's back, with `?` placeholders (rewritten to $n for PostgreSQL). */
  exec(sql: string, params: unknown[]): Promise<void>;
  dispose(): Promise<void>;
}

/** The time the store suites' rows are written at: a fixed instant, so ranges are exact. */
export const T0 = 1_700_000_000_000;

/**
 * The store of a describe() block: opened before its tests, closed (and the backend disposed)
 * after them. Returns the getter the tests read it through.
 */
export function storeOf(backend: StoreBackend): () => Store {
  let store: Store | undefined;
  before(async () => {
    store = await backend.open();
  });
  after(async () => {
    await store?.close();
    await backend.dispose();
  });
  return () => {
    if (!store) throw new Error(`the ${backend.name} store is not open`);
    return store;
  };
}

/** A pending command as a rule issues it; `fields` override any part. */
export function makeCommand(householdId: string, fields: Partial<Command> = {}): Command {
  return {
    id: unique('cmd'),
    householdId,
    thing: 'fan',
    action: 'turn_on',
    input: {},
    status: 'pending',
    expect: { 'switch.on': true },
    error: null,
    cause: 'trg_1',
    issuedBy: 'rule:fan-when-hot',
    createdAt: T0,
    updatedAt: T0,
    expiresAt: T0 + 30_000,
    ...fields,
  };
}

/** An id no other test run uses, so suites sharing one database never meet. */
/**
 * A meter's history for the parity tests of downsampling: a number (`sensor.power`) and a word
 * (`status`) at T0 + 0, 1, 2, 3 and 10 ms, so both kinds of bucket have values to cut.
 */
export function meterChanges(householdId: string): StateChanged[] {
  return [0, 1, 2, 3, 10].flatMap((n): StateChanged[] =>
    [
      ['sensor.power', n],
      ['status', `s${n % 2}`],
    ].map(([property, to]) => ({
      type: 'state',
      id: `${property}-${n}`,
      householdId,
      ts: T0 + n,
      cause: null,
      thing: 'meter',
      property: String(property),
      from: undefined,
      to,
      source: 'test',
    })),
  );
}

export function unique(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString('hex')}`;
}

function sqliteBackend(prefix: string): StoreBackend {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const file = join(dir, 'triad.db');
  return {
    name: 'SQLite',
    skip: false,
    open: () => openStore({ kind: 'sqlite', file }),
    exec: async (sql, params) => {
      const db = new Database(file);
      try {
        db.prepare(sql).run(...params);
      } finally {
        db.close();
      }
    },
    dispose: async () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** PostgreSQL in a schema of its own, dropped afterwards, so parallel test files never meet. */
async function postgresBackend(): Promise<StoreBackend> {
  const skip = await needService('pg');
  const schema = `triad_test_${randomBytes(6).toString('hex')}`;
  const withClient = async (work: (client: pg.Client) => Promise<void>) => {
    const client = new pg.Client({ connectionString: services.pg });
    await client.connect();
    try {
      await work(client);
    } finally {
      await client.end();
    }
  };
  return {
    name: 'PostgreSQL',
    skip,
    open: () => openStore({ kind: 'postgres', url: services.pg, schema }),
    exec: (sql, params) =>
      withClient(async (client) => {
        let n = 0;
        await client.query(`SET search_path TO ${schema}`);
        await client.query(
          sql.replace(/\?/g, () => `$${++n}`),
          params,
        );
      }),
    dispose: () =>
      withClient(async (client) => {
        await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      }),
  };
}

/**
 * SQLite and PostgreSQL, for a suite written once and run against both. Await it before declaring
 * any suite: the runner starts on the first declaration, and a suite declared after an await
 * would be missed.
 */
export async function storeBackends(prefix: string): Promise<StoreBackend[]> {
  return [sqliteBackend(prefix), await postgresBackend()];
}

/** Drops a test's PostgreSQL schema and everything in it, on a connection of its own. */
export async function dropSchema(schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: services.pg });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  } finally {
    await client.end();
  }
}

/**
 * The stores a whole hub can run on, for a describe() per store: SQLite always, PostgreSQL in a
 * schema of its own (drop it with dropSchema after) unless the service is missing.
 */
export const hubStores: Array<{ name: string; skip: () => Promise<false | string>; choice: () => StoreChoice }> = [
  { name: 'SQLite', skip: async () => false, choice: () => ({ kind: 'sqlite' }) },
  {
    name: 'PostgreSQL',
    skip: () => needService('pg'),
    choice: () => ({ kind: 'postgres', url: services.pg, schema: `triad_test_${randomBytes(6).toString('hex')}` }),
  },
];
