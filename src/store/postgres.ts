import pg from 'pg';
import type { Command, CommandStatus, HubEvent, StateChanged } from '../core/events.ts';
import { SpecInterner } from '../model/intern.ts';
import type { Thing } from '../model/thing.ts';
import { bucketHistory, numberBucketsByRangeSql } from './history-buckets.ts';
import { jsonText, lastChangeOfEachProperty } from './history-rows.ts';
import {
  type AccountRow,
  AUDIT_COLUMNS,
  type AuditRow,
  accountFromRow,
  assertNotStateChanges,
  auditFromRow,
  auditQuerySql,
  auditValues,
  type BodyRow,
  type BuiltQuery,
  type ChargingSessionRow,
  COMMAND_ORDER,
  type ColumnTypes,
  chargingSessionFromRow,
  chargingSessionValues,
  clampLimit,
  commandFromRow,
  commandValues,
  type Dialect,
  eventFromRow,
  eventQuerySql,
  eventThing,
  forgetHistorySql,
  type HistoryRow,
  type HouseholdRow,
  historyPointFromRow,
  historyQuerySql,
  householdFromRow,
  type LatestRow,
  latestValueFromRow,
  type MergedEventRow,
  migrationsTableSql,
  OPEN_COMMANDS_SQL,
  pageEventFromRow,
  pageQuerySql,
  pendingMigrations,
  pruneTracesSql,
  type RuleRow,
  ruleFromRow,
  type StateRow,
  stateFromRow,
  type ThingRow,
  type TimerRow,
  type TokenRow,
  TRACE_LIMIT,
  type TraceRow,
  thingColumns,
  thingFromRow,
  timerFromRow,
  toJson,
  tokenFromRow,
  tokenValues,
  toMillis,
  traceFromRow,
  traceValues,
  valuesBeforeSql,
} from './migrations.ts';
import type {
  AccountKind,
  AccountRecord,
  AuditQuery,
  AuditRecord,
  EventQuery,
  HistoryBucketQuery,
  HistoryBuckets,
  HistoryPoint,
  HistoryQuery,
  Household,
  LatestValue,
  PageQuery,
  PropertiesOf,
  Store,
  StoredChargingSession,
  StoredRule,
  StoredTimer,
  StoredTrace,
  TokenRecord,
  TracePrune,
  TraceQuery,
} from './store.ts';

export interface PostgresStoreOptions {
  /** A libpq connection URL, e.g. postgres://user@host:5432/db. */
  url: string;
  /** Keep every table in this schema (created when missing) instead of the server's default. */
  schema?: string;
  /** Most connections the store opens at once. */
  maxConnections?: number;
  /** Called when an idle pooled connection fails; the pool drops it and opens another on demand. */
  onError?: (error: Error) => void;
}

const COLUMN_TYPES: ColumnTypes = { json: 'JSONB', time: 'BIGINT', database: 'postgres' };

const DIALECT: Dialect = {
  placeholder: (n) => `$${n}`,
  oneOf: (column, placeholder) => `${column} = ANY(${placeholder}::text[])`,
  arrayParam: (values) => values,
  commandLog: {
    from: "commands c CROSS JOIN LATERAL jsonb_array_elements(c.body -> 'log') AS step",
    step: 'step',
    // Compared byte-wise, as the id columns it is merged with are (see migration 9).
    id: '((step ->> \'id\') COLLATE "C")',
    // float8, not bigint: a step stamped between milliseconds (a virtual clock's) is a JSON
    // number like 1.5, which ::bigint refused, failing every event query over its command.
    ts: "(step ->> 'ts')::float8",
    thing: "(c.body ->> 'thing')",
  },
  integer: (placeholder) => `${placeholder}::bigint`,
  // NUMERIC, JSONB's own number type, rather than float8: avg() of float8 keeps a sum of squares,
  // which two values ~1e154 apart overflowed ("value out of range"), failing every chart of the
  // property; NUMERIC sums without bound, and reading it out of JSONB is a copy, not a parse.
  numberOf: (column) => `CASE WHEN jsonb_typeof(${column}) = 'number' THEN (${column})::numeric END`,
  isNull: (column) => `(${column} IS NULL OR jsonb_typeof(${column}) = 'null')`,
  jsonTextOf: (column) => `(${column})::text`,
  differ: (a, b) => `${a} IS DISTINCT FROM ${b}`,
  lastBefore: (alias, where) =>
    `CROSS JOIN LATERAL (SELECT household_id, thing, property, value, ts FROM history WHERE ${where}
      ORDER BY ts DESC, id DESC LIMIT 1) AS ${alias}`,
};

/** Rows per INSERT statement: bounds one message's size while keeping round trips few. */
const ROWS_PER_STATEMENT = 5000;

/** Rows per cursor fetch when a whole table is read: a few megabytes at most, few round trips. */
const ROWS_PER_FETCH = 5000;

