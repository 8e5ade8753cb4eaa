import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { planCharging } from '../src/energy/index.ts';
import { parseBy } from '../src/energy/planner/plan-book.ts';

/** The planner when the prices end before a deadline, and the forms a plan's deadline takes. */

const HOUR = 3_600_000;
const T0 = Date.UTC(2026, 2, 3, 0);
const hourly = (prices: number[]) =>
  prices.map((price, i) => ({ start: T0 + i * HOUR, end: T0 + (i + 1) * HOUR, price }));

describe('planning past the known prices', () => {
  it('fills every priced slot first, then the earliest times without a price, for one car and for two', () => {
    const slots = hourly([0.4, 0.1]);
    const [one] = planCharging({
      now: T0,
      slots,
      siteLimitKw: 10,
      chargeUnpriced: true,
      needs: [{ id: 'a', energyKwh: 25, maxPowerKw: 10, by: T0 + 6 * HOUR }],
    });
    assert.equal(one.feasible, true);
    assert.ok(Math.abs(one.unpricedKwh - 5) < 1e-9);
    assert.ok(Math.abs(one.cost - (10 * 0.4 + 10 * 0.1)) < 1e-9);
    const late = one.slots.filter((s) => !s.priced);
    assert.deepEqual(
      late.map((s) => [s.start - T0, s.end - s.start]),
      [
        [2 * HOUR, HOUR / 4],
        [2.25 * HOUR, HOUR / 4],
      ],
    );

    // Two cars share a 10 kW fuse: the priced hours stay full, the rest goes to unpriced times.
    const two = planCharging({
      now: T0,
      slots,
      siteLimitKw: 10,
      chargeUnpriced: true,
      needs: [
        { id: 'a', energyKwh: 15, maxPowerKw: 10, by: T0 + 6 * HOUR },
        { id: 'b', energyKwh: 15, maxPowerKw: 10, by: T0 + 6 * HOUR },
      ],
    });
    assert.ok(two.every((p) => p.feasible));
    const pricedKwh = two
      .flatMap((p) => p.slots)
      .filter((s) => s.priced)
      .reduce((sum, s) => sum + s.energyKwh, 0);
    assert.ok(Math.abs(pricedKwh - 20) < 1e-6, `priced ${pricedKwh}`);
    assert.ok(Math.abs(two.reduce((sum, p) => sum + p.unpricedKwh, 0) - 10) < 1e-6);
  });

  it('with no price at all still charges by the deadline', () => {
    const [plan] = planCharging({
      now: T0,
      slots: [],
      siteLimitKw: 11,
      chargeUnpriced: true,
      needs: [{ id: 'a', energyKwh: 11.9, maxPowerKw: 11, by: T0 + 7.5 * HOUR }],
    });
    assert.equal(plan.feasible, true);
    assert.equal(plan.slots[0].start, T0);
  });
});

describe('a plan’s deadline', () => {
  const now = Date.UTC(2026, 5, 10, 18);
  it('takes an ISO time with its zone, or the next time of day in a time zone', () => {
    assert.equal(parseBy('2026-06-11T07:30:00Z', now), Date.UTC(2026, 5, 11, 7, 30));
    assert.equal(parseBy('2026-06-11T07:30+02:00', now), Date.UTC(2026, 5, 11, 5, 30));
    assert.equal(parseBy('07:30', now), Date.UTC(2026, 5, 11, 7, 30));
    assert.equal(parseBy('19:00', now), Date.UTC(2026, 5, 10, 19));
    assert.equal(parseBy('07:30', now, 'Europe/Amsterdam'), Date.UTC(2026, 5, 11, 5, 30));
    // Across the autumn change: the next 07:30 in Amsterdam is already winter time (UTC+1).
    assert.equal(parseBy('07:30', Date.UTC(2026, 9, 24, 22), 'Europe/Amsterdam'), Date.UTC(2026, 9, 25, 6, 30));
  });

  it('refuses anything else with one message', () => {
    for (const bad of ['25:99', '7.30', '2026-02-30T07:30:00Z', '2026-06-11T07:30', 'tomorrow', '']) {
      assert.throws(() => parseBy(bad, now), /by must be an ISO 8601 date and time .* or a time of day HH:MM/, bad);
    }
  });
});
