import type { Command, CommandStatus, HubEvent, StateChanged } from '../core/events.ts';
import type { Thing } from '../model/thing.ts';

/** One recorded value of one property. */
export interface HistoryPoint {
  ts: number;
  value: unknown;
  /** The id of the state-change event, so a trace can point at it. */
  id: string;
  cause: string | null;
  /** Which property the value belongs to; tells points apart when a query spans every property. */
  property?: string;
}

/** How many points one history query returns, by default and at most. */
export const HISTORY_LIMIT = { default: 10_000, max: 100_000 };
/** How many events one events query returns, by default and at most. */
export const EVENT_LIMIT = { default: 1000, max: 10_000 };

export interface HistoryQuery {
  householdId: string;
  thing: string;
  property?: string;
  from?: number;
  to?: number;
  /** At most this many points (HISTORY_LIMIT.default when absent, never above HISTORY_LIMIT.max). */
  limit?: number;
  /**
   * Only points after this one in (ts, id) order, the order a query returns: the (ts, id) of the
   * last point of the previous page, so a walk can go on inside a millisecond.
   */
  after?: { ts: number; id: string };
}

/**
 * A property's history over [from, to] cut into at most `buckets` equal spans of time, each summed
 * up in the database, so a week of a 1 Hz meter (600,000 rows) comes back as a few hundred rows.
 * `from` and `to` are inclusive; when absent, the property's first and last recorded times.
 */
export interface HistoryBucketQuery {
  householdId: string;
  thing: string;
  property: string;
  from?: number;
  to?: number;
  /**
   * The thing's own history begins here (when it was added): a value recorded before it, by a
   * removed thing of the same id, is in no bucket and does not open a range left open.
   */
  since?: number;
  /** How many buckets at most (2 to HISTORY_BUCKETS.max). */
  buckets: number;
}

/** How many buckets one downsampled history query may ask for. */
export const HISTORY_BUCKETS = { min: 2, max: 5000 };

/**
 * One bucket of a property whose values are numbers: `ts` is the bucket's start, `count` how many
 * values were recorded in it (nulls included), min/max/mean over its numbers (null when it held
 * only nulls).
 */
export interface NumberBucket {
  ts: number;
  count: number;
  min: number | null;
  max: number | null;
  mean: number | null;
}

/**
 * One bucket of a property whose values are not all numbers (yes/no, text, objects): its first
 * and last values, and how many of its values differed from the value recorded just before them
 * (the range's first value is no change).
 */
export interface ValueBucket {
  ts: number;
  count: number;
  first: unknown;
  last: unknown;
  changes: number;
}

export type HistoryBuckets =
  | (HistoryBucketsBase & { kind: 'number'; buckets: NumberBucket[] })
  | (HistoryBucketsBase & { kind: 'value'; buckets: ValueBucket[] });

interface HistoryBucketsBase {
  /** The range cut into buckets; null ends when neither was given and nothing was ever recorded. */
  from: number | null;
  to: number | null;
  /** Each bucket's span in ms: bucket i starts at from + i * width. Buckets with no values are left out. */
  width: number;
  /** How many values were recorded in the range. */
  count: number;
  /** The range's last recorded value, or null when it holds none. */
  last: { ts: number; value: unknown } | null;
}

/** Some properties of one thing. */
export interface PropertiesOf {
  thing: string;
  properties: string[];
}

/** The latest known value of a property; what the twin reloads at start. */
export interface LatestValue {
  householdId: string;
  thing: string;
  property: string;
  value: unknown;
  ts: number;
}

export interface EventQuery {
  householdId: string;
  since?: number;
  until?: number;
  /** Only these event types; all when absent. */
  types?: string[];
  thing?: string;
  limit?: number;
  /** Only what comes after this one in the stream's order (time, then id): the next page. */
  after?: { ts: number; id: string };
  /**
   * The newest `limit` events instead of the oldest, newest first (a car's latest trips, however
   * many it has made). Not with `after`.
   */
  newest?: boolean;
}