/** Schema names are spliced into SQL and a connection option, so only plain identifiers pass. */
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

const { builtins } = pg.types;

/**
 * PostgreSQL stores neither NUL (U+0000) in TEXT nor the JSON escape `\u0000` in JSONB, and JSONB
 * refuses a lone surrogate's escape (`\ud800`); SQLite keeps all three, and a device may report
 * any of them. So every string sent is written in an escaped form and read back through the type
 * parsers below: U+E000 (a private-use character) introduces an escape, and is itself escaped.
 *   E0 = NUL, E1 = U+E000, Eu + 4 hex = a lone surrogate (in TEXT);
 *   Ej = the JSON escape \u0000, EJ + 4 hex = the JSON escape of a lone surrogate (in JSON).
 * The JSON forms read back as their JSON escapes, also through `jsonb::text` and as text, so JSON
 * text extracted as TEXT still parses. Strings without these characters are sent as they are.
 */
const ESCAPE = '\ue000';
const NUL = String.fromCharCode(0);
const LONE_SURROGATE = '[\\ud800-\\udbff](?![\\udc00-\\udfff])|(?<![\\ud800-\\udbff])[\\udc00-\\udfff]';
const TEXT_NEEDS_ESCAPE = new RegExp(`[${NUL}${ESCAPE}]|${LONE_SURROGATE}`);
const TEXT_ESCAPES = new RegExp(TEXT_NEEDS_ESCAPE.source, 'g');
const JSON_NEEDS_ESCAPE = /\\u(?:0000|d[89a-f])|\ue000/;
const JSON_ESCAPES = /\\\\|\\u0000|\\u(d[89a-f][0-9a-f]{2})|\ue000/g;
const DECODE = /\ue000(?:([01j])|([uJ])([0-9a-f]{4}))/g;

