import type { HistoryPoint, HistoryQuery, Store } from './store.ts';

/**
 * Visits every history point a query matches, oldest first, a page at a time: a query alone stops
 * at its limit, and a day of a car's reports is more than one. Each page starts after the last
 * point of the one before in (ts, id) order, so points sharing a millisecond are visited once
 * each, however many of them there are.
 */
export async function walkHistory(
  store: Store,
  query: Omit<HistoryQuery, 'limit' | 'after'>,
  visit: (point: HistoryPoint) => void,
  pageSize = 5000,
): Promise<void> {
  let after: HistoryQuery['after'];
  for (;;) {
    const page = await store.queryHistory({ ...query, after, limit: pageSize });
    for (const point of page) visit(point);
    if (page.length < pageSize) return;
    const last = page[page.length - 1];
    after = { ts: last.ts, id: last.id };
  }
}
