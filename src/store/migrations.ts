/**
 * The schema both stores share: versioned migrations, how values map to columns, and the two
 * read queries whose SQL is the same in SQLite and PostgreSQL. Keeping them in one place is what
 * lets the two stores pass one test suite.
 *
 * To change the schema, append a migration with the next version. Never edit one that has shipped:
 * `schema_migrations` records which versions a database has, and applied ones never run again.
 */
import type { Command, CommandStep, HubEvent, StateChanged } from '../core/events.ts';
import { SpecInterner } from '../model/intern.ts';
import type { Thing } from '../model/thing.ts';
import {
  type AccountKind,
  type AccountRecord,
  type AuditQuery,
  type AuditRecord,
  EVENT_LIMIT,
  type EventQuery,
  HISTORY_LIMIT,
  type HistoryPoint,
  type HistoryQuery,
  type Household,
  type LatestValue,
  type PageQuery,
  type PropertiesOf,
  type StoredChargingSession,
  type StoredRule,
  type StoredTimer,
  type StoredTrace,
  type TokenRecord,
} from './store.ts';

/** Column types that differ between the two databases; everything else is written once. */
export interface ColumnTypes {
  /** A JSON document: TEXT in SQLite, JSONB in PostgreSQL. */
  json: string;
  /** Epoch milliseconds: INTEGER in SQLite (64-bit), BIGINT in PostgreSQL. */
  time: string;
  /** Which database the statements are for, where one needs an index the other does not (see migration 7). */
  database: 'sqlite' | 'postgres';
}

export interface Migration {
  version: number;
  name: string;
  statements(types: ColumnTypes): string[];
}

/**
 * No foreign keys point at `households`: the history writer must not pay a lookup per row, and a
 * household is never deleted while its rows exist. Isolation comes from `household_id` in every
 * key and every query.
 */
