import assert from 'node:assert/strict';
import { it } from 'node:test';
import fc from 'fast-check';
import { planCharging } from '../src/energy/planner/charge-planner.ts';

/**
 * The planner against a brute force on small cases: hourly slots with whole prices (negative ones
 * too), one to three cars with whole kW and kWh, a shared site limit. With whole numbers the best
 * plan is whole too, so trying every whole allocation finds it: the planner must deliver as much
 * energy as can be delivered and, for that, pay no more than the cheapest way.
 */

const HOUR = 3_600_000;

it('delivers the most energy there is, at the least cost, as a brute force finds', () => {
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: -3, max: 5 }), { minLength: 1, maxLength: 3 }),
      fc.array(
        fc.record({
          kwh: fc.integer({ min: 0, max: 6 }),
          kw: fc.integer({ min: 0, max: 3 }),
          hours: fc.integer({ min: 1, max: 3 }),
        }),
        { minLength: 1, maxLength: 3 },
      ),
      fc.integer({ min: 0, max: 5 }),
      (prices, cars, limit) => {
        const slots = prices.map((price, i) => ({ start: i * HOUR, end: (i + 1) * HOUR, price }));
        const plans = planCharging({
          now: 0,
          slots,
          siteLimitKw: limit,
          needs: cars.map((car, i) => ({
            id: `car${i}`,
            energyKwh: car.kwh,
            maxPowerKw: car.kw,
            by: car.hours * HOUR,
          })),
        });
        let best = { energy: -1, cost: Number.POSITIVE_INFINITY };
        const used = prices.map(() => 0);
        const search = (car: number, slot: number, energy: number, cost: number, given: number) => {
          if (car === cars.length) {
            if (energy > best.energy || (energy === best.energy && cost < best.cost)) best = { energy, cost };
            return;
          }
          if (slot === prices.length) return search(car + 1, 0, energy, cost, 0);
          const cap = slot < cars[car].hours ? cars[car].kw : 0;
          for (let kwh = 0; kwh <= Math.min(cap, limit - used[slot], cars[car].kwh - given); kwh++) {
            used[slot] += kwh;
            search(car, slot + 1, energy + kwh, cost + kwh * prices[slot], given + kwh);
            used[slot] -= kwh;
          }
        };
        search(0, 0, 0, 0, 0);
        const energy = plans.reduce((sum, p) => sum + p.energyKwh, 0);
        const cost = plans.reduce((sum, p) => sum + p.cost, 0);
        assert.ok(Math.abs(energy - best.energy) < 1e-6, `energy ${energy}, best ${best.energy}`);
        assert.ok(Math.abs(cost - best.cost) < 1e-6, `cost ${cost}, best ${best.cost}`);
      },
    ),
    { numRuns: 2000 },
  );
});
