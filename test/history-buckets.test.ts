import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';
import type { StateChanged } from '../src/core/events.ts';
import { bucketPlan } from '../src/store/history-buckets.ts';
import type { NumberBucket, Store, ValueBucket } from '../src/store/store.ts';
import { type StoreBackend, storeBackends, storeOf, T0, unique } from './helpers/stores.ts';

/** One recorded value of the meter's power at T0 + `at` ms. */
function reading(householdId: string, at: number, value: unknown, property = 'sensor.power'): StateChanged {
  return {
    type: 'state',
    id: unique(`sc${String(at).padStart(9, '0')}`),
    householdId,
    ts: T0 + at,
    cause: null,
    thing: 'meter',
    property,
    from: null,
    to: value,
    source: 'mqtt',
  };
}

// Before any describe(): a suite declared after an await would be missed.
const backends = await storeBackends('triad-buckets-');

describe('bucketPlan', () => {
  it('never makes more buckets than asked for, and the last one reaches `to`', () => {
    for (const [from, to, n] of [
      [0, 999, 10],
      [0, 1000, 10],
      [5, 5, 2],
      [0, 604_799_999, 1280],
      [17, 10_000_019, 3],
    ]) {
      const plan = bucketPlan(from, to, n);
      const last = Math.floor((to - from) / plan.width);
      assert.ok(last < n, `${from}..${to} in ${n}: bucket ${last} of width ${plan.width}`);
      assert.ok(from + (last + 1) * plan.width > to);
    }
    assert.equal(bucketPlan(0, 999, 10).width, 100, 'a range that divides evenly');
  });
});

