import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  type ChargeNeed,
  checkSeries,
  energyForSoc,
  type PriceSlot,
  planCharging,
  Tariff,
} from '../src/energy/index.ts';

/**
 * The charge planner against an exact optimum. With whole-kWh needs, powers and limits on hourly
 * slots the optimum of this transportation problem is integral, so a dynamic programme over every
 * whole-kWh split (a brute force over all schedules) finds it; the planner must match its cost.
 */

const HOUR = 3_600_000;
const T0 = Date.UTC(2026, 2, 3, 0);

function hourly(prices: number[], start = T0): PriceSlot[] {
  return prices.map((price, i) => ({ start: start + i * HOUR, end: start + (i + 1) * HOUR, price }));
}

/** Exact optimum for up to two chargers: most energy first, then least cost. */
function bruteForce(prices: number[], needs: ChargeNeed[], limitKw: number): { energy: number; cost: number } {
  const [n1, n2] = [needs[0], needs[1] ?? { id: '-', energyKwh: 0, maxPowerKw: 0, by: T0 }];
  const cap = (need: ChargeNeed, s: number) => (T0 + (s + 1) * HOUR <= need.by ? need.maxPowerKw : 0);
  let best = new Map<string, number>([['0,0', 0]]);
  prices.forEach((price, s) => {
    const next = new Map<string, number>();
    for (const [key, cost] of best) {
      const [a, b] = key.split(',').map(Number);
      for (let x = 0; x <= Math.min(cap(n1, s), n1.energyKwh - a); x++) {
        for (let y = 0; y <= Math.min(cap(n2, s), n2.energyKwh - b, limitKw - x); y++) {
          const k = `${a + x},${b + y}`;
          const c = cost + (x + y) * price;
          if (!next.has(k) || c < next.get(k)!) next.set(k, c);
        }
      }
    }
    best = next;
  });
  let result = { energy: -1, cost: 0 };
  for (const [key, cost] of best) {
    const energy = key
      .split(',')
      .map(Number)
      .reduce((x, y) => x + y);
    if (energy > result.energy || (energy === result.energy && cost < result.cost)) result = { energy, cost };
  }
  return result;
}

