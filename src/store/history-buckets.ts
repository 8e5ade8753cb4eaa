/**
 * Downsampled history: a property's values over a range cut into equal buckets of time and summed
 * up by the database (both stores run the same SQL through their Dialect), so the hub reads one
 * row per bucket however many values the range holds.
 */
import { type BuiltQuery, type Dialect, fromJson, Params } from './migrations.ts';
import type { HistoryBucketQuery, HistoryBuckets, NumberBucket, ValueBucket } from './store.ts';

/** The range and bucket width a query is cut into. */
export interface BucketPlan {
  from: number;
  to: number;
  width: number;
}

/**
 * Bucket i holds [from + i*width, from + (i+1)*width); the width is the range's length (both ends
 * in) over the buckets asked for, rounded up, so the last bucket ends at or after `to` and there
 * are never more than asked for.
 */
export function bucketPlan(from: number, to: number, buckets: number): BucketPlan {
  const span = Math.max(1, to - from + 1);
  return { from, to, width: Math.max(1, Math.ceil(span / Math.max(1, Math.floor(buckets)))) };
}

/**
 * The first and last recorded times of a property, for a query that leaves an end open: one index
 * lookup at each end. (Asked as min(ts) and max(ts), PostgreSQL without fresh statistics of the
 * table reads every row of the property instead: 0.9 s for a week of a 1 Hz meter.)
 */
export function historyBoundsSql(dialect: Dialect, query: HistoryBucketQuery): BuiltQuery {
  const params = new Params(dialect);
  const since = wholeEnd(query.since, 'from');
  const end = (order: 'ASC' | 'DESC') => `(SELECT ts FROM history
    WHERE household_id = ${params.bind(query.householdId)} AND thing = ${params.bind(query.thing)}
    AND property = ${params.bind(query.property)}${since === undefined ? '' : ` AND ts >= ${params.bind(since)}`}
    ORDER BY ts ${order} LIMIT 1)`;
  const sql = `SELECT ${end('ASC')} AS first_ts, ${end('DESC')} AS last_ts`;
  return { sql, params: params.values };
}

/**
 * The rows of a plan's range that are the thing's own: from the later of the range's start and the
 * thing's beginning, one lower bound for the index. The buckets are still cut from the range's
 * start, so a range asked from before the thing was added keeps the width it was asked with.
 */
function rangeFilter(params: Params, query: HistoryBucketQuery, plan: BucketPlan): string {
  const since = wholeEnd(query.since, 'from');
  const first = since === undefined ? plan.from : Math.max(plan.from, since);
  return `household_id = ${params.bind(query.householdId)} AND thing = ${params.bind(query.thing)}
    AND property = ${params.bind(query.property)} AND ts >= ${params.bind(first)} AND ts <= ${params.bind(plan.to)}`;
}

function bucketOf(dialect: Dialect, params: Params, plan: BucketPlan): string {
  return `(ts - ${dialect.integer(params.bind(plan.from))}) / ${dialect.integer(params.bind(plan.width))}`;
}

export interface NumberBucketRow {
  bucket: number;
  count: number;
  others: number;
  min: number | null;
  max: number | null;
  mean: number | null;
}

/**
 * One row per bucket that holds values: how many, min/max/mean of its numbers, and `others`, how
 * many were neither a number nor null (any of them, and the range is charted as values instead).
 */
export function numberBucketsSql(dialect: Dialect, query: HistoryBucketQuery, plan: BucketPlan): BuiltQuery {
  const params = new Params(dialect);
  const bucket = bucketOf(dialect, params, plan);
  const sql = `SELECT bucket, count(*) AS count, min(num) AS min, max(num) AS max, avg(num) AS mean,
      sum(CASE WHEN num IS NULL AND NOT ${dialect.isNull('value')} THEN 1 ELSE 0 END) AS others
    FROM (SELECT ${bucket} AS bucket, value, ${dialect.numberOf('value')} AS num FROM history
      WHERE ${rangeFilter(params, query, plan)}) AS r
    GROUP BY bucket ORDER BY bucket`;
  return { sql, params: params.values };
}

