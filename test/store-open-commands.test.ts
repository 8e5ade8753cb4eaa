/**
 * The commands a restart resumes (pending or sent) are read through an index of those alone
 * (migration 8), in SQLite and PostgreSQL: the read finds them in every household, oldest first,
 * the index covers the query as the store sends it, a finished command leaves it, and a database
 * from before the migration keeps its open commands.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import pg from 'pg';
import type { Command } from '../src/core/events.ts';
import { openStore } from '../src/store/index.ts';
import { OPEN_COMMANDS_SQL } from '../src/store/migrations.ts';
import type { Store } from '../src/store/store.ts';
import { needService, services } from './helpers/services.ts';
import { makeCommand, T0, unique } from './helpers/stores.ts';

const pgSkip = await needService('pg');

/** One database, reached through the store and behind its back (plans, indexes, old schemas). */
interface Backend {
  name: string;
  skip: false | string;
  open(): Promise<Store>;
  /** Runs statements outside the store, returning the last one's rows. */
  sql(statements: string[]): Promise<Record<string, unknown>[]>;
  /** The names of the commands table's indexes. */
  indexes(): Promise<string[]>;
  dispose(): Promise<void>;
}

function sqlite(): Backend {
  const dir = mkdtempSync(join(tmpdir(), 'triad-open-commands-'));
  const file = join(dir, 'triad.db');
  return {
    name: 'SQLite',
    skip: false,
    open: () => openStore({ kind: 'sqlite', file }),
    async sql(statements) {
      const db = new Database(file);
      try {
        let rows: Record<string, unknown>[] = [];
        for (const text of statements) {
          const statement = db.prepare(text);
          if (statement.reader) rows = statement.all() as Record<string, unknown>[];
          else statement.run();
        }
        return rows;
      } finally {
        db.close();
      }
    },
    async indexes() {
      const rows = await this.sql([
        "SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'commands' AND sql IS NOT NULL",
      ]);
      return rows.map((row) => String(row.name)).sort();
    },
    dispose: async () => rmSync(dir, { recursive: true, force: true }),
  };
}

function postgres(): Backend {
  const schema = `triad_test_${randomBytes(6).toString('hex')}`;
  return {
    name: 'PostgreSQL',
    skip: pgSkip,
    open: () => openStore({ kind: 'postgres', url: services.pg, schema }),
    async sql(statements) {
      const client = new pg.Client({ connectionString: services.pg });
      await client.connect();
      try {
        await client.query(`SET search_path TO ${schema}`);
        let rows: Record<string, unknown>[] = [];
        for (const text of statements) rows = (await client.query(text)).rows;
        return rows;
      } finally {
        await client.end();
      }
    },
    async indexes() {
      const rows = await this.sql([
        `SELECT indexname AS name FROM pg_indexes WHERE schemaname = '${schema}' AND tablename = 'commands'`,
      ]);
      return rows.map((row) => String(row.name)).sort();
    },
    async dispose() {
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

/** The query's plan as one text, with the sequential scan taken away where the planner could pick it. */
async function planOf(backend: Backend): Promise<string> {
  const rows =
    backend.name === 'SQLite'
      ? await backend.sql([`EXPLAIN QUERY PLAN ${OPEN_COMMANDS_SQL}`])
      : await backend.sql(['SET enable_seqscan = off', `EXPLAIN ${OPEN_COMMANDS_SQL}`]);
  return rows.map((row) => Object.values(row).join(' ')).join('\n');
}

const ids = (commands: Command[]) => commands.map((c) => c.id);

for (const backend of [sqlite(), postgres()]) {
  describe(`${backend.name} store: open commands`, { skip: backend.skip }, () => {
    after(() => backend.dispose());

    it('reads the pending and sent commands of every household, oldest first, through their own index', async () => {
      const store = await backend.open();
      try {
        const [a, b] = [unique('hh'), unique('hh')];
        const sent = makeCommand(a, { status: 'sent', createdAt: T0 + 2 });
        const pending = makeCommand(b, { createdAt: T0 + 1 });
        const confirmed = makeCommand(a, { status: 'confirmed', createdAt: T0 });
        const failed = makeCommand(b, { status: 'failed', createdAt: T0, error: 'no answer' });
        await store.saveCommands([sent, pending, confirmed, failed]);
        assert.deepEqual(ids(await store.listOpenCommands()), [pending.id, sent.id]);

        // Finished, a command leaves the index; reopened, one enters it again.
        await store.saveCommand({ ...sent, status: 'confirmed', updatedAt: T0 + 10 });
        await store.saveCommand({ ...confirmed, status: 'pending', updatedAt: T0 + 10 });
        assert.deepEqual(ids(await store.listOpenCommands()), [confirmed.id, pending.id]);

        assert.deepEqual(
          await backend.indexes(),
          ['commands_by_update', 'commands_open', 'commands_pkey'].filter(
            (name) => backend.name === 'PostgreSQL' || name !== 'commands_pkey',
          ),
        );
        assert.match(await planOf(backend), /commands_open/);
      } finally {
        await store.close();
      }
    });

    it('brings a database from before migration 8 to the new index and keeps its open commands', async () => {
      const store = await backend.open();
      const household = unique('hh');
      const open = makeCommand(household, { createdAt: T0 + 5 });
      try {
        await store.saveCommands([open, makeCommand(household, { status: 'expired' })]);
      } finally {
        await store.close();
      }
      // As a database migrated to version 7 has it.
      await backend.sql([
        'DROP INDEX commands_open',
        'CREATE INDEX commands_by_status ON commands (status)',
        'DELETE FROM schema_migrations WHERE version = 8',
      ]);
      const reopened = await backend.open();
      try {
        assert.ok((await backend.indexes()).includes('commands_open'));
        assert.ok(!(await backend.indexes()).includes('commands_by_status'));
        assert.ok(ids(await reopened.listOpenCommands()).includes(open.id));
        const versions = await backend.sql(['SELECT version FROM schema_migrations ORDER BY version']);
        assert.ok(versions.some((row) => Number(row.version) === 8));
      } finally {
        await reopened.close();
      }
    });
  });
}
