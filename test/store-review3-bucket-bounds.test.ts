/**
 * A downsampled history range with a finite end far past any stored time (the API takes any
 * finite number: `to=8.64e15`, `to=1e300`) is answered alike by both stores: PostgreSQL failed on
 * it (a 500 at GET /api/things/{id}/history?points=…) where SQLite answered.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import type { HistoryBucketQuery, Store } from '../src/store/store.ts';
import { meterChanges, storeBackends, T0, unique } from './helpers/stores.ts';

const backends = await storeBackends('triad-review3-buckets-');
const pg = backends[1];

const FAR = [
  [0, 8.64e15],
  [-8.64e15, 8.64e15],
  [0, 1e300],
  [-1e300, 1e300],
  [-1e300, T0 + 5],
  [T0 + 1, 9.3e18],
  [-Number.MAX_VALUE, Number.MAX_VALUE],
  [1e300, 1e301],
  [-1e301, -1e300],
];

describe('SQLite and PostgreSQL answer a downsampled range with ends past any stored time alike', {
  skip: pg.skip,
}, () => {
  const stores: Store[] = [];
  const household = unique('hh');
  before(async () => {
    for (const backend of backends) stores.push(await backend.open());
    const changes = meterChanges(household);
    for (const store of stores) await store.appendHistory(changes);
  });
  after(async () => {
    for (const store of stores) await store.close();
    for (const backend of backends) await backend.dispose();
  });

  for (const property of ['sensor.power', 'status']) {
    for (const [from, to] of FAR) {
      it(`answers ${property} from ${from} to ${to} on both stores, the same`, async () => {
        const query: HistoryBucketQuery = { householdId: household, thing: 'meter', property, buckets: 4, from, to };
        const [sqlite, postgres] = [await stores[0].bucketHistory(query), await stores[1].bucketHistory(query)];
        assert.deepEqual(postgres, sqlite);
        const inRange = T0 >= from && T0 + 10 <= to;
        if (inRange) assert.equal(sqlite.count, 5, 'every stored value is in the range');
      });
    }
  }

  it('answers any finite range alike on both stores', async () => {
    const end = fc.oneof(
      fc.double({ noNaN: true, noDefaultInfinity: true }),
      fc.integer({ min: T0 - 20, max: T0 + 20 }),
    );
    await fc.assert(
      fc.asyncProperty(end, end, fc.constantFrom('sensor.power', 'status'), async (a, b, property) => {
        const [from, to] = a <= b ? [a, b] : [b, a];
        const query: HistoryBucketQuery = { householdId: household, thing: 'meter', property, buckets: 3, from, to };
        assert.deepEqual(await stores[1].bucketHistory(query), await stores[0].bucketHistory(query));
      }),
      { numRuns: 150 },
    );
  });
});