function bucketSuite(backend: StoreBackend): void {
  describe(`${backend.name} bucketHistory`, { skip: backend.skip }, () => {
    const openStore = storeOf(backend);
    let store: Store;
    let household: string;
    beforeEach(() => {
      store = openStore();
      household = unique('hh');
    });
    const ask = (from: number | undefined, to: number | undefined, buckets: number, property = 'sensor.power') =>
      store.bucketHistory({
        householdId: household,
        thing: 'meter',
        property,
        from: from === undefined ? undefined : T0 + from,
        to: to === undefined ? undefined : T0 + to,
        buckets,
      });

    it('sums up numbers per bucket: edges go to the bucket they start, both ends of the range count', async () => {
      // [0, 1000] holds 1001 ms, both ends in: 4 buckets are 251 ms wide (1001 / 4 rounded up).
      await store.appendHistory([
        reading(household, 0, 10),
        reading(household, 100, 20),
        reading(household, 250, 30),
        reading(household, 251, 40),
        reading(household, 999, -5.5),
        reading(household, 1000, 7),
        reading(household, -1, 1000),
        reading(household, 1001, 1000),
      ]);
      const answer = await ask(0, 1000, 4);
      assert.equal(answer.kind, 'number');
      assert.equal(answer.width, 251);
      assert.equal(answer.count, 6, 'values before `from` and after `to` are not in the range');
      assert.deepEqual(answer.last, { ts: T0 + 1000, value: 7 });
      const buckets = answer.buckets as NumberBucket[];
      assert.deepEqual(
        buckets.map((b) => [b.ts - T0, b.count, b.min, b.max]),
        [
          [0, 3, 10, 30],
          [251, 1, 40, 40],
          [753, 2, -5.5, 7],
        ],
        'an empty bucket is left out; 250 is in the first bucket, 251 starts the second',
      );
      assert.equal(buckets[0].mean, 20);
      assert.equal(buckets[2].mean, 0.75);
      assert.ok(buckets.length <= 4);
    });

    it('answers an empty range with no buckets, and one value with one bucket', async () => {
      const empty = await ask(0, 60_000, 100);
      assert.deepEqual(
        { ...empty },
        {
          kind: 'number',
          from: T0,
          to: T0 + 60_000,
          width: 601,
          count: 0,
          last: null,
          buckets: [],
        },
      );
      const open = await ask(undefined, undefined, 100);
      assert.equal(open.count, 0, 'nothing ever recorded, no ends given');
      assert.deepEqual(open.buckets, []);

      await store.appendHistory([reading(household, 30_000, 21.5)]);
      const one = await ask(0, 60_000, 100);
      assert.deepEqual(one.buckets, [{ ts: T0 + 29_999 - (29_999 % 601), count: 1, min: 21.5, max: 21.5, mean: 21.5 }]);
      assert.equal(one.count, 1);
      const bounds = await ask(undefined, undefined, 100);
      assert.equal(bounds.from, T0 + 30_000, 'open ends are the first and last recorded times');
      assert.equal(bounds.to, T0 + 30_000);
      assert.deepEqual(
        bounds.buckets.map((b) => b.count),
        [1],
      );
    });

    it('keeps nulls out of min, max and mean but counts them', async () => {
      await store.appendHistory([reading(household, 0, 5), reading(household, 1, null), reading(household, 2, 9)]);
      await store.appendHistory([reading(household, 500, null)]);
      const answer = await ask(0, 999, 2);
      assert.equal(answer.kind, 'number');
      assert.deepEqual(
        answer.buckets.map((b) => ({ ...b, ts: b.ts - T0 })),
        [
          { ts: 0, count: 3, min: 5, max: 9, mean: 7 },
          { ts: 500, count: 1, min: null, max: null, mean: null },
        ],
      );
    });

    it('sums up a property that is not a number as its first and last values and its changes', async () => {
      const p = 'lock.locked';
      const values: Array<[number, unknown]> = [
        [0, true],
        [10, true],
        [20, false],
        [30, true],
        [400, true],
        [450, false],
        [600, false],
        [999, 'jammed'],
      ];
      await store.appendHistory(values.map(([at, v]) => reading(household, at, v, p)));
      const answer = await ask(0, 999, 4, p);
      assert.equal(answer.kind, 'value');
      assert.equal(answer.count, values.length);
      assert.deepEqual(answer.last, { ts: T0 + 999, value: 'jammed' });
      assert.deepEqual(
        (answer.buckets as ValueBucket[]).map((b) => ({ ...b, ts: b.ts - T0 })),
        [
          // The range's first value is no change; 10 repeats it; 20 and 30 change.
          { ts: 0, count: 4, first: true, last: true, changes: 2 },
          // 400 repeats the value before it (30, in the bucket before): no change; 450 is one.
          { ts: 250, count: 2, first: true, last: false, changes: 1 },
          { ts: 500, count: 1, first: false, last: false, changes: 0 },
          { ts: 750, count: 1, first: 'jammed', last: 'jammed', changes: 1 },
        ],
      );
      // Text in a range of numbers makes it a range of values.
      await store.appendHistory([reading(household, 0, 1, 'x.mixed'), reading(household, 1, 'off', 'x.mixed')]);
      const mixed = await ask(0, 999, 4, 'x.mixed');
      assert.equal(mixed.kind, 'value');
      assert.deepEqual(
        mixed.buckets.map((b) => [(b as ValueBucket).first, (b as ValueBucket).last, (b as ValueBucket).changes]),
        [[1, 'off', 1]],
      );
    });

    it('orders values that share a millisecond by id, at the edges of buckets too', async () => {
      const p = 'climate.mode';
      // [id, ms, value], written out of order. 0–99 is bucket 0, 100–199 bucket 1, 200–299 bucket 2.
      const rows: Array<[string, number, unknown]> = [
        ['b', 99, 'heat'],
        ['a', 99, 'off'],
        ['c', 99, null],
        ['e', 100, 'off'],
        ['d', 100, undefined],
        ['f', 100, 'cool'],
        ['g', 150, 'cool'],
        ['h', 299, 'cool'],
      ];
      const prefix = unique('tie');
      await store.appendHistory(
        rows.map(([id, at, value]) => ({
          ...reading(household, at, value, p),
          id: `${prefix}-${id}`,
          from: undefined,
        })),
      );
      const answer = await ask(0, 299, 3, p);
      assert.equal(answer.kind, 'value');
      assert.deepEqual(answer.last, { ts: T0 + 299, value: 'cool' });
      assert.deepEqual(
        (answer.buckets as ValueBucket[]).map((b) => ({ ...b, ts: b.ts - T0 })),
        [
          // off → heat → null: two changes.
          { ts: 0, count: 3, first: 'off', last: null, changes: 2 },
          // JSON null → no value (SQL NULL) → off → cool → cool: three changes, the first across the edge.
          { ts: 100, count: 4, first: null, last: 'cool', changes: 3 },
          { ts: 200, count: 1, first: 'cool', last: 'cool', changes: 0 },
        ],
      );
    });

    it('sees only its household, thing and property', async () => {
      await store.appendHistory([
        reading(household, 0, 1),
        { ...reading(household, 0, 2), thing: 'other' },
        reading(household, 0, 3, 'sensor.energy'),
        { ...reading(household, 0, 4), householdId: unique('hh') },
      ]);
      const answer = await ask(0, 10, 2);
      assert.deepEqual(
        answer.buckets.map((b) => [(b as NumberBucket).min, b.count]),
        [[1, 1]],
      );
    });

    it('finds the true extremes of 20,000 values in 10 buckets', async () => {
      const changes: StateChanged[] = [];
      for (let i = 0; i < 20_000; i++)
        changes.push(reading(household, i * 10, Math.sin(i / 300) * 100 + (i === 12_345 ? 1e6 : 0)));
      for (let i = 0; i < changes.length; i += 5000) await store.appendHistory(changes.slice(i, i + 5000));
      const answer = await ask(0, 199_990, 10);
      const buckets = answer.buckets as NumberBucket[];
      assert.equal(buckets.length, 10);
      assert.equal(answer.count, 20_000);
      assert.equal(Math.max(...buckets.map((b) => b.max ?? -Infinity)), Math.sin(12_345 / 300) * 100 + 1e6);
      assert.equal(buckets[0].ts, T0);
      assert.ok(buckets[9].ts + answer.width > T0 + 199_990, 'the last bucket reaches the end of the range');
    });
  });
}

for (const backend of backends) bucketSuite(backend);