export const migrations: Migration[] = [
  {
    version: 1,
    name: 'initial schema',
    statements: ({ json, time }) => [
      `CREATE TABLE households (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        settings ${json} NOT NULL,
        created_at ${time} NOT NULL
      )`,
      `CREATE TABLE things (
        household_id TEXT NOT NULL,
        id TEXT NOT NULL,
        kind TEXT NOT NULL,
        name TEXT NOT NULL,
        body ${json} NOT NULL,
        PRIMARY KEY (household_id, id)
      )`,
      `CREATE TABLE history (
        id TEXT PRIMARY KEY,
        household_id TEXT NOT NULL,
        thing TEXT NOT NULL,
        property TEXT NOT NULL,
        ts ${time} NOT NULL,
        from_value ${json},
        value ${json},
        cause TEXT,
        source TEXT NOT NULL
      )`,
      'CREATE INDEX history_by_property ON history (household_id, thing, property, ts)',
      // listEvents reads state changes by household and time, without a thing.
      'CREATE INDEX history_by_time ON history (household_id, ts)',
      `CREATE TABLE latest_values (
        household_id TEXT NOT NULL,
        thing TEXT NOT NULL,
        property TEXT NOT NULL,
        value ${json},
        ts ${time} NOT NULL,
        PRIMARY KEY (household_id, thing, property)
      )`,
      `CREATE TABLE events (
        id TEXT PRIMARY KEY,
        household_id TEXT NOT NULL,
        type TEXT NOT NULL,
        ts ${time} NOT NULL,
        thing TEXT,
        body ${json} NOT NULL
      )`,
      'CREATE INDEX events_by_time ON events (household_id, ts)',
      // A command id is unique, but keying by household too means no household can overwrite
      // another's command by reusing its id.
      `CREATE TABLE commands (
        household_id TEXT NOT NULL,
        id TEXT NOT NULL,
        status TEXT NOT NULL,
        body ${json} NOT NULL,
        created_at ${time} NOT NULL,
        updated_at ${time} NOT NULL,
        PRIMARY KEY (household_id, id)
      )`,
      'CREATE INDEX commands_by_status ON commands (status)',
      `CREATE TABLE tokens (
        id TEXT PRIMARY KEY,
        household_id TEXT NOT NULL,
        user_id TEXT,
        name TEXT NOT NULL,
        hash TEXT NOT NULL UNIQUE,
        role TEXT NOT NULL,
        scopes ${json} NOT NULL,
        created_at ${time} NOT NULL,
        expires_at ${time},
        revoked_at ${time}
      )`,
      'CREATE INDEX tokens_by_household ON tokens (household_id)',
      `CREATE TABLE timers (
        id TEXT PRIMARY KEY,
        household_id TEXT NOT NULL,
        owner TEXT NOT NULL,
        due ${time} NOT NULL,
        payload ${json} NOT NULL
      )`,
      'CREATE INDEX timers_by_owner ON timers (owner, due)',
    ],
  },
  {
    version: 2,
    name: 'automation rules and traces',
    statements: ({ json, time }) => [
      `CREATE TABLE automation_rules (
        household_id TEXT NOT NULL,
        id TEXT NOT NULL,
        body ${json} NOT NULL,
        created_at ${time} NOT NULL,
        updated_at ${time} NOT NULL,
        PRIMARY KEY (household_id, id)
      )`,
      `CREATE TABLE automation_traces (
        id TEXT PRIMARY KEY,
        household_id TEXT NOT NULL,
        rule TEXT NOT NULL,
        started_at ${time} NOT NULL,
        status TEXT NOT NULL,
        body ${json} NOT NULL
      )`,
      // Listing and pruning go by rule, newest first.
      'CREATE INDEX automation_traces_by_rule ON automation_traces (household_id, rule, started_at, id)',
    ],
  },
  {
    version: 3,
    name: 'accounts, grants, guest passes, device credentials and the audit trail',
    statements: ({ json, time }) => [
      // Few rows per household, read whole at start: one document table serves all four kinds.
      `CREATE TABLE accounts (
        kind TEXT NOT NULL,
        household_id TEXT NOT NULL,
        id TEXT NOT NULL,
        body ${json} NOT NULL,
        created_at ${time} NOT NULL,
        PRIMARY KEY (kind, household_id, id)
      )`,
      `CREATE TABLE audit (
        id TEXT PRIMARY KEY,
        household_id TEXT NOT NULL,
        ts ${time} NOT NULL,
        actor ${json} NOT NULL,
        via TEXT NOT NULL,
        thing TEXT,
        action TEXT,
        result TEXT NOT NULL,
        reason TEXT,
        command_id TEXT
      )`,
      'CREATE INDEX audit_by_time ON audit (household_id, ts)',
    ],
  },
  {
    version: 4,
    name: 'thing specs apart from the thing',
    // Things of one model have the same property, action and event specs. Kept as their own JSON
    // text, they are parsed once per distinct text at start rather than once per thing. Rows
    // written before this keep everything in `body` (specs NULL) and still read back whole.
    statements: ({ json }) => [`ALTER TABLE things ADD COLUMN specs ${json}`],
  },
  {
    version: 5,
    name: 'command events read from the command log',
    // A command's events are kept in its own row (body.log) rather than as rows of the events
    // table; the event log finds the commands that can have events in a time range by this.
    // Events of commands written before this stay in the events table and read back as they were.
    statements: () => ['CREATE INDEX commands_by_update ON commands (household_id, updated_at)'],
  },
  {
    version: 6,
    name: 'open charging sessions',
    // At most one per charge point, read whole at start; a finished one moves to the event log.
    statements: ({ json, time }) => [
      `CREATE TABLE open_charging_sessions (
        household_id TEXT NOT NULL,
        id TEXT NOT NULL,
        charger TEXT NOT NULL,
        body ${json} NOT NULL,
        updated_at ${time} NOT NULL,
        PRIMARY KEY (household_id, id)
      )`,
    ],
  },
  {
    version: 7,
    name: 'history by property in (ts, id) order, for PostgreSQL',
    // Every read of one property's history is ordered by (ts, id): a page, the last value before a
    // time, a range's last value. Without `id` in the index PostgreSQL sorts every row of the range
    // to find the first ten thousand, or the one last (0.5 s for a week of a 1 Hz meter) unless its
    // statistics are fresh enough for an incremental sort; with it the index hands rows over in
    // that order. The new index replaces history_by_property (its prefix, so it serves every query
    // that one did) under the same name, so history keeps three indexes to write. SQLite needs
    // none of this (it sorts only the rows that share a ts) and keeps its index as it is.
    statements: ({ database }) =>
      database === 'postgres'
        ? [
            'CREATE INDEX history_by_property_ts_id ON history (household_id, thing, property, ts, id)',
            'DROP INDEX history_by_property',
            'ALTER INDEX history_by_property_ts_id RENAME TO history_by_property',
          ]
        : [],
  },
  {
    version: 8,
    name: 'open commands indexed alone',
    // The index by status held every command ever sent, and each one's entry moved as its status
    // did: four or five pages of the write-ahead log a write window (one in twenty of the frames an
    // automated message wrote at 1,000 reports/s, bench/HISTORY.md session 28), for one read at
    // start, of the few commands still open. Most commands are written first as finished (their
    // statuses gather in one row within a write window) and never enter this one.
    statements: () => [
      `CREATE INDEX commands_open ON commands (created_at, id) WHERE ${OPEN_COMMANDS}`,
      'DROP INDEX commands_by_status',
    ],
  },
  {
    version: 9,
    name: 'keys compared byte-wise, for PostgreSQL',
    // Ids, things, properties and households are ordered (ORDER BY … id) and compared (a page's
    // cursor, `(ts, id) > (…)`, the next property after `property > …`) in their column's
    // collation, which in PostgreSQL was the database's default: under en_US.UTF-8 'aB' comes
    // before 'Ab' and '-' is all but ignored, so pages skipped or repeated rows and the two stores
    // listed the same rows in different orders. SQLite compares TEXT as bytes (code points); "C"
    // does too, whatever the database's locale. The type stays TEXT, so the rows are not
    // rewritten, but every index on these columns is rebuilt (history's three among them) under
    // the migration's lock. A later migration's new table declares such columns TEXT COLLATE "C"
    // on PostgreSQL too.
    statements: ({ database }) =>
      database === 'postgres'
        ? Object.entries(BYTEWISE_COLUMNS).map(
            ([table, columns]) =>
              `ALTER TABLE ${table} ${columns.map((column) => `ALTER COLUMN ${column} TYPE TEXT COLLATE "C"`).join(', ')}`,
          )
        : [],
  },
];