export interface Household {
  id: string;
  name: string;
  /** Household settings (home location, presence delays, …) as set over the API. */
  settings: Record<string, unknown>;
  createdAt: number;
}

export interface TokenRecord {
  id: string;
  householdId: string;
  /** The user the token acts for; null for device or system tokens. */
  userId: string | null;
  name: string;
  /** sha256 of the secret, hex. The secret itself is never stored. */
  hash: string;
  role: string;
  scopes: string[];
  createdAt: number;
  expiresAt: number | null;
  revokedAt: number | null;
}

/** A timer that must survive a restart (automation `for:`, delays, waits; command expiry). */
export interface StoredTimer {
  id: string;
  householdId: string;
  /** Which subsystem owns it, so each one reloads only its own. */
  owner: string;
  due: number;
  payload: Record<string, unknown>;
}

/** An automation rule saved over the API, as its document; file rules live in their files. */
export interface StoredRule {
  householdId: string;
  id: string;
  body: Record<string, unknown>;
  createdAt: number;
  updatedAt: number;
}

/** One run of a rule, as the automation engine records it; `body` is the whole trace. */
export interface StoredTrace {
  id: string;
  householdId: string;
  rule: string;
  startedAt: number;
  status: string;
  body: Record<string, unknown>;
}

export interface TraceQuery {
  householdId: string;
  rule: string;
  limit?: number;
}

/** Which traces to delete: beyond the newest `keep` of a rule, or started before `olderThan`. */
export interface TracePrune {
  householdId: string;
  rule: string;
  keep: number;
  olderThan: number;
}

/**
 * One page of a household's recorded stream, oldest first, for replays that must not load a
 * million rows at once. `after` is the (ts, id) of the last row of the previous page.
 */
export interface PageQuery {
  householdId: string;
  from: number;
  to: number;
  after?: { ts: number; id: string };
  limit: number;
}

/** The security records kept as documents: people's accounts, their grants, guest passes, MQTT devices. */
export type AccountKind = 'user' | 'grant' | 'guest_pass' | 'device';

/** One security record; `body` is its typed shape as src/auth defines it. */
export interface AccountRecord {
  kind: AccountKind;
  householdId: string;
  id: string;
  body: Record<string, unknown>;
  createdAt: number;
}

/**
 * A charging session still under way, kept so it outlives a restart or a crash. `body` is the
 * session as the energy service keeps it; once finished it leaves here for the event log, as an
 * `energy.session` event like every finished session.
 */
export interface StoredChargingSession {
  householdId: string;
  id: string;
  charger: string;
  body: Record<string, unknown>;
  updatedAt: number;
}

/** Who acted, as the audit trail names them. */
export interface AuditActor {
  kind: 'user' | 'token' | 'pass' | 'device' | 'rule' | 'system';
  id: string;
  name: string;
}

/** One line of the audit trail: who did what, through which interface, to which thing, with what result. */
export interface AuditRecord {
  id: string;
  householdId: string;
  ts: number;
  actor: AuditActor;
  /** http, stream, mqtt, owntracks, viss, ocpp, automation, internal. */
  via: string;
  thing: string | null;
  action: string | null;
  result: 'accepted' | 'denied' | 'failed';
  reason: string | null;
  commandId: string | null;
}

export interface AuditQuery {
  householdId: string;
  since?: number;
  until?: number;
  limit?: number;
}

/** How a write is committed (the writes a write window makes take it). */
export interface WriteOptions {
  /**
   * Nobody is waiting for these rows (a write window's history points, events, command statuses,
   * traces): the store may commit them without waiting for the disk, as long as it syncs them
   * within a second (SQLite: SYNC_WITHIN_MS in sqlite-writer.ts). A crash of the hub loses none of
   * them once committed; a power cut can take that last second. Every write without it is durable
   * when its promise settles, and makes every background write before it durable too. PostgreSQL
   * treats every write as durable.
   */
  background?: boolean;
}