/**
 * The rows of numberBucketsSql, for PostgreSQL: each bucket summed up on its own, from its own
 * range of the index, so no plan ever sorts the range's rows by bucket. (Grouping them all by
 * bucket, PostgreSQL sorts the range on disk: its row estimate for the bucket expression is the
 * number of distinct times, far too many groups to hash.) Each row's number is read out of its
 * JSON once (OFFSET 0 keeps the subquery from being merged into the aggregates, each of which
 * would read it again).
 */
export function numberBucketsByRangeSql(dialect: Dialect, query: HistoryBucketQuery, plan: BucketPlan): BuiltQuery {
  const params = new Params(dialect);
  const from = dialect.integer(params.bind(plan.from));
  const width = dialect.integer(params.bind(plan.width));
  const lastBucket = dialect.integer(params.bind(Math.floor((plan.to - plan.from) / plan.width)));
  const sql = `SELECT b.bucket, s.count, s.min, s.max, s.mean, s.others
    FROM generate_series(0, ${lastBucket}) AS b(bucket)
    CROSS JOIN LATERAL (SELECT count(*) AS count, min(num) AS min, max(num) AS max, avg(num) AS mean,
        sum(CASE WHEN num IS NULL AND NOT ${dialect.isNull('value')} THEN 1 ELSE 0 END) AS others
      FROM (SELECT value, ${dialect.numberOf('value')} AS num FROM history
        WHERE ${rangeFilter(params, query, plan)}
          AND ts >= ${from} + b.bucket * ${width} AND ts < ${from} + (b.bucket + 1) * ${width}
        OFFSET 0) AS r) AS s
    WHERE s.count > 0 ORDER BY b.bucket`;
  return { sql, params: params.values };
}

export interface ValueBucketRow {
  bucket: number;
  count: number;
  changes: number;
  first_text: string | null;
  last_text: string | null;
}

/**
 * One row per bucket that holds values: how many, its first and last values (JSON text), and how
 * many of them differ from the value recorded before them in the range (window functions, in
 * (ts, id) order, as queryHistory returns them). A bucket's rows are neighbours in that order, so
 * its first row is the one whose predecessor is in another bucket (or that has none), its last the
 * one whose successor is: one window, one ordering of the range.
 */
export function valueBucketsSql(dialect: Dialect, query: HistoryBucketQuery, plan: BucketPlan): BuiltQuery {
  const params = new Params(dialect);
  const bucket = bucketOf(dialect, params, plan);
  const sql = `SELECT bucket, count(*) AS count, sum(changed) AS changes,
      max(CASE WHEN first_in = 1 THEN txt END) AS first_text, max(CASE WHEN last_in = 1 THEN txt END) AS last_text
    FROM (SELECT bucket, txt,
        CASE WHEN row_number() OVER w = 1 THEN 0 WHEN ${dialect.differ('value', 'lag(value) OVER w')} THEN 1 ELSE 0 END
          AS changed,
        CASE WHEN ${dialect.differ('bucket', 'lag(bucket) OVER w')} THEN 1 ELSE 0 END AS first_in,
        CASE WHEN ${dialect.differ('bucket', 'lead(bucket) OVER w')} THEN 1 ELSE 0 END AS last_in
      FROM (SELECT ${bucket} AS bucket, ts, id, value, ${dialect.jsonTextOf('value')} AS txt FROM history
        WHERE ${rangeFilter(params, query, plan)}) AS inner_rows
      WINDOW w AS (ORDER BY ts, id)) AS r
    GROUP BY bucket ORDER BY bucket`;
  return { sql, params: params.values };
}

/** The range's last recorded value (one index lookup). */
export function lastInRangeSql(dialect: Dialect, query: HistoryBucketQuery, plan: BucketPlan): BuiltQuery {
  const params = new Params(dialect);
  const sql = `SELECT ts, value FROM history WHERE ${rangeFilter(params, query, plan)}
    ORDER BY ts DESC, id DESC LIMIT 1`;
  return { sql, params: params.values };
}

