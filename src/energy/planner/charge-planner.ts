import type { PriceSlot } from '../tariff/price-series.ts';
import { FlowNetwork } from './min-cost-flow.ts';

/**
 * The charge planner: given what each car needs by when, the priced slots ahead and the power the
 * site can give its chargers, it picks the cheapest (or greenest) energy that meets every need.
 * It is a pure function of its input, so it can be re-run whenever a price, a state of charge or
 * a plug changes, and tested against a brute-force optimum.
 */

/** One car's need at one charge point. */
export interface ChargeNeed {
  id: string;
  /** Energy the charger has to deliver (losses already added), kWh. */
  energyKwh: number;
  /** The most the charger (and car) can draw, kW. */
  maxPowerKw: number;
  /** When the energy must be in, epoch ms. */
  by: number;
}

export interface PlanningInput {
  now: number;
  /** Priced slots from `now` on. */
  slots: PriceSlot[];
  /**
   * Whether the stretches up to a deadline that no slot prices may be planned (at an unknown
   * price), only once every priced slot that can help is full: a car left empty because the
   * day-ahead prices end before its deadline is worse than one charged at a price not yet known.
   * Off by default: the planner then plans only the slots it is given.
   */
  chargeUnpriced?: boolean;
  /** Power all chargers together may draw: the fuse less what the house keeps, kW. */
  siteLimitKw: number;
  needs: ChargeNeed[];
  /** What to minimise: money (default) or grid CO₂ where slots carry it. */
  objective?: 'cost' | 'co2';
}

export interface PlannedSlot {
  start: number;
  end: number;
  powerKw: number;
  energyKwh: number;
  /** 0 where the price is not known (`priced` false). */
  cost: number;
  priced: boolean;
}

export interface ChargePlan {
  id: string;
  slots: PlannedSlot[];
  /** Energy planned, kWh (equal to the need when feasible). */
  energyKwh: number;
  /** What the priced energy costs; energy at unknown prices (`unpricedKwh`) is not in it. */
  cost: number;
  /** Energy planned at times without a known price, kWh. */
  unpricedKwh: number;
  feasible: boolean;
  /** What cannot be delivered by the deadline, kWh; 0 when feasible. */
  shortfallKwh: number;
}

/** Below a watt-hour, a difference is rounding, not energy. */
const TOLERANCE_KWH = 1e-6;
const HOUR = 3_600_000;
const QUARTER = 15 * 60_000;

/** A slot the planner may fill: a priced one, or a stretch no price covers (`priced` false). */
interface Candidate extends PriceSlot {
  priced: boolean;
}

/** Plans every need together, so chargers sharing the site's limit do not each assume all of it. */
export function planCharging(input: PlanningInput): ChargePlan[] {
  const slots = input.slots
    .filter((s) => s.end > input.now)
    .map((s) => ({ ...s, start: Math.max(s.start, input.now) }));
  const known = (slot: PriceSlot) => (input.objective === 'co2' ? (slot.co2 ?? Number.POSITIVE_INFINITY) : slot.price);
  const priced: Candidate[] = slots.filter((s) => Number.isFinite(known(s))).map((s) => ({ ...s, priced: true }));
  const horizon = Math.max(input.now, ...input.needs.map((n) => n.by));
  const usable = input.chargeUnpriced
    ? [...priced, ...unpricedStretches(slots, input.now, horizon)].sort((a, b) => a.start - b.start)
    : priced;
  // A time without a price ranks after every priced one. In the joint plan a cycle of swaps
  // passes each car at most once, so a rank above the dearest price by more than that many
  // price spreads keeps every kWh that can go to a priced slot there.
  const weights = priced.map(known);
  const dearest = weights.length ? Math.max(...weights) : 0;
  const spread = weights.length ? dearest - Math.min(...weights) : 0;
  const unknownRank = dearest + (input.needs.length + 1) * (spread + 1);
  const weight = (slot: Candidate) => (slot.priced ? known(slot) : unknownRank);
  const siteCap = usable.map((s) => (Math.max(0, input.siteLimitKw) * (s.end - s.start)) / HOUR);
  const needCap = (need: ChargeNeed, s: PriceSlot) =>
    (Math.max(0, need.maxPowerKw) * Math.max(0, Math.min(s.end, need.by) - s.start)) / HOUR;

  const allocation: number[][] =
    input.needs.length === 1
      ? [cheapestFirst(input.needs[0], usable, siteCap, needCap, weight)]
      : jointly(input.needs, usable, siteCap, needCap, weight);

  return input.needs.map((need, i) => {
    const planned: PlannedSlot[] = [];
    let energy = 0;
    let cost = 0;
    let unpriced = 0;
    usable.forEach((slot, s) => {
      const kwh = allocation[i][s];
      if (kwh <= TOLERANCE_KWH) return;
      energy += kwh;
      if (slot.priced) cost += kwh * slot.price;
      else unpriced += kwh;
      planned.push({
        start: slot.start,
        end: slot.end,
        powerKw: kwh / ((slot.end - slot.start) / HOUR),
        energyKwh: kwh,
        cost: slot.priced ? kwh * slot.price : 0,
        priced: slot.priced,
      });
    });
    const shortfall = Math.max(0, Math.max(0, need.energyKwh) - energy);
    return {
      id: need.id,
      slots: planned,
      energyKwh: energy,
      cost,
      unpricedKwh: unpriced,
      feasible: shortfall <= TOLERANCE_KWH,
      shortfallKwh: shortfall <= TOLERANCE_KWH ? 0 : shortfall,
    };
  });
}

