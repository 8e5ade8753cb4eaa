import { chmodSync, closeSync, openSync, readSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import Database from 'better-sqlite3';
import type { Command, CommandStatus, HubEvent, StateChanged } from '../core/events.ts';
import { SpecInterner } from '../model/intern.ts';
import type { Thing } from '../model/thing.ts';
import { bucketHistory } from './history-buckets.ts';
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
  type ColumnTypes,
  chargingSessionFromRow,
  chargingSessionValues,
  clampLimit,
  commandFromRow,
  commandValues,
  type Dialect,
  eventFromRow,
  eventQuerySql,
  eventValues,
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
  type TimerRow,
  type TokenRow,
  TRACE_BODY_COLUMN,
  TRACE_LIMIT,
  type TraceRow,
  thingColumns,
  thingFromRow,
  timerFromRow,
  tokenFromRow,
  tokenValues,
  toMillis,
  traceFromRow,
  traceValues,
  valuesBeforeSql,
} from './migrations.ts';
import { readInThread, SqliteQueryThread } from './sqlite-reader.ts';
import { SqliteWriter, SYNCHRONOUS, type WriteStep, withJsonText } from './sqlite-writer.ts';
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
  WriteOptions,
} from './store.ts';

/** One of a thing's latest values as forEachLatestValue packs them: property, value's JSON text, ts. */
type LatestTuple = [string, string | null, number];

/**
 * A thing's packed latest values in property order. The grouping walks the primary key's index,
 * so they arrive in order; SQLite does not promise that of an aggregate, and an ORDER BY inside
 * it cost a sort per thing (a tenth of start-up at 100,000 things), so this checks and sorts only
 * when needed. Code point order is SQLite's BINARY order of the UTF-8 text.
 */
function inPropertyOrder(values: LatestTuple[]): LatestTuple[] {
  for (let i = 1; i < values.length; i++) {
    if (codePointCompare(values[i - 1][0], values[i][0]) > 0) {
      return values.sort((a, b) => codePointCompare(a[0], b[0]));
    }
  }
  return values;
}

type ThingTuple = [body: string, specs: string | null];
type PackedLatestRow = [household_id: string, thing: string, packed: string];

function visitThingRows(rows: Iterable<ThingTuple>, interner: SpecInterner, visit: (thing: Thing) => void): void {
  for (const [body, specs] of rows) visit(thingFromRow({ body, specs }, interner));
}

function visitLatestRows(rows: Iterable<PackedLatestRow>, visit: (value: LatestValue) => void): void {
  for (const [household_id, thing, packed] of rows) {
    for (const [property, value, ts] of inPropertyOrder(JSON.parse(packed) as LatestTuple[])) {
      visit(latestValueFromRow({ household_id, thing, property, value, ts }));
    }
  }
}

function codePointCompare(a: string, b: string): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    // Outside the surrogate range UTF-16 units order as code points; inside it, compare whole ones.
    if ((x & 0xf800) !== 0xd800 && (y & 0xf800) !== 0xd800) return x - y;
    return (a.codePointAt(i) ?? 0) - (b.codePointAt(i) ?? 0);
  }
  return a.length - b.length;
}

export interface SqliteStoreOptions {
  /** Path of the database file, or ':memory:' for a throwaway store. */
  file: string;
  /** How long a write waits for another connection's lock before failing. */
  busyTimeoutMs?: number;
  /**
   * Where the writes run (all of them, in the order they are made): on a thread of their
   * own (the default for a file on a machine with more than one core; see SqliteWriter), or
   * inline on the caller's thread (always for ':memory:', whose database no second connection
   * can open). The thread keeps commits out of the event loop (the round trip's p99), at some
   * cost in CPU per row (bench figure 3 measures both).
   */
  writer?: 'thread' | 'inline';
  /**
   * With the thread: a background batch of at most this many rows is committed on the hub's own
   * connection while the thread is idle (BACKGROUND_ROWS_HERE); 0 sends every batch to the thread.
   */
  backgroundRowsHere?: number;
  /** loadAll reads on a thread of its own from this many things (about; see readsInThread). */
  readInThreadFrom?: number;
}

