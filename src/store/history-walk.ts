import type { HistoryPoint, HistoryQuery, Store } from './store.ts';

/**
 * Visits every history point a query matches, oldest first, a page at a time: a query alone stops
 * at its limit, and a day of a car's reports is more than one. Pages continue from the last point
 * seen by (ts, id), so points sharing a millisecond across a page boundary are visited once.
 * A query has no (ts, id) cursor, so a millisecond holding more points than a page is left after
 * its first page (thousands of changes of one thing in one millisecond; a car makes a handful).
 */
export async function walkHistory(
  store: Store,
  query: Omit<HistoryQuery, 'limit'>,
  visit: (point: HistoryPoint) => void,
  pageSize = 5000,
): Promise<void> {
  let after: { ts: number; id: string } | null = null;
  for (;;) {
    const page = await store.queryHistory({ ...query, from: after?.ts ?? query.from, limit: pageSize });
    const seen: { ts: number; id: string } | null = after;
    const fresh: HistoryPoint[] = seen ? page.filter((p) => p.ts > seen.ts || p.id > seen.id) : page;
    for (const point of fresh) visit(point);
    if (page.length < pageSize) return;
    const last = page[page.length - 1];
    // A whole page within one millisecond, all seen: the next millisecond (see above).
    after = fresh.length > 0 ? { ts: last.ts, id: last.id } : { ts: last.ts + 1, id: '' };
  }
}