/**
 * The text columns of migrations 1 to 8 that are keys, ordered by, or compared by order (see
 * migration 9): each table's key and index columns and every text column a query sorts by.
 */
const BYTEWISE_COLUMNS: Record<string, string[]> = {
  households: ['id'],
  things: ['household_id', 'id'],
  history: ['id', 'household_id', 'thing', 'property'],
  latest_values: ['household_id', 'thing', 'property'],
  events: ['id', 'household_id', 'thing'],
  commands: ['household_id', 'id'],
  tokens: ['id', 'household_id'],
  timers: ['id', 'household_id', 'owner'],
  automation_rules: ['household_id', 'id'],
  automation_traces: ['id', 'household_id', 'rule'],
  accounts: ['kind', 'household_id', 'id'],
  audit: ['id', 'household_id'],
  open_charging_sessions: ['household_id', 'id', 'charger'],
};

/**
 * Commands a restart resumes: still pending or sent. Written the same in the index's condition and
 * in the query that reads them, which is how both databases see that the index covers the query.
 */
export const OPEN_COMMANDS = "status IN ('pending', 'sent')";

/**
 * The order commands are listed in: oldest first, then by id, then by household, since ids are
 * unique only within one (without it, ties came back in whatever order each store's index held
 * them). The trailing key keeps commands_open (created_at, id) serving the query: the index hands
 * rows over in its order and only the rare ties are sorted.
 */
export const COMMAND_ORDER = 'created_at, id, household_id';

/** The open commands of every household, oldest first (see OPEN_COMMANDS). */
export const OPEN_COMMANDS_SQL = `SELECT body FROM commands WHERE ${OPEN_COMMANDS} ORDER BY ${COMMAND_ORDER}`;

/** Creates the ledger of applied versions; runs before any migration. */
export function migrationsTableSql(types: ColumnTypes): string {
  return `CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at ${types.time} NOT NULL
  )`;
}

/** The migrations a database that has `applied` still needs, in order. */
export function pendingMigrations(applied: Iterable<number>): Migration[] {
  const done = new Set(applied);
  return migrations.filter((m) => !done.has(m.version)).sort((a, b) => a.version - b.version);
}

// ---------------------------------------------------------------------------------------------
// Values and limits

/**
 * JSON text for a column. `undefined` becomes SQL NULL so it reads back as `undefined`, distinct
 * from a stored JSON `null` (a state change's `from` is undefined for a property's first value).
 */
export function toJson(value: unknown): string | null {
  return value === undefined ? null : JSON.stringify(value);
}

export function fromJson(text: string | null): unknown {
  return text === null ? undefined : JSON.parse(text);
}

/** Both stores keep whole milliseconds; PostgreSQL's BIGINT would reject a fraction. */
export function toMillis(ts: number): number {
  return Math.round(ts);
}

export function optionalMillis(ts: number | null): number | null {
  return ts === null ? null : toMillis(ts);
}

/**
 * The thing an event is about, so the log can be filtered by thing; a command event is about the
 * thing it commands.
 */
export function eventThing(event: HubEvent): string | null {
  if (event.type === 'command') return event.command.thing;
  return 'thing' in event && typeof event.thing === 'string' ? event.thing : null;
}

export function clampLimit(limit: number | undefined, bounds: { default: number; max: number }): number {
  if (limit === undefined || !Number.isFinite(limit)) return bounds.default;
  return Math.min(Math.max(1, Math.floor(limit)), bounds.max);
}

// ---------------------------------------------------------------------------------------------
// Rows as both drivers return them (PostgreSQL is configured to hand back JSON as text and
// BIGINT as numbers, so the shapes match).

export interface HouseholdRow {
  id: string;
  name: string;
  settings: string;
  created_at: number;
}

export interface BodyRow {
  body: string;
}

/** A things row: `specs` is NULL for rows written before migration 4, whose body holds everything. */
export interface ThingRow {
  body: string;
  specs: string | null;
}

export interface HistoryRow {
  id: string;
  property: string;
  ts: number;
  value: string | null;
  cause: string | null;
}

export interface LatestRow {
  household_id: string;
  thing: string;
  property: string;
  value: string | null;
  ts: number;
}

/** One row of the merged state-change and event stream; `body` is set only for events. */
export interface MergedEventRow {
  id: string;
  household_id: string;
  ts: number;
  thing: string | null;
  property: string | null;
  from_value: string | null;
  value: string | null;
  cause: string | null;
  source: string | null;
  body: string | null;
}

