/**
 * Ids, things and properties order the same in both stores whatever PostgreSQL's locale: SQLite
 * compares TEXT as bytes (code points), and PostgreSQL compared by the database's default
 * collation, so in a database created with an English locale 'aB' came before 'Ab' and '-' or '_'
 * were all but ignored. Lists came back in another order than SQLite's, and a page's cursor
 * (`ts = x AND id > y`) skipped or repeated rows. Migration 9 makes those columns compare
 * byte-wise ("C"). The test makes a database of its own with an English default collation (the
 * `test` database is C.UTF-8, where the two orders agree by chance) and drops it afterwards.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import type { Command, HubEvent, StateChanged } from '../src/core/events.ts';
import type { Thing } from '../src/model/thing.ts';
import { openStore } from '../src/store/index.ts';
import type { Store } from '../src/store/store.ts';
import { needService, services } from './helpers/services.ts';
import { makeCommand, storeBackends, storeOf, T0, unique } from './helpers/stores.ts';

/** Ids that order differently under an English collation and byte-wise. */
const IDS = ['a-b', 'aB', 'a_b', 'Ab', 'ab', 'a b', 'B', 'b-1', 'a.c'];
const HOUSEHOLD = 'h';
const byCodePoint = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

async function withClient<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/**
 * How to create a database whose default collation is English: the libc locale where the machine
 * has it, else ICU's (PostgreSQL 15 on); null when neither is there.
 */
async function englishLocale(): Promise<string | null> {
  return withClient(services.pg, async (client) => {
    const { rows } = await client.query<{ collname: string; collprovider: string }>(
      "SELECT collname, collprovider FROM pg_collation WHERE collname IN ('en_US.utf8', 'en_US.UTF-8', 'en-US-x-icu')",
    );
    if (rows.some((row) => row.collprovider === 'c')) {
      return "LC_COLLATE 'en_US.UTF-8' LC_CTYPE 'en_US.UTF-8'";
    }
    const { rows: server } = await client.query<{ v: number }>(
      "SELECT current_setting('server_version_num')::int AS v",
    );
    const version = server[0]?.v ?? 0;
    if (rows.some((row) => row.collname === 'en-US-x-icu') && version >= 150000) {
      return "LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'";
    }
    return null;
  });
}

const pgSkip = await needService('pg');
const locale = pgSkip ? null : await englishLocale();
const skip = pgSkip || (locale === null && 'no English collation (libc en_US.UTF-8 or ICU en-US) on this server');

function makeThing(id: string): Thing {
  return {
    id,
    householdId: HOUSEHOLD,
    kind: 'device',
    name: id,
    room: 'hall',
    adapter: 'mqtt',
    properties: { 'light.on': { schema: { type: 'boolean' } } },
    actions: {},
    meta: {},
    createdAt: '2024-01-01T00:00:00.000Z',
    updatedAt: '2024-01-01T00:00:00.000Z',
  } as Thing;
}

/** Writes the same rows, every key from IDS and every time the same, into a store. */
async function fill(store: Store): Promise<void> {
  for (const id of IDS) await store.saveHousehold({ id, name: id, settings: {} as never, createdAt: T0 });
  await store.saveHousehold({ id: HOUSEHOLD, name: 'h', settings: {} as never, createdAt: T0 + 1 });
  for (const id of IDS) await store.saveThing(makeThing(id));
  const changes: StateChanged[] = [];
  for (const thing of IDS) {
    for (const property of IDS) {
      for (const ts of [T0, T0 + 1]) {
        changes.push({
          type: 'state',
          id: `${property}${thing}${ts - T0}`,
          householdId: HOUSEHOLD,
          ts,
          cause: null,
          thing,
          property,
          from: undefined,
          to: `${thing}/${property}/${ts - T0}`,
          source: 'test',
        });
      }
    }
  }
  await store.appendHistory(changes);
  const events: HubEvent[] = IDS.map((id) => ({
    type: 'availability',
    id,
    householdId: HOUSEHOLD,
    ts: T0,
    thing: id,
    online: true,
  }));
  await store.appendEvents(events);
  const commands: Command[] = IDS.map((id) =>
    makeCommand(HOUSEHOLD, {
      id,
      thing: id,
      createdAt: T0,
      updatedAt: T0,
      log: [{ id: `c${id}`, status: 'pending', ts: T0, cause: null, error: null }],
    }),
  );
  await store.saveCommands(commands);
  for (const id of IDS) {
    await store.saveToken({
      id,
      householdId: HOUSEHOLD,
      userId: null,
      name: id,
      hash: `hash-${id}`,
      role: 'admin',
      scopes: [],
      createdAt: T0,
      expiresAt: null,
      revokedAt: null,
    });
    await store.saveTimer({ id, householdId: HOUSEHOLD, owner: 'o', due: T0, payload: {} });
    await store.saveRule({ householdId: HOUSEHOLD, id, body: {}, createdAt: T0, updatedAt: T0 });
    await store.saveTrace({ id, householdId: HOUSEHOLD, rule: 'r', startedAt: T0, status: 'done', body: {} });
    await store.saveAccountRecord({ kind: 'user', householdId: HOUSEHOLD, id, body: {}, createdAt: T0 });
    await store.saveOpenChargingSession({ householdId: HOUSEHOLD, id, charger: id, body: {}, updatedAt: T0 });
    await store.appendAudit({
      id,
      householdId: HOUSEHOLD,
      ts: T0,
      actor: { kind: 'system', id: 'hub', name: 'hub' },
      via: 'internal',
      thing: id,
      action: null,
      result: 'accepted',
      reason: null,
      commandId: null,
    });
  }
}