/**
 * Everything Triad keeps. SQLite (embedded default) and PostgreSQL implement it and pass the same
 * test suite. Every query is scoped to one household; methods without a household are for the
 * hub's own start-up.
 */
export interface Store {
  readonly kind: 'sqlite' | 'postgres';
  /** Creates or upgrades the schema; safe to call on every start. */
  migrate(): Promise<void>;
  close(): Promise<void>;

  saveHousehold(household: Household): Promise<void>;
  getHousehold(id: string): Promise<Household | null>;
  listHouseholds(): Promise<Household[]>;

  saveThing(thing: Thing): Promise<void>;
  /**
   * Saves several things in one transaction: all or none. Each (household, id) at most once.
   * Optional: callers fall back to saveThing for each.
   */
  saveThings?(things: Thing[]): Promise<void>;
  deleteThing(householdId: string, id: string): Promise<void>;
  /** All things of one household, or of every household when none is given (start-up). */
  listThings(householdId?: string): Promise<Thing[]>;
  /**
   * The same things as listThings, handed to `visit` as they are read instead of in one array, so
   * start-up with 100,000 things never holds them all twice. `visit` must not call the store.
   * Optional: callers fall back to listThings.
   */
  forEachThing?(visit: (thing: Thing) => void, householdId?: string): Promise<void>;

  /**
   * Resolves once every write handed over so far is committed. Optional: a store whose writes
   * settle with their own promises (PostgreSQL's, an inline SQLite's) need not keep count.
   */
  settled?(): Promise<void>;

  /** Writes a batch of state changes in one transaction and moves each property's latest value. */
  appendHistory(changes: StateChanged[], options?: WriteOptions): Promise<void>;
  queryHistory(query: HistoryQuery): Promise<HistoryPoint[]>;
  /**
   * Deletes what was recorded of one thing: its history points and its events, all but the record
   * of its removal (`thing.removed`). For a person taken out of the household, whose movements
   * must not outlive them; other things keep their history when removed.
   */
  forgetHistory(householdId: string, thing: string): Promise<void>;
  /**
   * A property's history summed up per bucket of time, in SQL: 'number' buckets (min, max, mean)
   * when every value recorded in the range is a number or null (an empty range too), else
   * 'value' buckets (first and last value, changes).
   */
  bucketHistory(query: HistoryBucketQuery): Promise<HistoryBuckets>;
  latestValues(householdId?: string): Promise<LatestValue[]>;
  /**
   * The same values as latestValues, in the same order, handed to `visit` as they are read: a
   * hub's million latest values never sit in one array. `visit` must not call the store.
   * Optional: callers fall back to latestValues.
   */
  forEachLatestValue?(visit: (value: LatestValue) => void, householdId?: string): Promise<void>;
  /**
   * Every thing and then every latest value, in the orders forEachThing and forEachLatestValue
   * give them: what a hub reads at start. A store may read ahead while the visitors work. Neither
   * visitor may call the store. Optional: callers fall back to the two streams one after the other.
   */
  loadAll?(visitThing: (thing: Thing) => void, visitLatest: (value: LatestValue) => void): Promise<void>;

  /** Writes a batch of non-state events (commands, automation runs, …) in one transaction. */
  appendEvents(events: HubEvent[], options?: WriteOptions): Promise<void>;
  /** State changes and other events together, oldest first. */
  listEvents(query: EventQuery): Promise<HubEvent[]>;

  /** Inserts or updates a command; called on every lifecycle step. */
  saveCommand(command: Command, options?: WriteOptions): Promise<void>;
  /** Inserts or updates several commands in one transaction, in order (a later copy of a command wins). */
  saveCommands(commands: Command[], options?: WriteOptions): Promise<void>;
  getCommand(householdId: string, id: string): Promise<Command | null>;
  /** Commands still pending or sent, across every household, oldest first (to resume them after a restart). */
  listOpenCommands(): Promise<Command[]>;
  /**
   * Commands in the given states across every household, oldest first. Read by looking at every
   * command, so for inspection and tests; a restart reads listOpenCommands, which has an index.
   */
  listCommandsByStatus(statuses: CommandStatus[]): Promise<Command[]>;

