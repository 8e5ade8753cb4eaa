/**
 * A downsampled range whose ends are not whole milliseconds (a virtual clock's fraction, an open
 * end passed as ±Infinity, a NaN from a bad parse) is cut the same way by both stores, into
 * buckets that start on whole milliseconds. SQLite's started at the fraction (`…0.5`), and from
 * -Infinity gave a bucket at NaN, Infinity wide; PostgreSQL rounded its bounds on its own.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { HistoryBucketQuery, Store } from '../src/store/store.ts';
import { meterChanges, storeBackends, T0, unique } from './helpers/stores.ts';

const backends = await storeBackends('triad-parity-buckets-');
const pg = backends[1];

const ODD = [T0 + 0.5, T0 - 0.25, T0 + 2.999, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, Number.NaN];

describe('SQLite and PostgreSQL cut a range with odd ends into the same buckets', { skip: pg.skip }, () => {
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

  /** Whether a downsampled answer is cut on whole milliseconds, and what it counted. */
  function checkWhole(answer: Awaited<ReturnType<Store['bucketHistory']>>, name: string): void {
    for (const end of [answer.from, answer.to]) assert.ok(end === null || Number.isSafeInteger(end), `${name}: ${end}`);
    assert.ok(Number.isSafeInteger(answer.width), `${name}: width ${answer.width}`);
    for (const bucket of answer.buckets) assert.ok(Number.isSafeInteger(bucket.ts), `${name}: bucket ${bucket.ts}`);
  }

  for (const property of ['sensor.power', 'status']) {
    for (const bound of ODD) {
      it(`cuts ${property} alike from or to ${bound}`, async () => {
        const base = { householdId: household, thing: 'meter', property, buckets: 3 };
        const queries: Array<[string, HistoryBucketQuery]> = [
          ['from', { ...base, from: bound }],
          ['to', { ...base, to: bound }],
          ['from to', { ...base, from: bound, to: T0 + 10.5 }],
          ['from to', { ...base, from: T0 - 0.5, to: bound }],
        ];
        for (const [name, query] of queries) {
          const [sqlite, postgres] = await Promise.all(stores.map((store) => store.bucketHistory(query)));
          assert.deepEqual(postgres, sqlite, `${name} ${bound}`);
          checkWhole(sqlite, `${name} ${bound}`);
          // What the buckets counted is what a plain query of the range finds.
          const points = await stores[0].queryHistory({
            householdId: household,
            thing: 'meter',
            property,
            from: query.from,
            to: query.to,
          });
          assert.equal(sqlite.count, points.length, `${name} ${bound}: count`);
        }
      });
    }
  }

  it('takes an infinite end as an open one', async () => {
    const base = { householdId: household, thing: 'meter', property: 'sensor.power', buckets: 3 };
    for (const store of stores) {
      const open = await store.bucketHistory(base);
      const infinite = await store.bucketHistory({
        ...base,
        from: Number.NEGATIVE_INFINITY,
        to: Number.POSITIVE_INFINITY,
      });
      assert.deepEqual(infinite, open);
      assert.equal(open.from, T0);
      assert.equal(open.to, T0 + 10);
    }
  });

  it('starts from the first whole millisecond of a fraction', async () => {
    const [sqlite] = stores;
    const answer = await sqlite.bucketHistory({
      householdId: household,
      thing: 'meter',
      property: 'sensor.power',
      from: T0 + 0.5,
      to: T0 + 3.5,
      buckets: 3,
    });
    assert.equal(answer.from, T0 + 1);
    assert.equal(answer.to, T0 + 3);
    assert.deepEqual(
      answer.buckets.map((b) => [b.ts, b.count]),
      [
        [T0 + 1, 1],
        [T0 + 2, 1],
        [T0 + 3, 1],
      ],
    );
  });
});