/**
 * The furthest a time can be from 1970, in ms either way (a JavaScript Date's range, and ISO 8601's
 * years ±275760 the API reads): no value is recorded beyond it, and PostgreSQL's bigint arithmetic
 * on the bucket's bounds cannot take the finite numbers past it (1e300 was a 500 there, answered
 * by SQLite).
 */
const FURTHEST_TIME = 8.64e15;

/**
 * One end of a range as the whole millisecond it admits first, for both stores to cut the same
 * buckets: every stored time is whole, so a fraction is rounded inward (`from` up, `to` down) and
 * buckets start on whole milliseconds (they started at the fraction, `…0.5`, in SQLite). An
 * infinite end on its open side is no end, as a missing one is: the property's own first or last
 * time (from -Infinity, bucket arithmetic gave a bucket at NaN, Infinity wide). A finite end past
 * FURTHEST_TIME is taken as FURTHEST_TIME: the range holds the same values. NaN stays NaN.
 */
function wholeEnd(x: number | undefined, side: 'from' | 'to'): number | undefined {
  if (x === undefined || x === (side === 'from' ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY)) {
    return undefined;
  }
  const whole = side === 'from' ? Math.ceil(x) : Math.floor(x);
  return Math.min(FURTHEST_TIME, Math.max(-FURTHEST_TIME, whole));
}

/** What a store runs a query with: rows of one built query. */
export type RunQuery = <Row>(query: BuiltQuery) => Promise<Row[]>;

/** How a store builds the numbers query: the SQL both run, or one of its own with the same rows. */
export type NumberBucketsSql = typeof numberBucketsSql;

/**
 * The whole downsampled answer, on either store: bounds when an end is open, the number buckets,
 * and the value buckets only when the range holds something other than numbers and nulls.
 */
export async function bucketHistory(
  dialect: Dialect,
  run: RunQuery,
  query: HistoryBucketQuery,
  numbersSql: NumberBucketsSql = numberBucketsSql,
): Promise<HistoryBuckets> {
  let from = wholeEnd(query.from, 'from');
  let to = wholeEnd(query.to, 'to');
  if (from === undefined || to === undefined) {
    const [bounds] = await run<{ first_ts: number | null; last_ts: number | null }>(historyBoundsSql(dialect, query));
    from ??= bounds?.first_ts ?? undefined;
    to ??= bounds?.last_ts ?? undefined;
  }
  // `!(from <= to)`, not `from > to`: a NaN end (or +Infinity as the start) selects nothing.
  if (from === undefined || to === undefined || !(from <= to)) {
    const end = (x: number | undefined) => (x !== undefined && Number.isFinite(x) ? x : null);
    return { kind: 'number', from: end(from), to: end(to), width: 0, count: 0, last: null, buckets: [] };
  }
  const plan = bucketPlan(from, to, query.buckets);
  const start = (bucket: number) => plan.from + Number(bucket) * plan.width;
  const numbers = await run<NumberBucketRow>(numbersSql(dialect, query, plan));
  const count = numbers.reduce((sum, row) => sum + Number(row.count), 0);
  const [lastRow] = count ? await run<{ ts: number; value: string | null }>(lastInRangeSql(dialect, query, plan)) : [];
  const base = {
    from: plan.from,
    to: plan.to,
    width: plan.width,
    count,
    last: lastRow ? { ts: Number(lastRow.ts), value: fromJson(lastRow.value) ?? null } : null,
  };
  if (numbers.every((row) => Number(row.others) === 0)) {
    const buckets: NumberBucket[] = numbers.map((row) => ({
      ts: start(row.bucket),
      count: Number(row.count),
      min: row.min === null ? null : Number(row.min),
      max: row.max === null ? null : Number(row.max),
      mean: row.mean === null ? null : Number(row.mean),
    }));
    return { ...base, kind: 'number', buckets };
  }
  const values = await run<ValueBucketRow>(valueBucketsSql(dialect, query, plan));
  const buckets: ValueBucket[] = values.map((row) => ({
    ts: start(row.bucket),
    count: Number(row.count),
    first: fromJson(row.first_text) ?? null,
    last: fromJson(row.last_text) ?? null,
    changes: Number(row.changes),
  }));
  return { ...base, kind: 'value', buckets };
}