/**
 * The most rows of a background batch (a write window's history points, command statuses, traces,
 * events: WriteOptions.background) the hub commits on its own connection, while the writer thread
 * has nothing to do, rather than handing them over. At 1,000 reports/s a window's batches are ~50
 * rows each, and the thread spent three times what the same rows cost here: a wake-up per batch,
 * the copy, its caches cold on the other core (bench/HISTORY.md, sessions 26 and 28). A batch this
 * size holds the event loop for a few tenths of a millisecond. Larger ones (a busy hub's windows, a
 * flood) and traces still go to the thread, which keeps long commits off the event loop; so does
 * every write someone waits for, which syncs the disk.
 */
export const BACKGROUND_ROWS_HERE = 128;

/**
 * Where a thread starts to pay at start-up. Measured with the bench's things of ten properties on
 * two cores: 70–100 ms to start the thread and open the file, against ~9 µs a thing of SQLite
 * stepping (its things and its packed values) taken off the hub's thread.
 */
const READ_IN_THREAD_FROM = 10_000;

const COLUMN_TYPES: ColumnTypes = { json: 'TEXT', time: 'INTEGER', database: 'sqlite' };

const DIALECT: Dialect = {
  placeholder: () => '?',
  oneOf: (column, placeholder) => `${column} IN (SELECT value FROM json_each(${placeholder}))`,
  arrayParam: (values) => JSON.stringify(values),
  commandLog: {
    from: "commands c, json_each(c.body, '$.log') AS step",
    step: 'step.value',
    id: "json_extract(step.value, '$.id')",
    ts: "json_extract(step.value, '$.ts')",
    thing: "json_extract(c.body, '$.thing')",
  },
  integer: (placeholder) => `CAST(${placeholder} AS INTEGER)`,
  // A JSON text is a number exactly when it starts with a digit or a minus: cheaper than json_type.
  numberOf: (column) => `CASE WHEN ${column} GLOB '[-0-9]*' THEN CAST(${column} AS REAL) END`,
  isNull: (column) => `(${column} IS NULL OR ${column} = 'null')`,
  jsonTextOf: (column) => column,
  differ: (a, b) => `${a} IS NOT ${b}`,
  // No LATERAL in SQLite: the row is found by its rowid.
  lastBefore: (alias, where) =>
    `JOIN history AS ${alias} ON ${alias}.rowid = (SELECT rowid FROM history WHERE ${where} ORDER BY ts DESC, id DESC LIMIT 1)`,
};

/** A thing's latest values packed by SQLite into one JSON array of [property, value, ts]. */
const PACKED_LATEST = 'json_group_array(json_array(property, value, ts))';

