/**
 * How PostgreSQL reads one property's history: the index that hands rows over in (ts, id) order
 * (migration 7, also on a database that predates it), and plans that never sort a range's rows to
 * find a page, a last value or a bucket. Checked on the statements the store really sends, each
 * run again under EXPLAIN ANALYZE on a table without statistics (as a new or never-analysed one is).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import type { StateChanged } from '../src/core/events.ts';
import { openStore } from '../src/store/index.ts';
import type { Store } from '../src/store/store.ts';
import { needService, services } from './helpers/services.ts';
import { T0, unique } from './helpers/stores.ts';

const skip = await needService('pg');

interface Statement {
  text: string;
  values: unknown[];
}

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Actual Rows': number;
  'Actual Loops': number;
  Plans?: PlanNode[];
}

function* nodes(node: PlanNode): Generator<PlanNode> {
  yield node;
  for (const child of node.Plans ?? []) yield* nodes(child);
}

/** Rows a node handed on, over all its loops. */
const rowsOf = (node: PlanNode) => node['Actual Rows'] * node['Actual Loops'];

function reading(householdId: string, thing: string, property: string, at: number, value: unknown): StateChanged {
  return {
    type: 'state',
    id: unique(`sc${String(at).padStart(9, '0')}`),
    householdId,
    ts: T0 + at,
    cause: null,
    thing,
    property,
    from: null,
    to: value,
    source: 'mqtt',
  };
}

