import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { StateChanged } from '../src/core/events.ts';
import { type StoreBackend, storeBackends, storeOf, T0, unique } from './helpers/stores.ts';

/**
 * Numbers a device may report that are far from a sensor's range. PostgreSQL's avg() of float8
 * keeps the sum of squares for variance, so two values more than ~1e154 apart overflowed it
 * ("value out of range: overflow") and every chart of the property failed from then on.
 */
const backends = await storeBackends('triad-parity-numbers-');

function suite(backend: StoreBackend): void {
  describe(`${backend.name} store sums up any finite numbers`, { skip: backend.skip }, () => {
    const store = storeOf(backend);

    it('downsamples huge and tiny numbers without overflowing', async () => {
      const householdId = unique('hh');
      const values = [8.451904257045435e290, 1e21, -1.7976931348623157e308, 5e-324, 0.1, 2 ** 53 + 2];
      const changes: StateChanged[] = values.map((to, n) => ({
        type: 'state',
        id: `sc-${n}`,
        householdId,
        ts: T0 + n,
        cause: null,
        thing: 'meter',
        property: 'sensor.power',
        from: undefined,
        to,
        source: 'test',
      }));
      await store().appendHistory(changes);
      const answer = await store().bucketHistory({ householdId, thing: 'meter', property: 'sensor.power', buckets: 2 });
      assert.equal(answer.kind, 'number');
      assert.equal(answer.count, values.length);
      if (answer.kind !== 'number') return;
      assert.deepEqual(
        answer.buckets.map((b) => [b.count, b.min, b.max]),
        [
          [3, -1.7976931348623157e308, 8.451904257045435e290],
          [3, 5e-324, 2 ** 53 + 2],
        ],
      );
      const means = answer.buckets.map((b) => b.mean);
      assert.ok(Math.abs((means[0] ?? 0) / ((values[0] + values[1] + values[2]) / 3) - 1) < 1e-12, `mean ${means[0]}`);
      assert.ok(Math.abs((means[1] ?? 0) / ((values[3] + values[4] + values[5]) / 3) - 1) < 1e-12, `mean ${means[1]}`);
      const points = await store().queryHistory({ householdId, thing: 'meter' });
      assert.deepEqual(
        points.map((p) => p.value),
        values,
      );
    });
  });
}

for (const backend of backends) suite(backend);