describe('charge planner', () => {
  it('puts a 10 kWh need by 07:00 into the cheapest slots within the fuse, at the optimum cost', () => {
    // A day from 18:00: evening peak, cheap night hours 01:00–05:00, the morning peak after 07:00.
    const prices = [0.41, 0.38, 0.33, 0.29, 0.27, 0.25, 0.22, 0.14, 0.11, 0.09, 0.12, 0.18, 0.26, 0.35, 0.4, 0.36];
    const start = Date.UTC(2026, 2, 3, 18);
    const by = Date.UTC(2026, 2, 4, 7);
    const needs = [{ id: 'wallbox', energyKwh: 10, maxPowerKw: 11, by }];
    const [plan] = planCharging({ now: start, slots: hourly(prices, start), siteLimitKw: 3.7, needs });
    assert.equal(plan.feasible, true);
    assert.ok(Math.abs(plan.energyKwh - 10) < 1e-9);
    // The fuse leaves 3.7 kW: 3.7 + 3.7 + 2.6 kWh in the three cheapest hours (0.11, 0.09, 0.12).
    assert.deepEqual(
      plan.slots.map((s) => new Date(s.start).toISOString().slice(11, 16)),
      ['02:00', '03:00', '04:00'],
    );
    for (const slot of plan.slots) assert.ok(slot.powerKw <= 3.7 + 1e-9 && slot.end <= by);
    const expected = 3.7 * 0.09 + 3.7 * 0.11 + 2.6 * 0.12;
    assert.ok(Math.abs(plan.cost - expected) < 1e-9, `${plan.cost} vs ${expected}`);
    assert.ok(Math.abs(plan.cost - plan.slots.reduce((sum, s) => sum + s.cost, 0)) < 1e-9);
  });

  it('matches the brute-force optimum on random prices, needs, deadlines and a shared fuse', () => {
    const need = (id: string) =>
      fc.record({
        id: fc.constant(id),
        energyKwh: fc.integer({ min: 0, max: 9 }),
        maxPowerKw: fc.integer({ min: 1, max: 4 }),
        by: fc.integer({ min: 1, max: 7 }).map((h) => T0 + h * HOUR),
      });
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: -5, max: 40 }), { minLength: 1, maxLength: 7 }),
        fc.array(need('a'), { minLength: 1, maxLength: 1 }).chain((one) =>
          fc.oneof(
            fc.constant(one),
            need('b').map((b) => [...one, b]),
          ),
        ),
        fc.integer({ min: 1, max: 6 }),
        (cents, needs, limitKw) => {
          const prices = cents.map((c) => c / 100);
          const plans = planCharging({ now: T0, slots: hourly(prices), siteLimitKw: limitKw, needs });
          const exact = bruteForce(prices, needs, limitKw);
          const energy = plans.reduce((sum, p) => sum + p.energyKwh, 0);
          const cost = plans.reduce((sum, p) => sum + p.cost, 0);
          assert.ok(Math.abs(energy - exact.energy) < 1e-6, `energy ${energy} vs ${exact.energy}`);
          assert.ok(Math.abs(cost - exact.cost) < 1e-6, `cost ${cost} vs ${exact.cost}`);
          for (const [i, plan] of plans.entries()) {
            assert.equal(plan.feasible, plan.energyKwh >= needs[i].energyKwh - 1e-6);
            assert.ok(Math.abs(plan.shortfallKwh - Math.max(0, needs[i].energyKwh - plan.energyKwh)) < 1e-6);
          }
          // The fuse holds in every slot.
          for (const slot of hourly(prices)) {
            const total = plans
              .flatMap((p) => p.slots)
              .filter((s) => s.start === slot.start)
              .reduce((sum, s) => sum + s.powerKw, 0);
            assert.ok(total <= limitKw + 1e-6);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('says a plan cannot be met, and by how much, when it is made', () => {
    const [plan] = planCharging({
      now: T0,
      slots: hourly([0.2, 0.1, 0.3]),
      siteLimitKw: 11,
      needs: [{ id: 'x', energyKwh: 30, maxPowerKw: 7.4, by: T0 + 3 * HOUR }],
    });
    assert.equal(plan.feasible, false);
    assert.ok(Math.abs(plan.shortfallKwh - (30 - 3 * 7.4)) < 1e-9);
    assert.equal(plan.slots.length, 3);
  });

  it('adds charging losses to a target state of charge', () => {
    assert.ok(
      Math.abs(energyForSoc({ fromSoc: 40, targetSoc: 80, capacityKwh: 60, efficiency: 0.9 }) - 24 / 0.9) < 1e-9,
    );
    assert.equal(energyForSoc({ fromSoc: 90, targetSoc: 80, capacityKwh: 60, efficiency: 0.9 }), 0);
  });
});

describe('tariffs', () => {
  it('rejects a price series with a gap or an overlap, naming the slot', () => {
    const slots = hourly([0.1, 0.2, 0.3, 0.4]);
    const gap = [slots[0], slots[1], slots[3]];
    assert.throws(() => checkSeries(gap), /slot 2 \(2026-03-03T03:00:00\.000Z.*gap of 60 minutes after slot 1/);
    const overlap = [slots[0], { ...slots[1], start: slots[1].start - 15 * 60_000, end: slots[1].end - 15 * 60_000 }];
    assert.throws(() => checkSeries(overlap), /slot 1 .* overlaps slot 0/);
    assert.throws(() => checkSeries([{ start: T0, end: T0 + 20 * 60_000, price: 1 }]), /slot 0 .* lasts 20 minutes/);
  });

  it('layers dynamic prices over time-of-use over a fixed price', () => {
    const tariff = new Tariff({
      currency: 'EUR',
      fixed: 0.3,
      timeOfUse: [{ from: '22:00', to: '06:00', price: 0.2 }],
      series: hourly([0.05, 0.06]),
      feedIn: 0.08,
    });
    assert.equal(tariff.priceAt(T0 + 30 * 60_000), 0.05);
    assert.equal(tariff.priceAt(T0 + 3 * HOUR), 0.2);
    assert.equal(tariff.priceAt(T0 + 12 * HOUR), 0.3);
    const slots = tariff.slotsBetween(T0 + HOUR + 30 * 60_000, T0 + 2 * HOUR + 30 * 60_000);
    assert.deepEqual(
      slots.map((s) => [s.end - s.start, s.price]),
      [
        [30 * 60_000, 0.06],
        [15 * 60_000, 0.2],
        [15 * 60_000, 0.2],
      ],
    );
  });
});