const SQL = {
  allThings: 'SELECT body, specs FROM things ORDER BY household_id, id',
  allLatestValues: `SELECT household_id, thing, ${PACKED_LATEST} FROM latest_values GROUP BY household_id, thing
    ORDER BY household_id, thing`,
  upsertThing: `INSERT INTO things (household_id, id, kind, name, body, specs) VALUES (?, ?, ?, ?, ?, ?)
    ON CONFLICT (household_id, id) DO UPDATE
    SET kind = excluded.kind, name = excluded.name, body = excluded.body, specs = excluded.specs`,
  insertHistory: `INSERT INTO history (id, household_id, thing, property, ts, from_value, value, cause, source)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
  upsertLatest: `INSERT INTO latest_values (household_id, thing, property, value, ts) VALUES (?, ?, ?, ?, ?)
    ON CONFLICT (household_id, thing, property) DO UPDATE SET value = excluded.value, ts = excluded.ts`,
  insertEvent: `INSERT INTO events (id, household_id, type, ts, thing, body) VALUES (?, ?, ?, ?, ?, ?)
    ON CONFLICT (id) DO NOTHING`,
  upsertCommand: `INSERT INTO commands (household_id, id, status, body, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)
    ON CONFLICT (household_id, id) DO UPDATE
    SET status = excluded.status, body = excluded.body, updated_at = excluded.updated_at`,
  upsertTrace: `INSERT INTO automation_traces (id, household_id, rule, started_at, status, body) VALUES (?, ?, ?, ?, ?, ?)
    ON CONFLICT (id) DO UPDATE SET status = excluded.status, body = excluded.body`,
  insertAudit: `INSERT INTO audit (${AUDIT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
  upsertOpenChargingSession: `INSERT INTO open_charging_sessions (household_id, id, charger, body, updated_at)
    VALUES (?, ?, ?, ?, ?)
    ON CONFLICT (household_id, id) DO UPDATE
    SET charger = excluded.charger, body = excluded.body, updated_at = excluded.updated_at`,
} as const;

/**
 * Keeps a database file, and the -wal and -shm files SQLite keeps beside it, for the user Triad
 * runs as alone: they hold household secrets (a car gateway's password) and everyone's location
 * history. A missing file is created 0600 before SQLite opens it (SQLite gives its -wal and -shm
 * the database file's mode; left to itself it creates 0644); one an older Triad left readable by
 * others is narrowed to 0600. Answers the files it narrowed, for the hub to say so once. A file
 * it may not change (another user's) is left as it is, for SQLite to open or refuse.
 */
export function keepDatabasePrivate(file: string): string[] {
  if (file === '' || file === ':memory:' || file.startsWith('file:')) return [];
  try {
    closeSync(openSync(file, 'wx', 0o600));
    return [];
  } catch (error) {
    // Already there, or a folder that does not exist: SQLite says so in its own words.
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') return [];
  }
  // Only a SQLite database (or an empty file, which SQLite makes one of) is Triad's to narrow: a
  // `store.file` naming anything else (a typo, /etc/passwd run as root) is left as it was, for
  // SQLite to refuse ("file is not a database").
  if (!holdsDatabase(file)) return [];
  const narrowed: string[] = [];
  for (const path of [file, `${file}-wal`, `${file}-shm`]) {
    try {
      const stat = statSync(path);
      if (!stat.isFile() || (stat.mode & 0o077) === 0) continue;
      chmodSync(path, 0o600);
      narrowed.push(path);
    } catch {
      // Not there (no -wal while no hub runs), or not ours to change.
    }
  }
  return narrowed;
}

/** What every SQLite database file starts with (its header string). */
const SQLITE_HEADER = Buffer.from('SQLite format 3\0', 'latin1');

/** Whether a file that exists is a SQLite database, or empty; false for anything else, or unreadable. */
function holdsDatabase(file: string): boolean {
  let fd: number | null = null;
  try {
    fd = openSync(file, 'r');
    const header = Buffer.alloc(SQLITE_HEADER.length);
    const read = readSync(fd, header, 0, header.length, 0);
    return read === 0 || (read === header.length && header.equals(SQLITE_HEADER));
  } catch {
    return false;
  } finally {
    if (fd !== null) closeSync(fd);
  }
}

/**
 * The embedded store: one SQLite file in WAL mode. better-sqlite3 is synchronous, so each method
 * does its work at once and returns a settled promise; batches are one transaction each, which is
 * what keeps an SD card's write rate out of the ingest path.
 */
export class SqliteStore implements Store {
  readonly kind = 'sqlite' as const;
  private readonly db: Database.Database;
  private readonly statements = new Map<string, Database.Statement>();
  private readonly rawStatements = new Map<string, Database.Statement>();
  /** Null when the writes run inline. Started once the schema is in place (see migrate). */
  private writer: SqliteWriter | null = null;
  /** Long reads (downsampled history), off the hub's thread when the store is a file; see queryThread. */
  private queries: SqliteQueryThread | null = null;

  constructor(private readonly options: SqliteStoreOptions) {
    this.db = new Database(options.file);
    this.db.pragma('journal_mode = WAL');
    // Writes run on this connection when they run inline, and migrations always do (SYNCHRONOUS).
    this.db.pragma(`synchronous = ${SYNCHRONOUS}`);
    this.db.pragma(`busy_timeout = ${this.busyTimeoutMs}`);
    this.db.pragma('foreign_keys = ON');
  }

  async migrate(): Promise<void> {
    this.db.exec(migrationsTableSql(COLUMN_TYPES));
    // IMMEDIATE takes the write lock first, so two processes opening one file cannot both apply a version.
    this.db
      .transaction(() => {
        const applied = this.db.prepare('SELECT version FROM schema_migrations').pluck().all() as number[];
        for (const migration of pendingMigrations(applied)) {
          for (const statement of migration.statements(COLUMN_TYPES)) this.db.exec(statement);
          this.db
            .prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)')
            .run(migration.version, migration.name, Date.now());
        }
      })
      .immediate();
    // A thread of its own pays only where there is a core for it to run on.
    const inline =
      (this.options.writer ?? (availableParallelism() > 1 ? 'thread' : 'inline')) === 'inline' ||
      this.options.file === ':memory:' ||
      this.options.file === '' ||
      this.db.memory;
    if (!inline && !this.writer) {
      this.writer = new SqliteWriter(this.options.file, this.busyTimeoutMs);
      // The batches this connection commits beside the thread's must never hold the event loop
      // for a checkpoint: the thread checkpoints after it syncs them (sqlite-writer-thread.mjs).
      this.db.pragma('wal_autocheckpoint = 0');
    }
  }

  private get busyTimeoutMs(): number {
    return Math.floor(this.options.busyTimeoutMs ?? 5000);
  }

  /**
   * Runs writes, each step's statement once per row, as one transaction (a single row on its
   * own): on the writer thread when there is one, inline otherwise. Resolves with the rows changed.
   */
  private async write(steps: WriteStep[], options?: WriteOptions): Promise<number> {
    const writer = this.writer;
    const rows = steps.reduce((n, step) => n + step.rows.length, 0);
    if (writer) {
      // Traces (the only rows with `json` columns) are not: a second's worth comes at once, each
      // trace's JSON to encode as well as its row (~2 ms for 128), and their thread wake-ups are
      // one a second anyway.
      const here =
        options?.background &&
        rows <= (this.options.backgroundRowsHere ?? BACKGROUND_ROWS_HERE) &&
        !steps.some((step) => step.json);
      if (!here || !writer.idle || !writer.syncsLater) return writer.write(steps, options);
      // Behind nothing (the thread is idle), so it lands in order; at NORMAL, synced by the
      // thread within SYNC_WITHIN_MS as its own background commits are.
      this.statement('PRAGMA synchronous = NORMAL').run();
      let changes: number;
      try {
        changes = this.runHere(steps, rows);
      } finally {
        this.statement(`PRAGMA synchronous = ${SYNCHRONOUS}`).run();
      }
      writer.committedByHub();
      return changes;
    }
    // Inline commits all sync (SYNCHRONOUS): `background` is the writer thread's to act on.
    return this.runHere(steps, rows);
  }

  /** Runs the steps on this connection, in one transaction (a single row on its own). */
  private runHere(steps: WriteStep[], rows: number): number {
    const run = () => {
      let changes = 0;
      for (const step of steps) {
        const prepared = this.statement(step.sql);
        for (const row of step.rows) changes += prepared.run(step.json ? withJsonText(row, step.json) : row).changes;
      }
      return changes;
    };
    return rows === 1 ? run() : this.db.transaction(run)();
  }

  /**
   * `synchronous` of each connection that commits (SQLite's numbers: 1 NORMAL, 2 FULL): this one
   * (inline writes, migrations) and the writer thread's, null when writes run inline.
   */
  async synchronous(): Promise<{ connection: number; writer: number | null }> {
    const connection = this.db.pragma('synchronous', { simple: true }) as number;
    return { connection, writer: this.writer ? await this.writer.setting('synchronous') : null };
  }

  /** Resolves once every write handed over so far is committed (at once when writes run inline). */
  settled(): Promise<void> {
    return this.writer?.settled() ?? Promise.resolve();
  }

  async close(): Promise<void> {
    // Whatever was handed to the writer thread is committed before the store says it is closed.
    await this.writer?.close();
    this.writer = null;
    await this.queries?.close();
    this.queries = null;
    this.statements.clear();
    this.rawStatements.clear();
    if (this.db.open) this.db.close();
  }

  async saveHousehold(household: Household): Promise<void> {
    await this.write([
      {
        sql: `INSERT INTO households (id, name, settings, created_at) VALUES (?, ?, ?, ?)
        ON CONFLICT (id) DO UPDATE SET name = excluded.name, settings = excluded.settings`,
        rows: [[household.id, household.name, JSON.stringify(household.settings), toMillis(household.createdAt)]],
      },
    ]);
  }

  async getHousehold(id: string): Promise<Household | null> {
    const row = this.statement('SELECT * FROM households WHERE id = ?').get(id) as HouseholdRow | undefined;
    return row ? householdFromRow(row) : null;
  }

  async listHouseholds(): Promise<Household[]> {
    const rows = this.statement('SELECT * FROM households ORDER BY created_at, id').all() as HouseholdRow[];
    return rows.map(householdFromRow);
  }

  async saveThing(thing: Thing): Promise<void> {
    const { body, specs } = thingColumns(thing);
    await this.write([
      { sql: SQL.upsertThing, rows: [[thing.householdId, thing.id, thing.kind, thing.name, body, specs]] },
    ]);
  }

  async saveThings(things: Thing[]): Promise<void> {
    if (things.length === 0) return;
    const rows = things.map((thing) => {
      const { body, specs } = thingColumns(thing);
      return [thing.householdId, thing.id, thing.kind, thing.name, body, specs];
    });
    // One commit for the lot: a commit, not the row, is most of what a single save costs.
    await this.write([{ sql: SQL.upsertThing, rows }]);
  }

  async deleteThing(householdId: string, id: string): Promise<void> {
    // Its latest values go too, or the twin would reload values for a thing that no longer exists.
    // History stays: it is a record of what happened.
    await this.write([
      { sql: 'DELETE FROM things WHERE household_id = ? AND id = ?', rows: [[householdId, id]] },
      { sql: 'DELETE FROM latest_values WHERE household_id = ? AND thing = ?', rows: [[householdId, id]] },
    ]);
  }

  async listThings(householdId?: string): Promise<Thing[]> {
    const things: Thing[] = [];
    await this.forEachThing((thing) => things.push(thing), householdId);
    return things;
  }

  async forEachThing(visit: (thing: Thing) => void, householdId?: string): Promise<void> {
    // Row by row (iterate, raw arrays), each thing sharing the specs of identical things before it.
    const rows =
      householdId === undefined
        ? this.rawStatement(SQL.allThings).iterate()
        : this.rawStatement('SELECT body, specs FROM things WHERE household_id = ? ORDER BY id').iterate(householdId);
    visitThingRows(rows as Iterable<ThingTuple>, new SpecInterner(), visit);
  }

  async appendHistory(changes: StateChanged[], options?: WriteOptions): Promise<void> {
    if (changes.length === 0) return;
    const rows = changes.map((c) => [
      c.id,
      c.householdId,
      c.thing,
      c.property,
      toMillis(c.ts),
      jsonText(c.from),
      jsonText(c.to),
      c.cause ?? null,
      c.source,
    ]);
    const latest = lastChangeOfEachProperty(changes).map((c) => [
      c.householdId,
      c.thing,
      c.property,
      jsonText(c.to),
      toMillis(c.ts),
    ]);
    await this.write(
      [
        { sql: SQL.insertHistory, rows, plain: true },
        { sql: SQL.upsertLatest, rows: latest, plain: true },
      ],
      options,
    );
  }

  async forgetHistory(householdId: string, thing: string): Promise<void> {
    await this.write(forgetHistorySql(DIALECT).map((sql) => ({ sql, rows: [[householdId, thing]] })));
  }

  async queryHistory(query: HistoryQuery): Promise<HistoryPoint[]> {
    const { sql, params } = historyQuerySql(DIALECT, query);
    return (this.statement(sql).all(...params) as HistoryRow[]).map(historyPointFromRow);
  }

  /**
   * A range summed up into buckets, on the query thread when there is one: a week of a 1 Hz
   * meter is ~600,000 rows for SQLite to step (~0.9 s), which on the hub's thread held every
   * report and command that long.
   */
  async bucketHistory(query: HistoryBucketQuery): Promise<HistoryBuckets> {
    const thread = this.queryThread();
    return bucketHistory(
      DIALECT,
      async <Row>({ sql, params }: BuiltQuery) =>
        thread ? thread.all<Row>(sql, params) : (this.statement(sql).all(...params) as Row[]),
      query,
    );
  }

  /** The thread for long reads: none for a store in memory or on one core (it would only add a copy). */
  private queryThread(): SqliteQueryThread | null {
    if (!this.db.open) throw new Error('the store is closed');
    if (this.queries) return this.queries;
    if (this.db.memory || this.options.file === '' || this.options.file === ':memory:') return null;
    if (availableParallelism() < 2) return null;
    this.queries = new SqliteQueryThread(this.options.file, this.busyTimeoutMs);
    return this.queries;
  }

  async latestValues(householdId?: string): Promise<LatestValue[]> {
    const values: LatestValue[] = [];
    await this.forEachLatestValue((value) => values.push(value), householdId);
    return values;
  }

  async forEachLatestValue(visit: (value: LatestValue) => void, householdId?: string): Promise<void> {
    // One row per thing, its values packed by SQLite as a JSON array of [property, value, ts]:
    // stepping a million rows one by one cost half as much CPU again as stepping a tenth of them
    // and parsing their arrays. `value` stays the column's JSON text (null for SQL NULL), so it
    // decodes exactly as a row of its own would.
    const rows =
      householdId === undefined
        ? this.rawStatement(SQL.allLatestValues).iterate()
        : this.rawStatement(
            `SELECT household_id, thing, ${PACKED_LATEST} FROM latest_values WHERE household_id = ?
              GROUP BY household_id, thing ORDER BY thing`,
          ).iterate(householdId);
    visitLatestRows(rows as Iterable<PackedLatestRow>, visit);
  }

  /**
   * Every thing, then every latest value, as forEachThing and forEachLatestValue give them: what
   * the hub reads at start. A large store is read on a thread of its own (sqlite-reader.ts), so
   * SQLite steps the next rows while this thread builds twins from the last ones; at 100,000
   * things that took start-up from ~4.0 to ~3.4 s (bench figure 4's store). A small one is read
   * here: starting the thread would cost more than it saves.
   */
  async loadAll(visitThing: (thing: Thing) => void, visitLatest: (value: LatestValue) => void): Promise<void> {
    if (!this.readsInThread()) {
      await this.forEachThing(visitThing);
      await this.forEachLatestValue(visitLatest);
      return;
    }
    const interner = new SpecInterner();
    await readInThread(
      this.options.file,
      [{ sql: SQL.allThings, shareColumn: 1 }, { sql: SQL.allLatestValues }],
      (query, rows) => {
        if (query === 0) visitThingRows(rows as ThingTuple[], interner, visitThing);
        else visitLatestRows(rows as PackedLatestRow[], visitLatest);
      },
    );
  }

  private readsInThread(): boolean {
    if (this.db.memory || this.options.file === '' || this.options.file === ':memory:') return false;
    if (availableParallelism() < 2) return false;
    // The largest rowid stands in for the count (a B-tree's last key, where count(*) reads every row).
    const { last } = this.statement('SELECT max(rowid) AS last FROM things').get() as { last: number | null };
    return (last ?? 0) >= (this.options.readInThreadFrom ?? READ_IN_THREAD_FROM);
  }

  async appendEvents(events: HubEvent[], options?: WriteOptions): Promise<void> {
    if (events.length === 0) return;
    assertNotStateChanges(events);
    await this.write([{ sql: SQL.insertEvent, rows: events.map(eventValues) }], options);
  }

  async listEvents(query: EventQuery): Promise<HubEvent[]> {
    const built = eventQuerySql(DIALECT, query);
    if (!built) return [];
    return (this.statement(built.sql).all(...built.params) as MergedEventRow[]).map(eventFromRow);
  }

  async saveCommand(command: Command, options?: WriteOptions): Promise<void> {
    await this.write([{ sql: SQL.upsertCommand, rows: [commandValues(command)] }], options);
  }

  async saveCommands(commands: Command[], options?: WriteOptions): Promise<void> {
    if (commands.length === 0) return;
    await this.write([{ sql: SQL.upsertCommand, rows: commands.map(commandValues) }], options);
  }

  async getCommand(householdId: string, id: string): Promise<Command | null> {
    const row = this.statement('SELECT body FROM commands WHERE household_id = ? AND id = ?').get(householdId, id) as
      | BodyRow
      | undefined;
    return row ? commandFromRow(row) : null;
  }

  async listOpenCommands(): Promise<Command[]> {
    return (this.statement(OPEN_COMMANDS_SQL).all() as BodyRow[]).map(commandFromRow);
  }

  async listCommandsByStatus(statuses: CommandStatus[]): Promise<Command[]> {
    if (statuses.length === 0) return [];
    const rows = this.statement(
      `SELECT body FROM commands WHERE ${DIALECT.oneOf('status', '?')} ORDER BY created_at, id, household_id`,
    ).all(DIALECT.arrayParam(statuses)) as BodyRow[];
    return rows.map(commandFromRow);
  }

  async saveToken(token: TokenRecord): Promise<void> {
    await this.write([
      {
        sql: `INSERT INTO tokens (id, household_id, user_id, name, hash, role, scopes, created_at, expires_at, revoked_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (id) DO UPDATE SET household_id = excluded.household_id, user_id = excluded.user_id,
          name = excluded.name, hash = excluded.hash, role = excluded.role, scopes = excluded.scopes,
          expires_at = excluded.expires_at, revoked_at = excluded.revoked_at`,
        rows: [tokenValues(token)],
      },
    ]);
  }

  async findTokenByHash(hash: string): Promise<TokenRecord | null> {
    const row = this.statement('SELECT * FROM tokens WHERE hash = ?').get(hash) as TokenRow | undefined;
    return row ? tokenFromRow(row) : null;
  }

  async listTokens(householdId: string): Promise<TokenRecord[]> {
    const rows = this.statement('SELECT * FROM tokens WHERE household_id = ? ORDER BY created_at, id').all(
      householdId,
    ) as TokenRow[];
    return rows.map(tokenFromRow);
  }

  async saveTimer(timer: StoredTimer): Promise<void> {
    await this.write([
      {
        sql: `INSERT INTO timers (id, household_id, owner, due, payload) VALUES (?, ?, ?, ?, ?)
        ON CONFLICT (id) DO UPDATE SET household_id = excluded.household_id, owner = excluded.owner,
          due = excluded.due, payload = excluded.payload`,
        rows: [[timer.id, timer.householdId, timer.owner, toMillis(timer.due), JSON.stringify(timer.payload)]],
      },
    ]);
  }

  async deleteTimer(id: string): Promise<void> {
    await this.write([{ sql: 'DELETE FROM timers WHERE id = ?', rows: [[id]] }]);
  }

  async listTimers(owner: string): Promise<StoredTimer[]> {
    const rows = this.statement('SELECT * FROM timers WHERE owner = ? ORDER BY due, id').all(owner) as TimerRow[];
    return rows.map(timerFromRow);
  }

  async saveRule(rule: StoredRule): Promise<void> {
    await this.write([
      {
        sql: `INSERT INTO automation_rules (household_id, id, body, created_at, updated_at) VALUES (?, ?, ?, ?, ?)
        ON CONFLICT (household_id, id) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at`,
        rows: [
          [rule.householdId, rule.id, JSON.stringify(rule.body), toMillis(rule.createdAt), toMillis(rule.updatedAt)],
        ],
      },
    ]);
  }

  async deleteRule(householdId: string, id: string): Promise<void> {
    await this.write([
      { sql: 'DELETE FROM automation_rules WHERE household_id = ? AND id = ?', rows: [[householdId, id]] },
    ]);
  }

  async listRules(householdId?: string): Promise<StoredRule[]> {
    const rows =
      householdId === undefined
        ? this.statement('SELECT * FROM automation_rules ORDER BY household_id, id').all()
        : this.statement('SELECT * FROM automation_rules WHERE household_id = ? ORDER BY id').all(householdId);
    return (rows as RuleRow[]).map(ruleFromRow);
  }

  async saveTrace(trace: StoredTrace, options?: WriteOptions): Promise<void> {
    await this.write(
      [{ sql: SQL.upsertTrace, rows: [traceValues(trace, 'object')], json: [TRACE_BODY_COLUMN] }],
      options,
    );
  }

  async saveTraces(traces: StoredTrace[], options?: WriteOptions): Promise<void> {
    if (traces.length === 0) return;
    const rows = traces.map((trace) => traceValues(trace, 'object'));
    await this.write([{ sql: SQL.upsertTrace, rows, json: [TRACE_BODY_COLUMN] }], options);
  }

  async getTrace(householdId: string, id: string): Promise<StoredTrace | null> {
    const row = this.statement('SELECT * FROM automation_traces WHERE household_id = ? AND id = ?').get(
      householdId,
      id,
    ) as TraceRow | undefined;
    return row ? traceFromRow(row) : null;
  }

  async listTraces(query: TraceQuery): Promise<StoredTrace[]> {
    const rows = this.statement(
      'SELECT * FROM automation_traces WHERE household_id = ? AND rule = ? ORDER BY started_at DESC, id DESC LIMIT ?',
    ).all(query.householdId, query.rule, clampLimit(query.limit, TRACE_LIMIT)) as TraceRow[];
    return rows.map(traceFromRow);
  }

  async isTraceListed(query: TraceQuery, trace: Pick<StoredTrace, 'id' | 'startedAt'>): Promise<boolean> {
    const limit = clampLimit(query.limit, TRACE_LIMIT);
    // The row value compares as listTraces orders, and ranges over the by-rule index.
    const row = this.statement(
      `SELECT COUNT(*) AS n FROM (SELECT 1 FROM automation_traces WHERE household_id = ? AND rule = ?
        AND (started_at, id) > (?, ?) LIMIT ?)`,
    ).get(query.householdId, query.rule, trace.startedAt, trace.id, limit) as { n: number };
    return row.n < limit;
  }

  async pruneTraces(prune: TracePrune): Promise<number> {
    // With the trace writes, so it deletes what they wrote before it and nothing written after.
    const { sql, params } = pruneTracesSql(DIALECT, prune);
    return this.write([{ sql, rows: [params] }]);
  }

  async deleteTraces(householdId: string, rule: string): Promise<void> {
    await this.write([
      { sql: 'DELETE FROM automation_traces WHERE household_id = ? AND rule = ?', rows: [[householdId, rule]] },
    ]);
  }

  async pageHistory(query: PageQuery): Promise<StateChanged[]> {
    const { sql, params } = pageQuerySql(DIALECT, 'history', query);
    return (this.statement(sql).all(...params) as StateRow[]).map(stateFromRow);
  }

  async pageEvents(query: PageQuery): Promise<HubEvent[]> {
    const { sql, params } = pageQuerySql(DIALECT, 'events', query);
    return (this.statement(sql).all(...params) as Array<BodyRow & { step: string | null }>).map(pageEventFromRow);
  }

  async valuesBefore(householdId: string, before: number, only?: PropertiesOf): Promise<LatestValue[]> {
    const { sql, params } = valuesBeforeSql(DIALECT, householdId, before, only);
    return (this.statement(sql).all(...params) as LatestRow[]).map(latestValueFromRow);
  }

  async saveAccountRecord(record: AccountRecord): Promise<void> {
    await this.write([
      {
        sql: `INSERT INTO accounts (kind, household_id, id, body, created_at) VALUES (?, ?, ?, ?, ?)
        ON CONFLICT (kind, household_id, id) DO UPDATE SET body = excluded.body`,
        rows: [[record.kind, record.householdId, record.id, JSON.stringify(record.body), toMillis(record.createdAt)]],
      },
    ]);
  }

  async deleteAccountRecord(kind: AccountKind, householdId: string, id: string): Promise<void> {
    await this.write([
      { sql: 'DELETE FROM accounts WHERE kind = ? AND household_id = ? AND id = ?', rows: [[kind, householdId, id]] },
    ]);
  }

  async listAccountRecords(kind: AccountKind, householdId?: string): Promise<AccountRecord[]> {
    const rows =
      householdId === undefined
        ? this.statement('SELECT * FROM accounts WHERE kind = ? ORDER BY created_at, id').all(kind)
        : this.statement('SELECT * FROM accounts WHERE kind = ? AND household_id = ? ORDER BY created_at, id').all(
            kind,
            householdId,
          );
    return (rows as AccountRow[]).map(accountFromRow);
  }

  async saveOpenChargingSession(session: StoredChargingSession): Promise<void> {
    await this.write([{ sql: SQL.upsertOpenChargingSession, rows: [chargingSessionValues(session)] }]);
  }

  async deleteOpenChargingSession(householdId: string, id: string): Promise<void> {
    await this.write([
      { sql: 'DELETE FROM open_charging_sessions WHERE household_id = ? AND id = ?', rows: [[householdId, id]] },
    ]);
  }

  async listOpenChargingSessions(householdId?: string): Promise<StoredChargingSession[]> {
    const rows =
      householdId === undefined
        ? this.statement('SELECT * FROM open_charging_sessions ORDER BY household_id, updated_at, id').all()
        : this.statement('SELECT * FROM open_charging_sessions WHERE household_id = ? ORDER BY updated_at, id').all(
            householdId,
          );
    return (rows as ChargingSessionRow[]).map(chargingSessionFromRow);
  }

  async appendAudit(record: AuditRecord): Promise<void> {
    await this.write([{ sql: SQL.insertAudit, rows: [auditValues(record)] }]);
  }

  async appendAuditBatch(records: AuditRecord[]): Promise<void> {
    if (records.length === 0) return;
    await this.write([{ sql: SQL.insertAudit, rows: records.map(auditValues) }]);
  }

  async listAudit(query: AuditQuery): Promise<AuditRecord[]> {
    const { sql, params } = auditQuerySql(DIALECT, query);
    return (this.statement(sql).all(...params) as AuditRow[]).map(auditFromRow);
  }

  /**
   * A prepared statement that returns rows as arrays, for the reads that go through a whole table:
   * no object with named keys per row. Kept apart from `statement`, whose callers expect objects.
   */
  private rawStatement(sql: string): Database.Statement {
    let statement = this.rawStatements.get(sql);
    if (!statement) {
      statement = this.db.prepare(sql).raw(true);
      this.rawStatements.set(sql, statement);
    }
    return statement;
  }

  /** Prepares a statement once and reuses it; the set of distinct SQL texts is small and fixed. */
  private statement(sql: string): Database.Statement {
    let statement = this.statements.get(sql);
    if (!statement) {
      statement = this.db.prepare(sql);
      this.statements.set(sql, statement);
    }
    return statement;
  }
}