export interface TokenRow {
  id: string;
  household_id: string;
  user_id: string | null;
  name: string;
  hash: string;
  role: string;
  scopes: string;
  created_at: number;
  expires_at: number | null;
  revoked_at: number | null;
}

export interface TimerRow {
  id: string;
  household_id: string;
  owner: string;
  due: number;
  payload: string;
}

export function householdFromRow(row: HouseholdRow): Household {
  return {
    id: row.id,
    name: row.name,
    settings: JSON.parse(row.settings) as Household['settings'],
    createdAt: row.created_at,
  };
}

/**
 * The `body` and `specs` columns for a thing. The body keeps a placeholder where each spec map
 * was, so a thing reads back with its keys in the order it was written.
 */
export function thingColumns(thing: Thing): ThingRow {
  const { properties, actions, events } = thing;
  const placeholders = events === undefined ? { properties: 0, actions: 0 } : { properties: 0, actions: 0, events: 0 };
  return {
    body: JSON.stringify({ ...thing, ...placeholders }),
    specs: JSON.stringify({ properties, actions, events }),
  };
}

/**
 * A thing from its row. Pass one interner to every row of a load, so things with the same specs
 * share them (one parse per distinct specs text) instead of each holding its own copy.
 */
export function thingFromRow(row: ThingRow, interner = new SpecInterner()): Thing {
  const thing = JSON.parse(row.body) as Thing;
  if (row.specs === null) return interner.thing(thing);
  const specs = interner.specs(row.specs);
  thing.properties = specs.properties;
  thing.actions = specs.actions;
  if (specs.events !== undefined) thing.events = specs.events;
  return thing;
}

export function commandFromRow(row: BodyRow): Command {
  return JSON.parse(row.body) as Command;
}

/**
 * The `command` event a step of a command's log stands for: the command as it was then (only its
 * status, error and time change over its life), with the event's own id, time and cause.
 */
export function commandEvent(body: string, stepText: string): HubEvent {
  const { log: _log, ...command } = JSON.parse(body) as Command;
  const step = JSON.parse(stepText) as CommandStep;
  return {
    type: 'command',
    id: step.id,
    householdId: command.householdId,
    ts: step.ts,
    cause: step.cause,
    command: { ...command, status: step.status, error: step.error, updatedAt: step.ts },
  };
}

export function historyPointFromRow(row: HistoryRow): HistoryPoint {
  return { id: row.id, property: row.property, ts: row.ts, value: fromJson(row.value), cause: row.cause };
}

export function latestValueFromRow(row: LatestRow): LatestValue {
  return {
    householdId: row.household_id,
    thing: row.thing,
    property: row.property,
    value: fromJson(row.value),
    ts: row.ts,
  };
}

/** Events come back exactly as written; state changes are rebuilt from their history row. */
export function eventFromRow(row: MergedEventRow): HubEvent {
  if (row.source === COMMAND_LOG && row.body !== null && row.value !== null) return commandEvent(row.body, row.value);
  if (row.body !== null) return JSON.parse(row.body) as HubEvent;
  const change: StateChanged = {
    type: 'state',
    id: row.id,
    householdId: row.household_id,
    ts: row.ts,
    cause: row.cause,
    thing: row.thing ?? '',
    property: row.property ?? '',
    from: fromJson(row.from_value),
    to: fromJson(row.value),
    source: row.source ?? '',
  };
  return change;
}

export function tokenFromRow(row: TokenRow): TokenRecord {
  return {
    id: row.id,
    householdId: row.household_id,
    userId: row.user_id,
    name: row.name,
    hash: row.hash,
    role: row.role,
    scopes: JSON.parse(row.scopes) as string[],
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    revokedAt: row.revoked_at,
  };
}

export interface ChargingSessionRow {
  household_id: string;
  id: string;
  charger: string;
  body: string;
  updated_at: number;
}

export function chargingSessionFromRow(row: ChargingSessionRow): StoredChargingSession {
  return {
    householdId: row.household_id,
    id: row.id,
    charger: row.charger,
    body: bodyObject(row.body),
    updatedAt: row.updated_at,
  };
}

/**
 * A stored body as an object: a row whose text is not a JSON object (damaged by hand or by a disk)
 * reads as an empty one, for its reader to refuse on its own, rather than failing every row read
 * with it.
 */
function bodyObject(text: string): Record<string, unknown> {
  try {
    const parsed: unknown = JSON.parse(text);
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)
      ? (parsed as Record<string, unknown>)
      : {};
  } catch {
    return {};
  }
}

export function chargingSessionValues(session: StoredChargingSession): unknown[] {
  return [session.householdId, session.id, session.charger, JSON.stringify(session.body), toMillis(session.updatedAt)];
}

export function timerFromRow(row: TimerRow): StoredTimer {
  return {
    id: row.id,
    householdId: row.household_id,
    owner: row.owner,
    due: row.due,
    payload: JSON.parse(row.payload) as StoredTimer['payload'],
  };
}

