import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { openStore } from '../../src/store/index.ts';
import type { Store } from '../../src/store/store.ts';
import { needService, services } from './services.ts';

/** One store implementation under test: a fresh, empty store each time, and a clean-up. */
export interface StoreBackend {
  name: string;
  skip: false | string;
  open(): Promise<Store>;
  dispose(): Promise<void>;
}

function sqliteBackend(prefix: string): StoreBackend {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const file = join(dir, 'triad.db');
  return {
    name: 'SQLite',
    skip: false,
    open: () => openStore({ kind: 'sqlite', file }),
    dispose: async () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** PostgreSQL in a schema of its own, dropped afterwards, so parallel test files never meet. */
async function postgresBackend(): Promise<StoreBackend> {
  const skip = await needService('pg');
  const schema = `triad_test_${randomBytes(6).toString('hex')}`;
  return {
    name: 'PostgreSQL',
    skip,
    open: () => openStore({ kind: 'postgres', url: services.pg, schema }),
    dispose: async () => {
      const client = new pg.Client({ connectionString: services.pg });
      await client.connect();
      try {
        await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      } finally {
        await client.end();
      }
    },
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