/**
 * The stretches of [from, to) that no slot covers, cut at quarter hours (the steps a plan's power
 * changes at, as with priced quarter hours).
 */
function unpricedStretches(slots: PriceSlot[], from: number, to: number): Candidate[] {
  const out: Candidate[] = [];
  const fill = (start: number, end: number) => {
    for (let t = start; t < end; ) {
      const next = Math.min(end, Math.floor(t / QUARTER) * QUARTER + QUARTER);
      out.push({ start: t, end: next, price: 0, priced: false });
      t = next;
    }
  };
  let t = from;
  for (const slot of [...slots].sort((a, b) => a.start - b.start)) {
    if (t >= to) break;
    if (slot.end <= t) continue;
    if (slot.start > t) fill(t, Math.min(slot.start, to));
    t = Math.max(t, slot.end);
  }
  fill(t, to);
  return out;
}

/** One charger: fill the cheapest slots first (exact for one need: a fractional knapsack). */
function cheapestFirst(
  need: ChargeNeed,
  slots: Candidate[],
  siteCap: number[],
  needCap: (need: ChargeNeed, s: PriceSlot) => number,
  weight: (s: Candidate) => number,
): number[] {
  const amounts = new Array<number>(slots.length).fill(0);
  // Ties go to the earlier slot: the car is fuller sooner if plans change.
  const order = slots.map((_, i) => i).sort((a, b) => weight(slots[a]) - weight(slots[b]) || a - b);
  let left = Math.max(0, need.energyKwh);
  for (const s of order) {
    if (left <= TOLERANCE_KWH) break;
    const take = Math.min(left, siteCap[s], needCap(need, slots[s]));
    if (take <= 0) continue;
    amounts[s] = take;
    left -= take;
  }
  return amounts;
}

/** Several chargers: min-cost flow car → slot → site connection. */
function jointly(
  needs: ChargeNeed[],
  slots: Candidate[],
  siteCap: number[],
  needCap: (need: ChargeNeed, s: PriceSlot) => number,
  weight: (s: Candidate) => number,
): number[][] {
  const k = needs.length;
  const source = 0;
  const sink = k + slots.length + 1;
  const network = new FlowNetwork(sink + 1);
  const edges: Array<Array<number>> = needs.map(() => new Array<number>(slots.length).fill(-1));
  needs.forEach((need, i) => {
    network.addEdge(source, 1 + i, Math.max(0, need.energyKwh), 0);
    slots.forEach((slot, s) => {
      const cap = needCap(need, slot);
      // A tiny cost for lateness breaks ties towards earlier slots without changing the optimum's cost.
      if (cap > 0) edges[i][s] = network.addEdge(1 + i, 1 + k + s, cap, weight(slot) + s * 1e-12);
    });
  });
  slots.forEach((_, s) => {
    network.addEdge(1 + k + s, sink, siteCap[s], 0);
  });
  const order = Array.from({ length: sink + 1 }, (_, i) => i);
  network.solve(source, sink, order);
  return edges.map((row) => row.map((e) => (e < 0 ? 0 : network.flowOn(e))));
}

/**
 * Energy a charger must deliver to take a battery from one state of charge to another: the
 * battery's share divided by the charging efficiency (the charger's meter sees the losses).
 */
export function energyForSoc(input: {
  fromSoc: number;
  targetSoc: number;
  capacityKwh: number;
  efficiency: number;
}): number {
  const battery = (Math.max(0, input.targetSoc - input.fromSoc) / 100) * input.capacityKwh;
  return battery / Math.min(1, Math.max(0.01, input.efficiency));
}