export interface RuleRow {
  household_id: string;
  id: string;
  body: string;
  created_at: number;
  updated_at: number;
}

export interface TraceRow {
  id: string;
  household_id: string;
  rule: string;
  started_at: number;
  status: string;
  body: string;
}

/** A history row with everything a state change needs. */
export interface StateRow {
  id: string;
  household_id: string;
  thing: string;
  property: string;
  ts: number;
  from_value: string | null;
  value: string | null;
  cause: string | null;
  source: string;
}

export function ruleFromRow(row: RuleRow): StoredRule {
  return {
    householdId: row.household_id,
    id: row.id,
    body: JSON.parse(row.body) as StoredRule['body'],
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export function traceFromRow(row: TraceRow): StoredTrace {
  return {
    id: row.id,
    householdId: row.household_id,
    rule: row.rule,
    startedAt: row.started_at,
    status: row.status,
    body: JSON.parse(row.body) as StoredTrace['body'],
  };
}

export function stateFromRow(row: StateRow): StateChanged {
  return {
    type: 'state',
    id: row.id,
    householdId: row.household_id,
    ts: row.ts,
    cause: row.cause,
    thing: row.thing,
    property: row.property,
    from: fromJson(row.from_value),
    to: fromJson(row.value),
    source: row.source,
  };
}

export const TRACE_LIMIT = { default: 50, max: 1000 };
export const AUDIT_LIMIT = { default: 500, max: 10_000 };

export interface AccountRow {
  kind: string;
  household_id: string;
  id: string;
  body: string;
  created_at: number;
}

export interface AuditRow {
  id: string;
  household_id: string;
  ts: number;
  actor: string;
  via: string;
  thing: string | null;
  action: string | null;
  result: string;
  reason: string | null;
  command_id: string | null;
}

export function accountFromRow(row: AccountRow): AccountRecord {
  return {
    kind: row.kind as AccountKind,
    householdId: row.household_id,
    id: row.id,
    body: JSON.parse(row.body) as AccountRecord['body'],
    createdAt: row.created_at,
  };
}

export function auditFromRow(row: AuditRow): AuditRecord {
  return {
    id: row.id,
    householdId: row.household_id,
    ts: row.ts,
    actor: JSON.parse(row.actor) as AuditRecord['actor'],
    via: row.via,
    thing: row.thing,
    action: row.action,
    result: row.result as AuditRecord['result'],
    reason: row.reason,
    commandId: row.command_id,
  };
}

/**
 * How a row's JSON body is handed over: as its text, or as the object itself for a writer that
 * encodes it where the row is written (the SQLite writer thread, see WriteStep.json). Only traces
 * are handed over as objects now.
 */
export type BodyEncoding = 'text' | 'object';

/**
 * The values of one commands row, in the column order both stores' upserts name. The body is
 * always its JSON text, made on the caller's thread: see WriteStep.json for why a command's is
 * not made on the SQLite writer thread, as a trace's is.
 */
export function commandValues(command: Command): unknown[] {
  return [
    command.householdId,
    command.id,
    command.status,
    JSON.stringify(command),
    toMillis(command.createdAt),
    toMillis(command.updatedAt),
  ];
}

/**
 * The values of one events row, in the column order the SQLite insert names, with the event itself
 * as the body's JSON text (made here, as a command's is: see WriteStep.json). Every event that is
 * not a state change or a command is one of these (a rule's run, a notification, presence…), a
 * row per automated message on a busy hub. PostgreSQL binds its columns whole.
 */
export function eventValues(event: HubEvent): unknown[] {
  return [event.id, event.householdId, event.type, toMillis(event.ts), eventThing(event), JSON.stringify(event)];
}

/** The values of one automation_traces row, in the column order both stores' upserts name. */
export function traceValues(trace: StoredTrace, body: BodyEncoding = 'text'): unknown[] {
  const encoded = body === 'object' ? trace.body : JSON.stringify(trace.body);
  return [trace.id, trace.householdId, trace.rule, toMillis(trace.startedAt), trace.status, encoded];
}

/** Where traceValues puts the body: the column the writer thread encodes when it was given the object. */
export const TRACE_BODY_COLUMN = 5;

/** The values of one tokens row, in the column order both stores' upserts name. */
export function tokenValues(token: TokenRecord): unknown[] {
  return [
    token.id,
    token.householdId,
    token.userId,
    token.name,
    token.hash,
    token.role,
    JSON.stringify(token.scopes),
    toMillis(token.createdAt),
    optionalMillis(token.expiresAt),
    optionalMillis(token.revokedAt),
  ];
}

/** The values of one audit row, in the column order of AUDIT_COLUMNS. */
export const AUDIT_COLUMNS = 'id, household_id, ts, actor, via, thing, action, result, reason, command_id';
export function auditValues(record: AuditRecord): unknown[] {
  return [
    record.id,
    record.householdId,
    toMillis(record.ts),
    JSON.stringify(record.actor),
    record.via,
    record.thing,
    record.action,
    record.result,
    record.reason,
    record.commandId,
  ];
}

/** A household's audit lines in [since, until], newest first. */
export function auditQuerySql(dialect: Dialect, query: AuditQuery): BuiltQuery {
  const params = new Params(dialect);
  const where = [`household_id = ${params.bind(query.householdId)}`];
  if (query.since !== undefined) where.push(`ts >= ${params.bind(query.since)}`);
  if (query.until !== undefined) where.push(`ts <= ${params.bind(query.until)}`);
  const limit = params.bind(clampLimit(query.limit, AUDIT_LIMIT));
  return {
    sql: `SELECT * FROM audit WHERE ${where.join(' AND ')} ORDER BY ts DESC, id DESC LIMIT ${limit}`,
    params: params.values,
  };
}
export const PAGE_LIMIT = { default: 5000, max: 50_000 };

/**
 * One keyset page of `table` (history or events) for a household, oldest first. Keyset rather
 * than OFFSET so the thousandth page costs what the first does.
 */
export function pageQuerySql(dialect: Dialect, table: 'history' | 'events', query: PageQuery): BuiltQuery {
  const params = new Params(dialect);
  const where = [
    `household_id = ${params.bind(query.householdId)}`,
    `ts >= ${params.bind(query.from)}`,
    `ts <= ${params.bind(query.to)}`,
  ];
  if (query.after) {
    where.push(
      `(ts > ${params.bind(query.after.ts)} OR (ts = ${params.bind(query.after.ts)} AND id > ${params.bind(query.after.id)}))`,
    );
  }
  const columns =
    table === 'history' ? 'id, household_id, thing, property, ts, from_value, value, cause, source' : 'id, ts, body';
  let from = `SELECT ${columns} FROM ${table} WHERE ${where.join(' AND ')}`;
  if (table === 'events') {
    // Commands' events live in their log (see commandLogBranch); each page takes them in order too.
    const log = commandLogBranch(dialect, params, {
      householdId: query.householdId,
      since: query.from,
      until: query.to,
    });
    if (query.after) {
      // Only commands still alive after the page's last event can have steps on the next page:
      // without this, every page would read every command log since `from` again.
      log.where.push(
        `c.updated_at >= ${params.bind(query.after.ts)}`,
        `(${log.ts} > ${params.bind(query.after.ts)} OR (${log.ts} = ${params.bind(query.after.ts)} AND ${log.id} > ${params.bind(query.after.id)}))`,
      );
    }
    from = `SELECT id, ts, body, NULL AS step FROM ${table} WHERE ${where.join(' AND ')}
      UNION ALL SELECT ${log.id} AS id, ${log.ts} AS ts, c.body, ${log.step} AS step FROM ${log.from}
      WHERE ${log.where.join(' AND ')}`;
  }
  const limit = params.bind(clampLimit(query.limit, PAGE_LIMIT));
  return {
    sql: `SELECT * FROM (${from}) AS page ORDER BY ts, id LIMIT ${limit}`,
    params: params.values,
  };
}

/** An event of a page of the event log: a row of its own, or a step of a command's log. */
export function pageEventFromRow(row: BodyRow & { step: string | null }): HubEvent {
  return row.step !== null ? commandEvent(row.body, row.step) : (JSON.parse(row.body) as HubEvent);
}

/** Each property's last value before a time; ties in time go to the larger id, as in the stream. */
export function valuesBeforeSql(
  dialect: Dialect,
  householdId: string,
  before: number,
  only?: PropertiesOf,
): BuiltQuery {
  const params = new Params(dialect);
  if (only) {
    // One index lookup per property (history_by_property), not a pass over the household's
    // history: start-up asks this of a car's few properties, and a year of history is long.
    const branches = only.properties.map(
      (property, i) => `SELECT * FROM (SELECT household_id, thing, property, value, ts FROM history
        WHERE household_id = ${params.bind(householdId)} AND thing = ${params.bind(only.thing)}
          AND property = ${params.bind(property)} AND ts < ${params.bind(before)}
        ORDER BY ts DESC, id DESC LIMIT 1) AS p${i}`,
    );
    if (branches.length === 0) return { sql: 'SELECT NULL AS household_id WHERE 1 = 0', params: [] };
    return {
      sql: `SELECT * FROM (${branches.join(' UNION ALL ')}) AS latest ORDER BY thing, property`,
      params: params.values,
    };
  }
  // Every property the household ever recorded, found by skipping along history_by_property
  // (household_id, thing, property, …) from one property to the next: a few index seeks each,
  // where ranking every row before the time read the whole household's history (2 million rows:
  // 15 s in SQLite, 7.5 s in PostgreSQL, before a replay could start). Then one seek per property
  // for its last value before the time, as above. A property whose every value is later is left out.
  // The next property is the next one of the same thing or else the first of the next thing: two
  // plain seeks, where one condition `(thing, property) > (…)`, as an OR or as a row value, was
  // read by both engines as `thing >= …` and scanned the rest of the thing's rows at every step.
  const household = () => `household_id = ${params.bind(householdId)}`;
  const first = 'ORDER BY household_id, thing, property LIMIT 1';
  const next = (column: 'thing' | 'property') =>
    `COALESCE(
      (SELECT ${column} FROM history WHERE ${household()} AND thing = p.thing AND property > p.property ${first}),
      (SELECT ${column} FROM history WHERE ${household()} AND thing > p.thing ${first}))`;
  const start = `SELECT thing, property FROM (SELECT thing, property FROM history WHERE ${household()} ${first}) AS f`;
  const step = `SELECT ${next('thing')}, ${next('property')} FROM properties AS p WHERE p.thing IS NOT NULL`;
  const last = dialect.lastBefore(
    'h',
    `${household()} AND thing = p.thing AND property = p.property AND ts < ${params.bind(before)}`,
  );
  const sql = `WITH RECURSIVE properties (thing, property) AS (${start} UNION ALL ${step})
    SELECT h.household_id, h.thing, h.property, h.value, h.ts FROM properties AS p ${last}
    WHERE p.thing IS NOT NULL ORDER BY h.thing, h.property`;
  return { sql, params: params.values };
}

/** Deletes a rule's traces past the newest `keep` and those older than `olderThan`. */
export function pruneTracesSql(
  dialect: Dialect,
  prune: { householdId: string; rule: string; keep: number; olderThan: number },
): BuiltQuery {
  // Each value is bound once per use: SQLite's `?` placeholders are positional.
  const params = new Params(dialect);
  const sql = `DELETE FROM automation_traces WHERE household_id = ${params.bind(prune.householdId)} AND rule = ${params.bind(prune.rule)} AND (
      started_at < ${params.bind(prune.olderThan)}
      OR id NOT IN (
        SELECT id FROM automation_traces WHERE household_id = ${params.bind(prune.householdId)} AND rule = ${params.bind(prune.rule)}
        ORDER BY started_at DESC, id DESC LIMIT ${params.bind(Math.max(0, Math.floor(prune.keep)))}
      ))`;
  return { sql, params: params.values };
}

/** Events other than state changes go to the events table; state changes belong in history. */
export function assertNotStateChanges(events: HubEvent[]): void {
  const state = events.find((event) => event.type === 'state');
  if (state) throw new Error(`appendEvents got state change ${state.id}; state changes go through appendHistory`);
}

/**
 * The statements of Store.forgetHistory, run in one transaction with the household and the thing
 * as their two parameters. Events of the thing go but the record of its removal, which keeps its
 * id from being taken for someone new while older rows may still name it (see the people's
 * directory, freeId). History is read by (household, thing) through history_by_property's prefix.
 */
export function forgetHistorySql(dialect: Dialect): string[] {
  const where = `household_id = ${dialect.placeholder(1)} AND thing = ${dialect.placeholder(2)}`;
  return [
    `DELETE FROM history WHERE ${where}`,
    `DELETE FROM latest_values WHERE ${where}`,
    `DELETE FROM events WHERE ${where} AND type <> 'thing.removed'`,
  ];
}

// ---------------------------------------------------------------------------------------------
// Read queries. The SQL is shared; only placeholders and array parameters differ.

export interface Dialect {
  /** The placeholder for the `n`th bound parameter, counting from 1. */
  placeholder(n: number): string;
  /** A condition true when `column` equals one of the strings in one bound array parameter. */
  oneOf(column: string, placeholder: string): string;
  /** How a list of strings is bound as that one parameter. */
  arrayParam(values: string[]): unknown;
  /**
   * The commands table `c` joined with one row per step of each command's log, and how to read
   * a step (its JSON text, event id, time) and the command's thing.
   */
  commandLog: { from: string; step: string; id: string; ts: string; thing: string };
  /** A bound parameter read as a 64-bit integer (SQLite binds a JS number as REAL). */
  integer(placeholder: string): string;
  /** A JSON value column as a double when it holds a number, else NULL. */
  numberOf(column: string): string;
  /** True when a JSON value column holds SQL NULL or JSON null. */
  isNull(column: string): string;
  /** A JSON value column as its JSON text. */
  jsonTextOf(column: string): string;
  /** True when two JSON values differ, NULLs included. */
  differ(a: string, b: string): string;
  /**
   * Joins, as `alias`, the history row that is last in (ts, id) order among those `where` holds
   * (it may name the outer query's columns); no row, no join.
   */
  lastBefore(alias: string, where: string): string;
}

/** Marks a merged row that is a step of a command's log (see commandLogBranch). */
const COMMAND_LOG = 'command-log';

export interface BuiltQuery {
  sql: string;
  params: unknown[];
}

/** Collects bound parameters and hands back their placeholders, in the order they appear. */
export class Params {
  readonly values: unknown[] = [];
  constructor(private readonly dialect: Dialect) {}

  bind(value: unknown): string {
    this.values.push(value);
    return this.dialect.placeholder(this.values.length);
  }
}

/** History of one thing, oldest first; `from` and `to` are both inclusive. */
export function historyQuerySql(dialect: Dialect, query: HistoryQuery): BuiltQuery {
  const params = new Params(dialect);
  const where = [`household_id = ${params.bind(query.householdId)}`, `thing = ${params.bind(query.thing)}`];
  if (query.property !== undefined) where.push(`property = ${params.bind(query.property)}`);
  if (query.from !== undefined) where.push(`ts >= ${params.bind(query.from)}`);
  if (query.to !== undefined) where.push(`ts <= ${params.bind(query.to)}`);
  if (query.after) {
    const { ts, id } = query.after;
    where.push(`(ts > ${params.bind(ts)} OR (ts = ${params.bind(ts)} AND id > ${params.bind(id)}))`);
  }
  const limit = params.bind(clampLimit(query.limit, HISTORY_LIMIT));
  const sql = `SELECT id, property, ts, value, cause FROM history WHERE ${where.join(' AND ')}
    ORDER BY ts, id LIMIT ${limit}`;
  return { sql, params: params.values };
}

/**
 * State changes and other events of one household as one stream, oldest first; `since` and
 * `until` are both inclusive. Returns null when the filter rules out every row.
 */
export function eventQuerySql(dialect: Dialect, query: EventQuery): BuiltQuery | null {
  const types = query.types;
  const wantsState = types === undefined || types.includes('state');
  const otherTypes = types?.filter((type) => type !== 'state');
  const wantsEvents = otherTypes === undefined || otherTypes.length > 0;
  if (!wantsState && !wantsEvents) return null;

  const params = new Params(dialect);
  const branches: string[] = [];
  // A page after a cursor: each branch starts at the cursor's millisecond (its indexes serve
  // that), and the merged rows drop those of that millisecond up to the cursor's id.
  const after = query.after;
  if (after) query = { ...query, since: Math.max(query.since ?? after.ts, after.ts) };
  if (wantsState) {
    branches.push(`SELECT id, household_id, ts, thing, property, from_value, value, cause, source, NULL AS body
      FROM history WHERE ${commonEventFilters(params, query).join(' AND ')}`);
  }
  if (wantsEvents) {
    const where = commonEventFilters(params, query);
    if (otherTypes !== undefined) where.push(dialect.oneOf('type', params.bind(dialect.arrayParam(otherTypes))));
    // Every branch names its columns: the merged rows take the first branch's names.
    branches.push(`SELECT id, household_id, ts, thing, NULL AS property, NULL AS from_value, NULL AS value,
      NULL AS cause, NULL AS source, body FROM events WHERE ${where.join(' AND ')}`);
  }
  if (otherTypes === undefined || otherTypes.includes('command')) {
    const log = commandLogBranch(dialect, params, query);
    branches.push(`SELECT ${log.id} AS id, c.household_id, ${log.ts} AS ts, ${log.thing} AS thing,
      NULL AS property, NULL AS from_value, ${log.step} AS value, NULL AS cause, '${COMMAND_LOG}' AS source,
      c.body FROM ${log.from} WHERE ${log.where.join(' AND ')}`);
  }
  const past = after
    ? ` WHERE ts > ${params.bind(after.ts)} OR (ts = ${params.bind(after.ts)} AND id > ${params.bind(after.id)})`
    : '';
  const limit = params.bind(clampLimit(query.limit, EVENT_LIMIT));
  if (after && query.newest) throw new Error('an event query takes after or newest, not both');
  const order = query.newest ? 'ts DESC, id DESC' : 'ts, id';
  const sql = `SELECT * FROM (${branches.join(' UNION ALL ')}) AS merged${past} ORDER BY ${order} LIMIT ${limit}`;
  return { sql, params: params.values };
}

/**
 * The steps of command logs as event rows, filtered like the events table: the commands whose
 * lives overlap the range (by the index on household and last update), then their steps in it.
 */
function commandLogBranch(
  dialect: Dialect,
  params: Params,
  query: { householdId: string; since?: number; until?: number; thing?: string },
) {
  const { from, step, id, ts, thing } = dialect.commandLog;
  const where = [`c.household_id = ${params.bind(query.householdId)}`];
  if (query.since !== undefined) {
    where.push(`c.updated_at >= ${params.bind(query.since)}`, `${ts} >= ${params.bind(query.since)}`);
  }
  if (query.until !== undefined) {
    where.push(`c.created_at <= ${params.bind(query.until)}`, `${ts} <= ${params.bind(query.until)}`);
  }
  if (query.thing !== undefined) where.push(`${thing} = ${params.bind(query.thing)}`);
  return { from, step, id, ts, thing, where };
}

function commonEventFilters(params: Params, query: EventQuery): string[] {
  const where = [`household_id = ${params.bind(query.householdId)}`];
  if (query.since !== undefined) where.push(`ts >= ${params.bind(query.since)}`);
  if (query.until !== undefined) where.push(`ts <= ${params.bind(query.until)}`);
  if (query.thing !== undefined) where.push(`thing = ${params.bind(query.thing)}`);
  return where;
}
