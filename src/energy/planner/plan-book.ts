import { badRequest } from '../../core/errors.ts';
import { type ChargePlan, energyForSoc } from './charge-planner.ts';

/**
 * The plans users (or automations) have set: one per charge point, "this car, this much, by
 * then", optionally repeating every week on chosen days at the same time. The book keeps the
 * requests; the planner turns them into slots each time something changes.
 */
export interface PlanRequest {
  vehicle: string;
  charger: string;
  targetSoc?: number;
  energyKwh?: number;
  by: number;
  /** ISO weekdays (1 = Monday) the plan repeats on, at the same time of day. */
  repeat?: number[];
  /** Energy delivered towards an `energyKwh` plan so far. */
  deliveredKwh?: number;
}

export interface PlanView {
  vehicle: string;
  charger: string;
  by: string;
  targetSoc: number | null;
  repeat: number[] | null;
  slots: Array<{ start: string; end: string; powerKw: number; energyKwh: number; cost: number }>;
  energyKwh: number;
  /** What the plan needs the charger to deliver (losses included). */
  neededKwh: number;
  cost: number;
  currency: string | null;
  feasible: boolean;
  shortfallKwh: number;
  /** The shortfall as battery percent, for target-SoC plans. */
  shortfallSoc: number | null;
  plannedAt: string;
}

const DAY = 86_400_000;

/** The energy a plan still needs from the charger, kWh, given the car as it is now. */
export function remainingNeed(
  request: PlanRequest,
  car: { soc: number | null; capacityKwh: number | null },
  efficiency: number,
): number {
  if (request.energyKwh !== undefined) return Math.max(0, request.energyKwh - (request.deliveredKwh ?? 0));
  if (car.soc === null || car.capacityKwh === null) {
    throw badRequest(
      `vehicle ${request.vehicle} reports no battery.level and battery.capacity, so a target SoC cannot be planned`,
    );
  }
  return energyForSoc({
    fromSoc: car.soc,
    targetSoc: request.targetSoc ?? 0,
    capacityKwh: car.capacityKwh,
    efficiency,
  });
}

/** The next deadline of a weekly plan after `now`, stepping whole days to an allowed weekday (UTC days). */
export function nextOccurrence(by: number, days: number[], now: number): number {
  let next = by;
  for (let i = 0; i < 400 && (next <= now || !days.includes(isoWeekday(next))); i++) next += DAY;
  return next;
}

function isoWeekday(ms: number): number {
  const day = new Date(ms).getUTCDay();
  return day === 0 ? 7 : day;
}

export function planView(
  request: PlanRequest,
  plan: ChargePlan,
  extra: { neededKwh: number; capacityKwh: number | null; efficiency: number; currency: string | null; now: number },
): PlanView {
  const r = (n: number, d = 4) => Math.round(n * 10 ** d) / 10 ** d;
  const shortfallSoc =
    request.targetSoc !== undefined && extra.capacityKwh
      ? r(((plan.shortfallKwh * extra.efficiency) / extra.capacityKwh) * 100, 2)
      : null;
  return {
    vehicle: request.vehicle,
    charger: request.charger,
    by: new Date(request.by).toISOString(),
    targetSoc: request.targetSoc ?? null,
    repeat: request.repeat ?? null,
    slots: plan.slots.map((s) => ({
      start: new Date(s.start).toISOString(),
      end: new Date(s.end).toISOString(),
      powerKw: r(s.powerKw),
      energyKwh: r(s.energyKwh, 6),
      cost: r(s.cost, 6),
    })),
    energyKwh: r(plan.energyKwh, 6),
    neededKwh: r(extra.neededKwh, 6),
    cost: r(plan.cost, 6),
    currency: extra.currency,
    feasible: plan.feasible,
    shortfallKwh: r(plan.shortfallKwh, 6),
    shortfallSoc,
    plannedAt: new Date(extra.now).toISOString(),
  };
}