describe('PostgreSQL history plans', { skip }, () => {
  const schema = `triad_test_${randomBytes(6).toString('hex')}`;
  const household = unique('hh');
  let store: Store;
  let client: pg.Client;
  /** Statements the store sends while `watch` is on. */
  let sent: Statement[] | null = null;
  let restore = () => {};

  before(async () => {
    client = new pg.Client({ connectionString: services.pg });
    await client.connect();
    store = await openStore({ kind: 'postgres', url: services.pg, schema });
    // Record what the store asks, on any of its pool's connections (not this test's own).
    const query = pg.Client.prototype.query as (...args: unknown[]) => unknown;
    restore = () => {
      pg.Client.prototype.query = query as typeof pg.Client.prototype.query;
    };
    pg.Client.prototype.query = function (this: pg.Client, text: unknown, values: unknown, ...rest: unknown[]) {
      const sql = typeof text === 'object' && text !== null ? (text as { text: string }).text : text;
      if (sent && this !== client && typeof sql === 'string' && /^\s*(SELECT|WITH)\b/i.test(sql)) {
        sent.push({
          text: sql,
          values: Array.isArray(values) ? values : ((text as { values?: unknown[] }).values ?? []),
        });
      }
      return query.call(this, text, values, ...rest);
    } as typeof pg.Client.prototype.query;
    // 3,000 seconds of a meter, with another property and thing in between.
    const rows: StateChanged[] = [];
    for (let s = 0; s < 3000; s++) {
      rows.push(reading(household, 'meter', 'sensor.power', s * 1000, 1000 + (s % 17)));
      if (s % 3 === 0) rows.push(reading(household, 'meter', 'sensor.energy', s * 1000, s / 3600));
      if (s % 5 === 0) rows.push(reading(household, 'plug', 'switch.on', s * 1000, s % 2 === 0));
    }
    await store.appendHistory(rows);
    await client.query(`SET search_path TO ${schema}`);
    await client.query('SET jit = off');
  });

  after(async () => {
    restore();
    await store?.close();
    await client?.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await client?.end();
  });

  async function statementsOf(work: () => Promise<unknown>): Promise<Statement[]> {
    sent = [];
    try {
      await work();
      return sent;
    } finally {
      sent = null;
    }
  }

  async function planOf(statement: Statement): Promise<PlanNode> {
    const { rows } = await client.query<{ 'QUERY PLAN': Array<{ Plan: PlanNode }> }>(
      `EXPLAIN (ANALYZE, FORMAT JSON) ${statement.text}`,
      statement.values,
    );
    return rows[0]['QUERY PLAN'][0].Plan;
  }

  /** Rows the statement read from history, and the most rows any sort in it was handed. */
  async function costOf(statement: Statement): Promise<{ read: number; sorted: number }> {
    const plan = await planOf(statement);
    let read = 0;
    let sorted = 0;
    for (const node of nodes(plan)) {
      if (node['Relation Name'] === 'history') read += rowsOf(node);
      if (/Sort/.test(node['Node Type'])) sorted = Math.max(sorted, ...(node.Plans ?? []).map(rowsOf));
    }
    return { read, sorted };
  }

  it('keeps history_by_property in (ts, id) order', async () => {
    const { rows } = await client.query<{ indexdef: string }>(
      `SELECT indexdef FROM pg_indexes WHERE schemaname = $1 AND tablename = 'history' ORDER BY indexname`,
      [schema],
    );
    const defs = rows.map((row) => row.indexdef.replace(/^.* USING btree /, ''));
    assert.deepEqual(defs, ['(household_id, thing, property, ts, id)', '(household_id, ts)', '(id)']);
  });

  it('reads a page, a last value and the values before a time without reading the rest of the range', async () => {
    const calls: Array<[string, () => Promise<unknown>, number]> = [
      [
        'a page of 10',
        () => store.queryHistory({ householdId: household, thing: 'meter', property: 'sensor.power', limit: 10 }),
        11,
      ],
      [
        'the values before a time',
        () =>
          store.valuesBefore(household, T0 + 2_000_000, {
            thing: 'meter',
            properties: ['sensor.power', 'sensor.energy'],
          }),
        4,
      ],
    ];
    for (const [what, call, most] of calls) {
      const statements = await statementsOf(call);
      assert.equal(statements.length, 1, what);
      const { read, sorted } = await costOf(statements[0]);
      assert.ok(read <= most, `${what} read ${read} history rows`);
      // At most its answer's rows (valuesBefore puts its properties in order).
      assert.ok(sorted <= most, `${what} sorted ${sorted} rows`);
    }
  });

  it("finds the whole household's values before a time by a few seeks per property, not a pass over its history", async () => {
    // What a replay starts from: 4,800 rows, three properties.
    const statements = await statementsOf(() => store.valuesBefore(household, T0 + 2_000_000));
    assert.equal(statements.length, 1);
    const values = await store.valuesBefore(household, T0 + 2_000_000);
    assert.deepEqual(
      values.map((v) => [v.thing, v.property, v.ts]),
      [
        ['meter', 'sensor.energy', T0 + 1_998_000],
        ['meter', 'sensor.power', T0 + 1_999_000],
        ['plug', 'switch.on', T0 + 1_995_000],
      ],
    );
    const { read, sorted } = await costOf(statements[0]);
    // Per property: at most four one-row seeks to find the next one, and one for its last value.
    assert.ok(read <= 1 + 4 * 4 + 3, `read ${read} history rows`);
    // The properties found (and the row that ends the search), put in order.
    assert.ok(sorted <= 4, `sorted ${sorted} rows`);
  });

  it('sums up buckets without sorting the range, and finds its ends and last value by the index', async () => {
    for (const property of ['sensor.power', 'switch.on']) {
      const thing = property === 'switch.on' ? 'plug' : 'meter';
      const statements = await statementsOf(() =>
        store.bucketHistory({ householdId: household, thing, property, buckets: 10 }),
      );
      const [bounds, numbers, last] = statements;
      assert.ok(statements.length >= 3, `${property}: ${statements.length} statements`);
      const ends = await costOf(bounds);
      assert.ok(ends.read <= 2, `${property}: the range's ends read ${ends.read} rows`);
      const lastValue = await costOf(last);
      assert.ok(
        lastValue.read <= 2 && lastValue.sorted === 0,
        `${property}: the last value ${JSON.stringify(lastValue)}`,
      );
      const buckets = await costOf(numbers);
      assert.ok(buckets.sorted <= 10, `${property}: the numbers query sorted ${buckets.sorted} rows`);
    }
  });

  it('brings a database from before migration 7 to the new index and keeps its history', async () => {
    // As a database migrated to version 6 has it.
    await client.query('DROP INDEX history_by_property');
    await client.query('CREATE INDEX history_by_property ON history (household_id, thing, property, ts)');
    await client.query('DELETE FROM schema_migrations WHERE version = 7');
    const reopened = await openStore({ kind: 'postgres', url: services.pg, schema });
    try {
      await reopened.migrate();
      const { rows } = await client.query<{ indexdef: string }>(
        `SELECT indexdef FROM pg_indexes WHERE schemaname = $1 AND tablename = 'history' AND indexname LIKE 'history_by_property%'`,
        [schema],
      );
      assert.deepEqual(
        rows.map((row) => row.indexdef.replace(/^.* USING btree /, '')),
        ['(household_id, thing, property, ts, id)'],
      );
      const versions = await client.query<{ version: number }>(
        'SELECT version FROM schema_migrations ORDER BY version',
      );
      assert.ok(versions.rows.some((row) => row.version === 7));
      const page = await reopened.queryHistory({
        householdId: household,
        thing: 'meter',
        property: 'sensor.power',
        limit: 5000,
      });
      assert.equal(page.length, 3000);
    } finally {
      await reopened.close();
    }
  });
});