  saveToken(token: TokenRecord): Promise<void>;
  findTokenByHash(hash: string): Promise<TokenRecord | null>;
  listTokens(householdId: string): Promise<TokenRecord[]>;

  saveTimer(timer: StoredTimer): Promise<void>;
  deleteTimer(id: string): Promise<void>;
  listTimers(owner: string): Promise<StoredTimer[]>;

  saveRule(rule: StoredRule): Promise<void>;
  deleteRule(householdId: string, id: string): Promise<void>;
  /** Rules of one household, or of every household when none is given (start-up). */
  listRules(householdId?: string): Promise<StoredRule[]>;

  saveTrace(trace: StoredTrace, options?: WriteOptions): Promise<void>;
  /** Inserts or updates several traces in one transaction, in order (a later copy of a trace wins). */
  saveTraces(traces: StoredTrace[], options?: WriteOptions): Promise<void>;
  getTrace(householdId: string, id: string): Promise<StoredTrace | null>;
  /** A rule's traces, newest first. */
  listTraces(query: TraceQuery): Promise<StoredTrace[]>;
  /**
   * Whether listTraces(query) lists this trace of the rule, without reading any trace: whether
   * fewer than its limit (clamped as listTraces clamps it) of the rule's traces come before it in
   * that order (started later, or at the same time with a greater id, as the store compares ids).
   * Counts on the by-rule index, and no further than the limit.
   */
  isTraceListed(query: TraceQuery, trace: Pick<StoredTrace, 'id' | 'startedAt'>): Promise<boolean>;
  /** Applies the retention policy to one rule's traces; returns how many were deleted. */
  pruneTraces(prune: TracePrune): Promise<number>;
  deleteTraces(householdId: string, rule: string): Promise<void>;

  /** State changes in [from, to], oldest first, one page at a time. */
  pageHistory(query: PageQuery): Promise<StateChanged[]>;
  /** Other events (commands, automation runs, …) in [from, to], oldest first, one page at a time. */
  pageEvents(query: PageQuery): Promise<HubEvent[]>;
  /**
   * Each property's last recorded value strictly before `before`: the state a replay starts from.
   * With `only`, just those properties of one thing (a lookup each, however long the history).
   */
  valuesBefore(householdId: string, before: number, only?: PropertiesOf): Promise<LatestValue[]>;

  /** Inserts or replaces one security record (user, grant, guest pass, device). */
  saveAccountRecord(record: AccountRecord): Promise<void>;
  deleteAccountRecord(kind: AccountKind, householdId: string, id: string): Promise<void>;
  /** Records of one kind in one household, or in every household when none is given (start-up); oldest first. */
  listAccountRecords(kind: AccountKind, householdId?: string): Promise<AccountRecord[]>;

  /** Inserts or replaces one open charging session. */
  saveOpenChargingSession(session: StoredChargingSession): Promise<void>;
  deleteOpenChargingSession(householdId: string, id: string): Promise<void>;
  /** Open charging sessions of one household, or of every household when none is given (start-up); oldest first. */
  listOpenChargingSessions(householdId?: string): Promise<StoredChargingSession[]>;

  /** Writes one audit line at once (not batched): a refusal must be on record even if the hub dies next. */
  appendAudit(record: AuditRecord): Promise<void>;
  /**
   * Writes several audit lines in one transaction: the audit trail's group commit, which writes
   * every line within a few milliseconds of its recording (see AuditTrail).
   */
  appendAuditBatch(records: AuditRecord[]): Promise<void>;
  /** A household's audit trail in [since, until], newest first. */
  listAudit(query: AuditQuery): Promise<AuditRecord[]>;
}