/** Every page of a keyset walk, `size` at a time, as the pages' lists of keys. */
async function walk<T>(
  page: (after: { ts: number; id: string } | undefined) => Promise<T[]>,
  cursor: (row: T) => { ts: number; id: string },
): Promise<string[][]> {
  const pages: string[][] = [];
  let after: { ts: number; id: string } | undefined;
  for (let n = 0; n < 100; n++) {
    const rows = await page(after);
    if (rows.length === 0) return pages;
    pages.push(rows.map((row) => cursor(row).id));
    after = cursor(rows[rows.length - 1]);
  }
  throw new Error('the walk does not end');
}

/** What a store answers to every read whose order depends on how ids compare. */
async function answers(store: Store): Promise<Record<string, unknown>> {
  const h = HOUSEHOLD;
  const ids = (rows: Array<{ id: string }>) => rows.map((row) => row.id);
  return {
    households: ids(await store.listHouseholds()),
    things: ids(await store.listThings(h)),
    allThings: ids(await store.listThings()),
    latest: (await store.latestValues(h)).map((v) => `${v.thing}|${v.property}`),
    valuesBefore: (await store.valuesBefore(h, T0 + 1)).map((v) => `${v.thing}|${v.property}`),
    history: ids(await store.queryHistory({ householdId: h, thing: 'ab', limit: 1000 })),
    historyPages: await walk(
      (after) => store.queryHistory({ householdId: h, thing: 'ab', after, limit: 4 }),
      (p) => p,
    ),
    pageHistory: await walk(
      (after) => store.pageHistory({ householdId: h, from: T0, to: T0 + 1, after, limit: 7 }),
      (c) => c,
    ),
    events: ids(await store.listEvents({ householdId: h, types: ['availability', 'command'], limit: 1000 })),
    eventPages: await walk(
      (after) => store.listEvents({ householdId: h, types: ['availability', 'command'], after, limit: 4 }),
      (e) => e,
    ),
    newestEvents: ids(await store.listEvents({ householdId: h, newest: true, limit: 5 })),
    pageEvents: await walk(
      (after) => store.pageEvents({ householdId: h, from: T0, to: T0 + 1, after, limit: 4 }),
      (e) => e,
    ),
    openCommands: ids(await store.listOpenCommands()),
    commandsByStatus: ids(await store.listCommandsByStatus(['pending'])),
    tokens: ids(await store.listTokens(h)),
    timers: ids(await store.listTimers('o')),
    rules: ids(await store.listRules(h)),
    traces: ids(await store.listTraces({ householdId: h, rule: 'r', limit: 4 })),
    tracesListed: await Promise.all(
      IDS.map((id) => store.isTraceListed({ householdId: h, rule: 'r', limit: 4 }, { id, startedAt: T0 })),
    ),
    accounts: ids(await store.listAccountRecords('user', h)),
    sessions: ids(await store.listOpenChargingSessions(h)),
    audit: ids(await store.listAudit({ householdId: h, limit: 4 })),
  };
}

/** The collation of every text column that names a key, in one schema. */
async function keyCollations(url: string, schema: string): Promise<string[]> {
  return withClient(url, async (client) => {
    const { rows } = await client.query<{ c: string }>(
      `SELECT table_name || '.' || column_name || ' ' || coalesce(collation_name, 'default') AS c
        FROM information_schema.columns WHERE table_schema = $1 AND data_type = 'text'
        AND column_name IN ('id', 'household_id', 'thing', 'property', 'rule')
        AND NOT (table_name = 'audit' AND column_name = 'thing') ORDER BY 1`,
      [schema],
    );
    return rows.map((row) => row.c);
  });
}