/** A TEXT value as PostgreSQL can store it (see ESCAPE). */
export function encodeText(text: string): string {
  if (!TEXT_NEEDS_ESCAPE.test(text)) return text;
  return text.replace(TEXT_ESCAPES, (c) => {
    if (c === NUL) return `${ESCAPE}0`;
    if (c === ESCAPE) return `${ESCAPE}1`;
    return `${ESCAPE}u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
  });
}

/** JSON text (as JSON.stringify writes it) as JSONB can store it (see ESCAPE). */
export function encodeJson(text: string): string {
  if (!JSON_NEEDS_ESCAPE.test(text)) return text;
  return text.replace(JSON_ESCAPES, (match: string, surrogate: string | undefined) => {
    if (match === '\\\\') return match;
    if (match === '\\u0000') return `${ESCAPE}j`;
    if (match === ESCAPE) return `${ESCAPE}1`;
    return `${ESCAPE}J${surrogate}`;
  });
}

/** A value read back, TEXT or JSON, with the escapes of encodeText and encodeJson undone. */
export function decodeStored(text: string): string {
  if (!text.includes(ESCAPE)) return text;
  return text.replace(DECODE, (_match, code: string | undefined, kind: string | undefined, hex: string) => {
    if (code === '0') return NUL;
    if (code === '1') return ESCAPE;
    if (code === 'j') return '\\u0000';
    return kind === 'u' ? String.fromCharCode(Number.parseInt(hex, 16)) : `\\u${hex}`;
  });
}

/** A JSON parameter, already encoded: sent as it is, not encoded again as TEXT. */
class JsonParam {
  constructor(private readonly text: string) {}
  toPostgres(): string {
    return this.text;
  }
}

function json(text: string | null): JsonParam | null {
  return text === null ? null : new JsonParam(encodeJson(text));
}

function jsonElement(text: string | null): string | null {
  return text === null ? null : encodeJson(text);
}

/** `values` with the JSON text at each of `columns` sent as JSON (see JsonParam). */
function withJson(values: unknown[], ...columns: number[]): unknown[] {
  const out = values.slice();
  for (const column of columns) out[column] = json(out[column] as string | null);
  return out;
}

/** Every string parameter (and array element) encoded as TEXT; JSON ones come as JsonParam. */
function encodeParams(values: unknown): unknown {
  if (!Array.isArray(values)) return values;
  return values.map((value) => {
    if (typeof value === 'string') return encodeText(value);
    if (Array.isArray(value)) return encodeParams(value);
    return value;
  });
}

/** A pg client whose parameters are encoded (see ESCAPE), for every query the pool runs. */
class EncodingClient extends pg.Client {
  // biome-ignore lint/suspicious/noExplicitAny: pg's query() has a dozen overloads; this only rewrites values.
  override query(config: any, values?: any, callback?: any): any {
    if (config !== null && typeof config === 'object' && 'values' in config) {
      return super.query({ ...config, values: encodeParams(config.values) }, values, callback);
    }
    return super.query(config, typeof values === 'function' ? values : encodeParams(values), callback);
  }
}

/**
 * Hands BIGINT back as a number (epoch ms fit well inside 2^53) and JSON as its text, so rows have
 * the same shape as SQLite's and one set of row mappers serves both stores. Set per pool, not
 * globally, so other pg users in the process are unaffected.
 */
const TYPE_PARSERS: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') => {
    if (oid === builtins.INT8) return (text: string) => Number(text);
    if (oid === builtins.JSON || oid === builtins.JSONB || oid === builtins.TEXT || oid === builtins.VARCHAR) {
      return decodeStored;
    }
    return pg.types.getTypeParser(oid, format);
  }) as typeof pg.types.getTypeParser,
};

/**
 * Where a time bound stops being a BIGINT: the largest double PostgreSQL's BIGINT holds, so any
 * time a store could have written lies within ±TIME_END.
 */
const TIME_END = 2 ** 63 - 1024;

/**
 * A time bound that selects, from whole-millisecond times, what SQLite selects with the number as
 * given. SQLite compares its INTEGER times with any number (a virtual clock's fraction, an open end
 * as ±Infinity; NaN it binds as NULL, which selects nothing); PostgreSQL refuses a BIGINT parameter
 * that is not a whole number ("invalid input syntax for type bigint") and fails the query. So a
 * fraction is rounded to the whole millisecond the bound admits first, and the rest clamped.
 * `from`: times at or after it (ts >= x; ts > x for a fraction is the same); `to`: at or before
 * it; `before`: strictly before it.
 */
function timeBound(x: number, side: 'from' | 'to' | 'before'): number {
  if (Number.isNaN(x)) return side === 'from' ? TIME_END : -TIME_END;
  const whole = side === 'to' ? Math.floor(x) : Math.ceil(x);
  return Math.min(Math.max(whole, -TIME_END), TIME_END);
}

function optionalBound(x: number | undefined, side: 'from' | 'to'): number | undefined {
  return x === undefined ? undefined : timeBound(x, side);
}

/**
 * A range query with its bounds made whole (see timeBound). A cursor whose time is not a whole
 * millisecond (ts > 1.5, or ts = 1.5 and a greater id) means the times from the next one on, so
 * it moves the range's start instead.
 */
function wholeRange<Q extends object>(query: Q, start: 'from' | 'since', end: 'to' | 'until'): Q {
  const bounds = query as Partial<Record<'from' | 'since' | 'to' | 'until', number>>;
  let first = optionalBound(bounds[start], 'from');
  let after = (query as { after?: PageQuery['after'] }).after;
  if (after && !Number.isSafeInteger(after.ts)) {
    first = Math.max(first ?? -TIME_END, timeBound(after.ts, 'from'));
    after = undefined;
  }
  return { ...query, [start]: first, [end]: optionalBound(bounds[end], 'to'), after };
}

const SQL = {
  upsertThing: `INSERT INTO things (household_id, id, kind, name, body, specs) VALUES ($1, $2, $3, $4, $5, $6)
    ON CONFLICT (household_id, id) DO UPDATE
    SET kind = excluded.kind, name = excluded.name, body = excluded.body, specs = excluded.specs`,
  upsertThings: `INSERT INTO things (household_id, id, kind, name, body, specs)
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::jsonb[], $6::jsonb[])
    ON CONFLICT (household_id, id) DO UPDATE
    SET kind = excluded.kind, name = excluded.name, body = excluded.body, specs = excluded.specs`,
  insertHistory: `INSERT INTO history (id, household_id, thing, property, ts, from_value, value, cause, source)
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::jsonb[], $7::jsonb[],
      $8::text[], $9::text[])
    ON CONFLICT (id) DO NOTHING`,
  upsertLatest: `INSERT INTO latest_values (household_id, thing, property, value, ts)
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[], $5::bigint[])
    ON CONFLICT (household_id, thing, property) DO UPDATE SET value = excluded.value, ts = excluded.ts`,
  insertEvents: `INSERT INTO events (id, household_id, type, ts, thing, body)
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::jsonb[])
    ON CONFLICT (id) DO NOTHING`,
  upsertCommand: `INSERT INTO commands (household_id, id, status, body, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6)
    ON CONFLICT (household_id, id) DO UPDATE
    SET status = excluded.status, body = excluded.body, updated_at = excluded.updated_at`,
  upsertTrace: `INSERT INTO automation_traces (id, household_id, rule, started_at, status, body) VALUES ($1, $2, $3, $4, $5, $6)
    ON CONFLICT (id) DO UPDATE SET status = excluded.status, body = excluded.body`,
  insertAudit: `INSERT INTO audit (${AUDIT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
    ON CONFLICT (id) DO NOTHING`,
  upsertOpenChargingSession: `INSERT INTO open_charging_sessions (household_id, id, charger, body, updated_at)
    VALUES ($1, $2, $3, $4, $5)
    ON CONFLICT (household_id, id) DO UPDATE
    SET charger = excluded.charger, body = excluded.body, updated_at = excluded.updated_at`,
} as const;

/**
 * The store for a hub that has outgrown one file: PostgreSQL through a connection pool. Batches
 * are written as array-parameter INSERTs (one statement per few thousand rows) inside one
 * transaction, so a batch lands whole or not at all.
 */
export class PostgresStore implements Store {
  readonly kind = 'postgres' as const;
  private readonly pool: pg.Pool;
  private readonly schema: string | undefined;
  /** The last write handed over; never rejects (see ordered). */
  private writes: Promise<unknown> = Promise.resolve();

  constructor(options: PostgresStoreOptions) {
    if (options.schema !== undefined && !SCHEMA_NAME.test(options.schema)) {
      throw new Error(`invalid PostgreSQL schema name ${JSON.stringify(options.schema)}: use a-z, 0-9 and _`);
    }
    this.schema = options.schema;
    this.pool = new pg.Pool({
      connectionString: options.url,
      max: options.maxConnections ?? 10,
      types: TYPE_PARSERS,
      Client: EncodingClient,
      // A startup option rather than a SET after connecting: every connection has it from its first query.
      options: options.schema === undefined ? undefined : `-c search_path=${options.schema}`,
    });
    // Without a listener an idle connection's error would crash the process.
    this.pool.on('error', (error) => options.onError?.(error));
  }

  async migrate(): Promise<void> {
    await this.transaction(async (client) => {
      // Several hub processes may start together; the lock makes them apply each version once.
      await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`triad.migrate.${this.schema ?? ''}`]);
      if (this.schema !== undefined) await client.query(`CREATE SCHEMA IF NOT EXISTS "${this.schema}"`);
      await client.query(migrationsTableSql(COLUMN_TYPES));
      const applied = await client.query<{ version: number }>('SELECT version FROM schema_migrations');
      for (const migration of pendingMigrations(applied.rows.map((row) => row.version))) {
        for (const statement of migration.statements(COLUMN_TYPES)) await client.query(statement);
        await client.query('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [
          migration.version,
          migration.name,
          Date.now(),
        ]);
      }
    });
  }

  async close(): Promise<void> {
    // Every write made before close is on the server before the pool goes.
    await this.writes;
    if (!this.pool.ended) await this.pool.end();
  }

  /**
   * Runs a write once every write made before it has settled, so writes land in the order they
   * are made, as with SQLite's one writer. On the pool they ran on several connections at once:
   * a rule's timer deleted while its save was on its way could be saved after the delete (and
   * resume an ended run after a restart), a command's `pending` could overwrite its `sent`.
   * Callers take their values first, when the write is made. Reads are not queued.
   */
  private ordered<T>(work: () => Promise<T>): Promise<T> {
    const run = this.writes.then(work);
    this.writes = run.catch(() => undefined);
    return run;
  }

  /** One statement, in write order (see ordered). */
  private write(text: string, values: unknown[]): Promise<pg.QueryResult> {
    return this.ordered(() => this.pool.query(text, values));
  }

  /** A transaction, in write order (see ordered). */
  private writeTransaction(work: (client: pg.PoolClient) => Promise<void>): Promise<void> {
    return this.ordered(() => this.transaction(work));
  }

  /** One named statement per row, in order, on one connection, as one commit in write order. */
  private eachRow(name: string, text: string, rows: unknown[][]): Promise<void> {
    return this.writeTransaction(async (client) => {
      for (const values of rows) await client.query({ name, text, values });
    });
  }

  async saveHousehold(household: Household): Promise<void> {
    await this.write(
      `INSERT INTO households (id, name, settings, created_at) VALUES ($1, $2, $3, $4)
        ON CONFLICT (id) DO UPDATE SET name = excluded.name, settings = excluded.settings`,
      [household.id, household.name, json(JSON.stringify(household.settings)), toMillis(household.createdAt)],
    );
  }

  async getHousehold(id: string): Promise<Household | null> {
    const { rows } = await this.pool.query<HouseholdRow>('SELECT * FROM households WHERE id = $1', [id]);
    return rows[0] ? householdFromRow(rows[0]) : null;
  }

  async listHouseholds(): Promise<Household[]> {
    const { rows } = await this.pool.query<HouseholdRow>('SELECT * FROM households ORDER BY created_at, id');
    return rows.map(householdFromRow);
  }

  async saveThing(thing: Thing): Promise<void> {
    const { body, specs } = thingColumns(thing);
    await this.write(SQL.upsertThing, [thing.householdId, thing.id, thing.kind, thing.name, json(body), json(specs)]);
  }

  async saveThings(things: Thing[]): Promise<void> {
    if (things.length === 0) return;
    // Each row's values are taken now, as the caller hands them over, not when its turn comes.
    const batches = [...chunks(things)].map((chunk) => chunk.map((thing) => ({ thing, ...thingColumns(thing) })));
    await this.writeTransaction(async (client) => {
      for (const rows of batches) {
        await client.query({
          name: 'triad.upsert_things',
          text: SQL.upsertThings,
          values: [
            rows.map((r) => r.thing.householdId),
            rows.map((r) => r.thing.id),
            rows.map((r) => r.thing.kind),
            rows.map((r) => r.thing.name),
            rows.map((r) => json(r.body)),
            rows.map((r) => json(r.specs)),
          ],
        });
      }
    });
  }

  async deleteThing(householdId: string, id: string): Promise<void> {
    // Its latest values go too, or the twin would reload values for a thing that no longer exists.
    // History stays: it is a record of what happened.
    await this.writeTransaction(async (client) => {
      await client.query('DELETE FROM things WHERE household_id = $1 AND id = $2', [householdId, id]);
      await client.query('DELETE FROM latest_values WHERE household_id = $1 AND thing = $2', [householdId, id]);
    });
  }

  async listThings(householdId?: string): Promise<Thing[]> {
    const things: Thing[] = [];
    await this.forEachThing((thing) => things.push(thing), householdId);
    return things;
  }

  async forEachThing(visit: (thing: Thing) => void, householdId?: string): Promise<void> {
    // Each thing shares the specs of identical things before it: one parse per distinct specs text.
    const interner = new SpecInterner();
    const query =
      householdId === undefined
        ? { text: 'SELECT body, specs FROM things ORDER BY household_id, id', values: [] }
        : { text: 'SELECT body, specs FROM things WHERE household_id = $1 ORDER BY id', values: [householdId] };
    await this.forEachRow<ThingRow>(query, (row) => visit(thingFromRow(row, interner)));
  }

  async appendHistory(changes: StateChanged[]): Promise<void> {
    if (changes.length === 0) return;
    const history = [...chunks(changes)].map(historyColumns);
    const latest = [...chunks(lastChangeOfEachProperty(changes))].map(latestColumns);
    await this.writeTransaction(async (client) => {
      for (const values of history)
        await client.query({ name: 'triad.insert_history', text: SQL.insertHistory, values });
      for (const values of latest) await client.query({ name: 'triad.upsert_latest', text: SQL.upsertLatest, values });
    });
  }

  async forgetHistory(householdId: string, thing: string): Promise<void> {
    await this.writeTransaction(async (client) => {
      for (const sql of forgetHistorySql(DIALECT)) await client.query(sql, [householdId, thing]);
    });
  }

  async queryHistory(query: HistoryQuery): Promise<HistoryPoint[]> {
    const { sql, params } = historyQuerySql(DIALECT, wholeRange(query, 'from', 'to'));
    const { rows } = await this.pool.query<HistoryRow>(sql, params);
    return rows.map(historyPointFromRow);
  }

  /**
   * One read-only snapshot for the answer's two or three queries (the count and the last value
   * agree even while the meter reports), without JIT: a week of a 1 Hz meter is estimated costly
   * enough for PostgreSQL to compile the query first, which takes longer (0.2–0.4 s) than it saves.
   */
  async bucketHistory(query: HistoryBucketQuery): Promise<HistoryBuckets> {
    return this.transaction(async (client) => {
      await client.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY; SET LOCAL jit = off');
      return bucketHistory(
        DIALECT,
        async <Row>({ sql, params }: BuiltQuery) => (await client.query(sql, params)).rows as Row[],
        query,
        numberBucketsByRangeSql,
      );
    });
  }

  async latestValues(householdId?: string): Promise<LatestValue[]> {
    const values: LatestValue[] = [];
    await this.forEachLatestValue((value) => values.push(value), householdId);
    return values;
  }

  async forEachLatestValue(visit: (value: LatestValue) => void, householdId?: string): Promise<void> {
    const columns = 'household_id, thing, property, value, ts';
    const query =
      householdId === undefined
        ? { text: `SELECT ${columns} FROM latest_values ORDER BY household_id, thing, property`, values: [] }
        : {
            text: `SELECT ${columns} FROM latest_values WHERE household_id = $1 ORDER BY thing, property`,
            values: [householdId],
          };
    await this.forEachRow<LatestRow>(query, (row) => visit(latestValueFromRow(row)));
  }

  async appendEvents(events: HubEvent[]): Promise<void> {
    if (events.length === 0) return;
    assertNotStateChanges(events);
    const batches = [...chunks(events)].map(eventColumns);
    await this.writeTransaction(async (client) => {
      for (const values of batches) await client.query({ name: 'triad.insert_events', text: SQL.insertEvents, values });
    });
  }

  async listEvents(query: EventQuery): Promise<HubEvent[]> {
    const built = eventQuerySql(DIALECT, wholeRange(query, 'since', 'until'));
    if (!built) return [];
    const { rows } = await this.pool.query<MergedEventRow>(built.sql, built.params);
    return rows.map(eventFromRow);
  }

  async saveCommand(command: Command): Promise<void> {
    await this.write(SQL.upsertCommand, withJson(commandValues(command), 3));
  }

  async saveCommands(commands: Command[]): Promise<void> {
    if (commands.length === 0) return;
    // One statement per row: a batch may hold two copies of one command, which a single
    // multi-row upsert refuses.
    const rows = commands.map((command) => withJson(commandValues(command), 3));
    await this.eachRow('triad.save_command', SQL.upsertCommand, rows);
  }

  async getCommand(householdId: string, id: string): Promise<Command | null> {
    const { rows } = await this.pool.query<BodyRow>('SELECT body FROM commands WHERE household_id = $1 AND id = $2', [
      householdId,
      id,
    ]);
    return rows[0] ? commandFromRow(rows[0]) : null;
  }

  async listOpenCommands(): Promise<Command[]> {
    const { rows } = await this.pool.query<BodyRow>(OPEN_COMMANDS_SQL);
    return rows.map(commandFromRow);
  }

  async listCommandsByStatus(statuses: CommandStatus[]): Promise<Command[]> {
    if (statuses.length === 0) return [];
    const { rows } = await this.pool.query<BodyRow>(
      `SELECT body FROM commands WHERE ${DIALECT.oneOf('status', '$1')} ORDER BY ${COMMAND_ORDER}`,
      [DIALECT.arrayParam(statuses)],
    );
    return rows.map(commandFromRow);
  }

  async saveToken(token: TokenRecord): Promise<void> {
    await this.write(
      `INSERT INTO tokens (id, household_id, user_id, name, hash, role, scopes, created_at, expires_at, revoked_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
        ON CONFLICT (id) DO UPDATE SET household_id = excluded.household_id, user_id = excluded.user_id,
          name = excluded.name, hash = excluded.hash, role = excluded.role, scopes = excluded.scopes,
          expires_at = excluded.expires_at, revoked_at = excluded.revoked_at`,
      withJson(tokenValues(token), 6),
    );
  }

  async findTokenByHash(hash: string): Promise<TokenRecord | null> {
    const { rows } = await this.pool.query<TokenRow>('SELECT * FROM tokens WHERE hash = $1', [hash]);
    return rows[0] ? tokenFromRow(rows[0]) : null;
  }

  async listTokens(householdId: string): Promise<TokenRecord[]> {
    const { rows } = await this.pool.query<TokenRow>(
      'SELECT * FROM tokens WHERE household_id = $1 ORDER BY created_at, id',
      [householdId],
    );
    return rows.map(tokenFromRow);
  }

  async saveTimer(timer: StoredTimer): Promise<void> {
    await this.write(
      `INSERT INTO timers (id, household_id, owner, due, payload) VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT (id) DO UPDATE SET household_id = excluded.household_id, owner = excluded.owner,
          due = excluded.due, payload = excluded.payload`,
      [timer.id, timer.householdId, timer.owner, toMillis(timer.due), json(JSON.stringify(timer.payload))],
    );
  }

  async deleteTimer(id: string): Promise<void> {
    await this.write('DELETE FROM timers WHERE id = $1', [id]);
  }

  async listTimers(owner: string): Promise<StoredTimer[]> {
    const { rows } = await this.pool.query<TimerRow>('SELECT * FROM timers WHERE owner = $1 ORDER BY due, id', [owner]);
    return rows.map(timerFromRow);
  }

  async saveRule(rule: StoredRule): Promise<void> {
    await this.write(
      `INSERT INTO automation_rules (household_id, id, body, created_at, updated_at) VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT (household_id, id) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at`,
      [rule.householdId, rule.id, json(JSON.stringify(rule.body)), toMillis(rule.createdAt), toMillis(rule.updatedAt)],
    );
  }

  async deleteRule(householdId: string, id: string): Promise<void> {
    await this.write('DELETE FROM automation_rules WHERE household_id = $1 AND id = $2', [householdId, id]);
  }

  async listRules(householdId?: string): Promise<StoredRule[]> {
    const { rows } =
      householdId === undefined
        ? await this.pool.query<RuleRow>('SELECT * FROM automation_rules ORDER BY household_id, id')
        : await this.pool.query<RuleRow>('SELECT * FROM automation_rules WHERE household_id = $1 ORDER BY id', [
            householdId,
          ]);
    return rows.map(ruleFromRow);
  }

  async saveTrace(trace: StoredTrace): Promise<void> {
    await this.write(SQL.upsertTrace, withJson(traceValues(trace), 5));
  }

  async saveTraces(traces: StoredTrace[]): Promise<void> {
    if (traces.length === 0) return;
    await this.eachRow(
      'triad.save_trace',
      SQL.upsertTrace,
      traces.map((trace) => withJson(traceValues(trace), 5)),
    );
  }

  async getTrace(householdId: string, id: string): Promise<StoredTrace | null> {
    const { rows } = await this.pool.query<TraceRow>(
      'SELECT * FROM automation_traces WHERE household_id = $1 AND id = $2',
      [householdId, id],
    );
    return rows[0] ? traceFromRow(rows[0]) : null;
  }

  async listTraces(query: TraceQuery): Promise<StoredTrace[]> {
    const { rows } = await this.pool.query<TraceRow>(
      'SELECT * FROM automation_traces WHERE household_id = $1 AND rule = $2 ORDER BY started_at DESC, id DESC LIMIT $3',
      [query.householdId, query.rule, clampLimit(query.limit, TRACE_LIMIT)],
    );
    return rows.map(traceFromRow);
  }

  async isTraceListed(query: TraceQuery, trace: Pick<StoredTrace, 'id' | 'startedAt'>): Promise<boolean> {
    const limit = clampLimit(query.limit, TRACE_LIMIT);
    // The row comparison orders as listTraces does (ids in the same collation), and is an index
    // condition on the by-rule index.
    // A start that is not a whole millisecond (see timeBound) has no traces at its own time: those
    // started later come before it, whatever their ids.
    const whole = Number.isSafeInteger(trace.startedAt);
    const newer = whole ? '(started_at, id) > ($4::bigint, $5::text)' : 'started_at >= $4::bigint';
    const { rows } = await this.pool.query<{ n: number }>(
      `SELECT COUNT(*)::int AS n FROM (SELECT 1 FROM automation_traces WHERE household_id = $1 AND rule = $2
        AND ${newer} LIMIT $3) AS newer`,
      [
        query.householdId,
        query.rule,
        limit,
        ...(whole ? [trace.startedAt, trace.id] : [timeBound(trace.startedAt, 'from')]),
      ],
    );
    return (rows[0]?.n ?? 0) < limit;
  }

  async pruneTraces(prune: TracePrune): Promise<number> {
    const { sql, params } = pruneTracesSql(DIALECT, { ...prune, olderThan: timeBound(prune.olderThan, 'before') });
    const result = await this.write(sql, params);
    return result.rowCount ?? 0;
  }

  async deleteTraces(householdId: string, rule: string): Promise<void> {
    await this.write('DELETE FROM automation_traces WHERE household_id = $1 AND rule = $2', [householdId, rule]);
  }

  async pageHistory(query: PageQuery): Promise<StateChanged[]> {
    const { sql, params } = pageQuerySql(DIALECT, 'history', wholeRange(query, 'from', 'to'));
    const { rows } = await this.pool.query<StateRow>(sql, params);
    return rows.map(stateFromRow);
  }

  async pageEvents(query: PageQuery): Promise<HubEvent[]> {
    const { sql, params } = pageQuerySql(DIALECT, 'events', wholeRange(query, 'from', 'to'));
    const { rows } = await this.pool.query<BodyRow & { step: string | null }>(sql, params);
    return rows.map(pageEventFromRow);
  }

  async valuesBefore(householdId: string, before: number, only?: PropertiesOf): Promise<LatestValue[]> {
    const { sql, params } = valuesBeforeSql(DIALECT, householdId, timeBound(before, 'before'), only);
    const { rows } = await this.pool.query<LatestRow>(sql, params);
    return rows.map(latestValueFromRow);
  }

  async saveAccountRecord(record: AccountRecord): Promise<void> {
    await this.write(
      `INSERT INTO accounts (kind, household_id, id, body, created_at) VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT (kind, household_id, id) DO UPDATE SET body = excluded.body`,
      [record.kind, record.householdId, record.id, json(JSON.stringify(record.body)), toMillis(record.createdAt)],
    );
  }

  async deleteAccountRecord(kind: AccountKind, householdId: string, id: string): Promise<void> {
    await this.write('DELETE FROM accounts WHERE kind = $1 AND household_id = $2 AND id = $3', [kind, householdId, id]);
  }

  async listAccountRecords(kind: AccountKind, householdId?: string): Promise<AccountRecord[]> {
    const { rows } =
      householdId === undefined
        ? await this.pool.query<AccountRow>('SELECT * FROM accounts WHERE kind = $1 ORDER BY created_at, id', [kind])
        : await this.pool.query<AccountRow>(
            'SELECT * FROM accounts WHERE kind = $1 AND household_id = $2 ORDER BY created_at, id',
            [kind, householdId],
          );
    return rows.map(accountFromRow);
  }

  async saveOpenChargingSession(session: StoredChargingSession): Promise<void> {
    await this.write(SQL.upsertOpenChargingSession, withJson(chargingSessionValues(session), 3));
  }

  async deleteOpenChargingSession(householdId: string, id: string): Promise<void> {
    await this.write('DELETE FROM open_charging_sessions WHERE household_id = $1 AND id = $2', [householdId, id]);
  }

  async listOpenChargingSessions(householdId?: string): Promise<StoredChargingSession[]> {
    const { rows } =
      householdId === undefined
        ? await this.pool.query<ChargingSessionRow>(
            'SELECT * FROM open_charging_sessions ORDER BY household_id, updated_at, id',
          )
        : await this.pool.query<ChargingSessionRow>(
            'SELECT * FROM open_charging_sessions WHERE household_id = $1 ORDER BY updated_at, id',
            [householdId],
          );
    return rows.map(chargingSessionFromRow);
  }

  async appendAudit(record: AuditRecord): Promise<void> {
    await this.write(SQL.insertAudit, withJson(auditValues(record), 3));
  }

  async appendAuditBatch(records: AuditRecord[]): Promise<void> {
    if (records.length === 0) return;
    await this.eachRow(
      'triad.append_audit',
      SQL.insertAudit,
      records.map((record) => withJson(auditValues(record), 3)),
    );
  }

  async listAudit(query: AuditQuery): Promise<AuditRecord[]> {
    const { sql, params } = auditQuerySql(DIALECT, wholeRange(query, 'since', 'until'));
    const { rows } = await this.pool.query<AuditRow>(sql, params);
    return rows.map(auditFromRow);
  }

  /**
   * Reads a query's rows a page at a time through a server-side cursor, in one read-only
   * transaction (one consistent snapshot), so a table of a million rows is never one result.
   */
  private async forEachRow<R extends pg.QueryResultRow>(
    query: { text: string; values: unknown[] },
    visit: (row: R) => void,
  ): Promise<void> {
    await this.transaction(async (client) => {
      await client.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY');
      await client.query(`DECLARE triad_rows NO SCROLL CURSOR FOR ${query.text}`, query.values);
      for (;;) {
        const { rows } = await client.query<R>(`FETCH ${ROWS_PER_FETCH} FROM triad_rows`);
        for (const row of rows) visit(row);
        if (rows.length < ROWS_PER_FETCH) break;
      }
    });
  }

  /** Runs `work` on one connection inside BEGIN/COMMIT; any error rolls everything back. */
  private async transaction<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    // A connection lost mid-transaction rejects the query under way and is also emitted as an
    // `error` on the client, which the pool listens for only while the client is idle: unheard,
    // it crashed the hub. The rejection below is what reports it.
    const heard = () => {};
    client.on('error', heard);
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      const result = await work(client);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      broken = await rollback(client);
      throw error;
    } finally {
      // A connection whose rollback failed is in an unknown state: destroy it rather than reuse it.
      client.removeListener('error', heard);
      client.release(broken);
    }
  }
}

/** Rolls back, returning the error if even that failed. */
async function rollback(client: pg.PoolClient): Promise<Error | undefined> {
  try {
    await client.query('ROLLBACK');
    return undefined;
  } catch (error) {
    return error instanceof Error ? error : new Error(String(error));
  }
}

function* chunks<T>(rows: T[]): Generator<T[]> {
  for (let start = 0; start < rows.length; start += ROWS_PER_STATEMENT) {
    yield rows.slice(start, start + ROWS_PER_STATEMENT);
  }
}

/**
 * One array per column, the shape `unnest` turns back into rows, each already written as the
 * array literal pg would send for it: pg's serialiser costs a type check and two regular-expression
 * passes per element, about a microsecond a row here.
 */
function historyColumns(changes: StateChanged[]): unknown[] {
  return [
    arrayLiteral(changes, (c) => c.id),
    arrayLiteral(changes, (c) => c.householdId),
    arrayLiteral(changes, (c) => c.thing),
    arrayLiteral(changes, (c) => c.property),
    arrayLiteral(changes, (c) => String(toMillis(c.ts))),
    new JsonParam(arrayLiteral(changes, (c) => jsonElement(jsonText(c.from)))),
    new JsonParam(arrayLiteral(changes, (c) => jsonElement(jsonText(c.to)))),
    arrayLiteral(changes, (c) => c.cause ?? null),
    arrayLiteral(changes, (c) => c.source),
  ];
}

const ARRAY_ELEMENT_ESCAPES = /[\\"]/;

/** A PostgreSQL array literal, element for element what pg's arrayString writes: quoted, NULL for null. */
function arrayLiteral<T>(items: T[], text: (item: T) => string | null): string {
  let out = '{';
  for (let i = 0; i < items.length; i++) {
    const value = text(items[i]);
    if (i > 0) out += ',';
    if (value === null) out += 'NULL';
    else if (ARRAY_ELEMENT_ESCAPES.test(value)) out += `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
    else out += `"${value}"`;
  }
  return `${out}}`;
}

function latestColumns(changes: StateChanged[]): unknown[][] {
  return [
    changes.map((c) => c.householdId),
    changes.map((c) => c.thing),
    changes.map((c) => c.property),
    changes.map((c) => json(toJson(c.to))),
    changes.map((c) => toMillis(c.ts)),
  ];
}

function eventColumns(events: HubEvent[]): unknown[][] {
  return [
    events.map((e) => e.id),
    events.map((e) => e.householdId),
    events.map((e) => e.type),
    events.map((e) => toMillis(e.ts)),
    events.map(eventThing),
    events.map((e) => json(JSON.stringify(e))),
  ];
}
