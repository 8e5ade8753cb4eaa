/**
 * The charge planner's benchmark: run time for a week of 15-minute slots with several charge
 * points sharing the site's limit, and the cost of its plans as a ratio to the true optimum,
 * computed by an exhaustive dynamic programme over whole-kWh schedules on small cases.
 * `node --import tsx bench/planner.ts [--quick]`
 */
import { performance } from 'node:perf_hooks';
import { type ChargeNeed, type PriceSlot, planCharging } from '../src/energy/index.ts';

const QUARTER = 15 * 60_000;
const HOUR = 4 * QUARTER;
const T0 = Date.UTC(2026, 0, 5);

export interface PlannerFigures {
  week: { slots: number; chargers: number; runs: number; medianMs: number; maxMs: number };
  optimality: { cases: number; meanRatio: number; worstRatio: number };
}

/** A deterministic pseudo-random sequence, so runs compare. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** Day-ahead-like prices: a daily curve with morning and evening peaks, plus noise. */
function weekOfPrices(rand: () => number): PriceSlot[] {
  return Array.from({ length: 7 * 96 }, (_, i) => {
    const hour = (i % 96) / 4;
    const curve = 0.2 + 0.08 * Math.sin(((hour - 6) / 24) * 2 * Math.PI) + (hour > 17 && hour < 21 ? 0.1 : 0);
    return {
      start: T0 + i * QUARTER,
      end: T0 + (i + 1) * QUARTER,
      price: Math.round((curve + rand() * 0.05) * 1e4) / 1e4,
    };
  });
}

/** The exact optimum for one or two chargers on hourly slots with whole-kWh figures. */
function exactCost(prices: number[], needs: ChargeNeed[], limitKw: number): number {
  const other = needs[1] ?? { id: '-', energyKwh: 0, maxPowerKw: 0, by: T0 };
  const cap = (need: ChargeNeed, s: number) => (T0 + (s + 1) * HOUR <= need.by ? need.maxPowerKw : 0);
  let best = new Map<number, number>([[0, 0]]);
  const key = (a: number, b: number) => a * 1000 + b;
  prices.forEach((price, s) => {
    const next = new Map<number, number>();
    for (const [k, cost] of best) {
      const a = Math.floor(k / 1000);
      const b = k % 1000;
      for (let x = 0; x <= Math.min(cap(needs[0], s), needs[0].energyKwh - a); x++) {
        for (let y = 0; y <= Math.min(cap(other, s), other.energyKwh - b, limitKw - x); y++) {
          const c = cost + (x + y) * price;
          const nk = key(a + x, b + y);
          if (!next.has(nk) || c < next.get(nk)!) next.set(nk, c);
        }
      }
    }
    best = next;
  });
  return best.get(key(needs[0].energyKwh, other.energyKwh)) ?? Number.NaN;
}

export async function plannerBenchmark({ quick = false }: { quick?: boolean } = {}): Promise<PlannerFigures> {
  const rand = random(42);
  const chargers = 4;
  const runs = quick ? 3 : 10;
  const times: number[] = [];
  for (let r = 0; r < runs; r++) {
    const slots = weekOfPrices(rand);
    // Four cars, each needing 20–60 kWh by a morning later in the week, on an 11 kW fuse.
    const needs: ChargeNeed[] = Array.from({ length: chargers }, (_, i) => ({
      id: `cp${i}`,
      energyKwh: 20 + Math.round(rand() * 40),
      maxPowerKw: 11,
      by: T0 + (2 + i) * 24 * HOUR + 7 * HOUR,
    }));
    const started = performance.now();
    planCharging({ now: T0, slots, siteLimitKw: 11, needs });
    times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);

  const cases = quick ? 100 : 500;
  let sum = 0;
  let worst = 1;
  let counted = 0;
  for (let c = 0; c < cases; c++) {
    const hours = 3 + Math.floor(rand() * 6);
    const prices = Array.from({ length: hours }, () => 1 + Math.floor(rand() * 40));
    const limitKw = 2 + Math.floor(rand() * 5);
    const needs: ChargeNeed[] = Array.from({ length: 1 + Math.floor(rand() * 2) }, (_, i) => ({
      id: `n${i}`,
      energyKwh: Math.floor(rand() * 8),
      maxPowerKw: 1 + Math.floor(rand() * 4),
      by: T0 + (1 + Math.floor(rand() * hours)) * HOUR,
    }));
    const plans = planCharging({
      now: T0,
      slots: prices.map((p, i) => ({ start: T0 + i * HOUR, end: T0 + (i + 1) * HOUR, price: p })),
      siteLimitKw: limitKw,
      needs,
    });
    if (!plans.every((p) => p.feasible)) continue;
    const optimum = exactCost(prices, needs, limitKw);
    const cost = plans.reduce((s, p) => s + p.cost, 0);
    if (!(optimum > 0)) continue;
    const ratio = cost / optimum;
    sum += ratio;
    worst = Math.max(worst, ratio);
    counted++;
  }
  return {
    week: { slots: 7 * 96, chargers, runs, medianMs: times[times.length >> 1], maxMs: times[times.length - 1] },
    optimality: { cases: counted, meanRatio: counted ? sum / counted : Number.NaN, worstRatio: worst },
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const figures = await plannerBenchmark({ quick: process.argv.includes('--quick') });
  console.log(
    `planner: a week of ${figures.week.slots} quarter hours, ${figures.week.chargers} charge points on one fuse: median ${figures.week.medianMs.toFixed(1)} ms, max ${figures.week.maxMs.toFixed(1)} ms over ${figures.week.runs} runs`,
  );
  console.log(
    `planner cost / exact optimum over ${figures.optimality.cases} small feasible cases: mean ${figures.optimality.meanRatio.toFixed(6)}, worst ${figures.optimality.worstRatio.toFixed(6)}`,
  );
}