describe('SQLite and PostgreSQL order ids alike in a database with an English collation', { skip }, () => {
  const database = `triad_coll_${randomBytes(6).toString('hex')}`;
  const url = (() => {
    const u = new URL(services.pg);
    u.pathname = `/${database}`;
    return u.toString();
  })();
  const dir = mkdtempSync(join(tmpdir(), 'triad-parity-collation-'));
  let sqlite: Store;
  let expected: Record<string, unknown>;
  let created = false;

  before(async () => {
    await withClient(services.pg, (client) => client.query(`CREATE DATABASE ${database} ${locale} TEMPLATE template0`));
    created = true;
    sqlite = await openStore({ kind: 'sqlite', file: join(dir, 'triad.db') });
    await fill(sqlite);
    expected = await answers(sqlite);
  });

  after(async () => {
    await sqlite?.close();
    rmSync(dir, { recursive: true, force: true });
    if (created) {
      await withClient(services.pg, (client) => client.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`));
    }
  });

  it('is a database where the default order differs from byte order', async () => {
    const sorted = await withClient(url, async (client) => {
      const { rows } = await client.query<{ id: string }>('SELECT id FROM unnest($1::text[]) AS t(id) ORDER BY id', [
        IDS,
      ]);
      return rows.map((row) => row.id);
    });
    assert.notDeepEqual(sorted, [...IDS].sort(byCodePoint));
  });

  it('SQLite orders by code point', () => {
    assert.deepEqual(expected.things, [...IDS].sort(byCodePoint));
    assert.deepEqual(expected.timers, [...IDS].sort(byCodePoint));
  });

  it('a new PostgreSQL store answers as SQLite does', async () => {
    const store = await openStore({ kind: 'postgres', url, schema: 'fresh' });
    try {
      await fill(store);
      assert.deepEqual(await answers(store), expected);
      for (const column of await keyCollations(url, 'fresh')) assert.match(column, / C$/);
    } finally {
      await store.close();
    }
  });

  it('a PostgreSQL store from before migration 9 is migrated and then answers as SQLite does', async () => {
    const first = await openStore({ kind: 'postgres', url, schema: 'old' });
    try {
      await fill(first);
    } finally {
      await first.close();
    }
    // As a database at version 8 has its columns: in the database's default collation.
    await withClient(url, async (client) => {
      await client.query('SET search_path TO old');
      const { rows } = await client.query<{ t: string; c: string }>(
        `SELECT table_name AS t, column_name AS c FROM information_schema.columns
          WHERE table_schema = 'old' AND collation_name = 'C'`,
      );
      assert.ok(rows.length > 0);
      for (const row of rows) {
        await client.query(`ALTER TABLE ${row.t} ALTER COLUMN ${row.c} TYPE TEXT COLLATE "default"`);
      }
      await client.query('DELETE FROM schema_migrations WHERE version >= 9');
    });
    for (const column of await keyCollations(url, 'old')) assert.match(column, / default$/);
    const reopened = await openStore({ kind: 'postgres', url, schema: 'old' });
    try {
      assert.deepEqual(await answers(reopened), expected);
      for (const column of await keyCollations(url, 'old')) assert.match(column, / C$/);
    } finally {
      await reopened.close();
    }
  });
});

/**
 * Open commands of several households can share a creation time and an id (ids are unique per
 * household only): ordered by (created_at, id) alone they came back in whatever order the index
 * held them, which the two stores need not share. The household breaks the tie.
 */
const backends = await storeBackends('triad-parity-command-ties-');
for (const backend of backends) {
  describe(`${backend.name} store: commands that tie on time and id`, { skip: backend.skip }, () => {
    const store = storeOf(backend);

    it('come back in household order, open or by status', async () => {
      const base = unique('hh');
      // Written in the other order, so the index holds them that way.
      const households = [`${base}-c`, `${base}-b`, `${base}-a`];
      await store().saveCommands(households.map((h) => makeCommand(h, { id: 'cmd-tie', status: 'sent' })));
      const tied = (commands: Command[]) => commands.filter((c) => c.id === 'cmd-tie').map((c) => c.householdId);
      const expected = [...households].sort(byCodePoint);
      assert.deepEqual(tied(await store().listOpenCommands()), expected);
      assert.deepEqual(tied(await store().listCommandsByStatus(['sent', 'confirmed'])), expected);
    });
  });
}
