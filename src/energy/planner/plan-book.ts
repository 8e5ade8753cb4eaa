import { badRequest } from '../../core/errors.ts';
import { parseIsoTime } from '../../core/iso-time.ts';
import { atWallTime, isoWeekdayOfWall, startOfDay, wallTime } from '../../core/wall-time.ts';
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
  /**
   * A weekly plan's time of day on the household's clocks, ms after midnight (see timeOfDayOf).
   * Plans stored before it was kept take their deadline's.
   */
  timeOfDay?: number;
  /** Energy delivered towards an `energyKwh` plan so far. */
  deliveredKwh?: number;
}

export interface PlanView {
  vehicle: string;
  charger: string;
  by: string;
  targetSoc: number | null;
  repeat: number[] | null;
  /** `priced` is false for a slot at a time no price covers; its cost counts as 0. */
  slots: Array<{ start: string; end: string; powerKw: number; energyKwh: number; cost: number; priced: boolean }>;
  energyKwh: number;
  /** What the plan needs the charger to deliver (losses included). */
  neededKwh: number;
  /** The cost of the priced energy; `unpricedKwh` is planned at prices not known yet. */
  cost: number;
  unpricedKwh: number;
  currency: string | null;
  feasible: boolean;
  /** Why the plan cannot be met, in words; null when it can. */
  reason: string | null;
  shortfallKwh: number;
  /** The shortfall as battery percent, for target-SoC plans. */
  shortfallSoc: number | null;
  plannedAt: string;
}

const DAY = 86_400_000;
const HOUR = 3_600_000;
const MINUTE = 60_000;

/** A time of day, `07:30` or `7:30`. */
const TIME_OF_DAY = /^(\d{1,2}):(\d{2})$/;

/**
 * A plan's deadline as the API and the charger's `plan` action take it (both the same, so an
 * automation's "07:30" means what the API's does): an ISO 8601 date and time with its zone, or a
 * time of day, the next one to come in the household's time zone. One message for anything else.
 */
export function parseBy(by: unknown, now: number, timeZone = 'UTC'): number {
  if (typeof by === 'number' && Number.isFinite(by)) return by;
  const text = typeof by === 'string' ? by.trim() : '';
  const at = parseIsoTime(text);
  if (at !== null) return at;
  const clock = TIME_OF_DAY.exec(text);
  if (clock && Number(clock[1]) <= 23 && Number(clock[2]) <= 59) {
    return nextTimeOfDay(Number(clock[1]), Number(clock[2]), now, timeZone);
  }
  throw badRequest(
    `by must be an ISO 8601 date and time with its zone (such as 2026-06-11T07:30:00Z) or a time of day HH:MM (such as 07:30), not ${JSON.stringify(by)}`,
  );
}

/** The next hours:minutes on the wall clocks of `timeZone` after `now`, epoch ms. */
export function nextTimeOfDay(hours: number, minutes: number, now: number, timeZone: string): number {
  const today = startOfDay(wallTime(now, timeZone));
  for (let day = 0; day < 3; day++) {
    const at = atWallTime(today + day * DAY + hours * HOUR + minutes * MINUTE, timeZone);
    if (at > now) return at;
  }
  return now + DAY;
}

/** A moment as a user reads it: `07:30 UTC` today, with the date when further off. */
export function wallClock(ms: number, now: number, timeZone = 'UTC'): string {
  const format = (at: number, options: Intl.DateTimeFormatOptions) =>
    new Intl.DateTimeFormat('en-CA', { timeZone, ...options }).format(new Date(at));
  const dateOf = (at: number) => format(at, { year: 'numeric', month: '2-digit', day: '2-digit' });
  const date = dateOf(ms) === dateOf(now) ? '' : `${dateOf(ms)} `;
  return `${date}${format(ms, { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' })} ${timeZone}`;
}

/**
 * Why a plan falls short, in words a user can act on: the power there is up to the deadline, or
 * the site's limit leaving nothing for charging.
 */
export function shortfallReason(input: {
  neededKwh: number;
  plannedKwh: number;
  now: number;
  by: number;
  chargerKw: number;
  siteKw: number;
  /** Other plans sharing the site's limit. */
  others: number;
  timeZone?: string;
}): string {
  const r = (n: number) => Math.round(n * 10) / 10;
  const deadline = wallClock(input.by, input.now, input.timeZone);
  const needs = `the car needs ${r(input.neededKwh)} kWh by ${deadline}`;
  if (input.siteKw <= 0) return `the site's limit leaves no power for charging; ${needs}`;
  const hours = Math.max(0, input.by - input.now) / HOUR;
  const powerKw = Math.min(input.chargerKw, input.siteKw);
  const alone = powerKw * hours;
  const bound = input.chargerKw <= input.siteKw ? 'the charger' : "the site's limit";
  if (alone + 1e-6 < input.neededKwh) {
    return `${needs}, but ${r(hours)} h at ${r(powerKw)} kW (${bound}) give at most ${r(alone)} kWh`;
  }
  return `${needs}, but with the site's ${r(input.siteKw)} kW shared with ${input.others} other plan${input.others === 1 ? '' : 's'}, ${r(input.plannedKwh)} kWh fit`;
}

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

/**
 * The local time of day, ms after the household's midnight, a weekly plan is due at: the `HH:MM`
 * asked for, else that of its first deadline. Kept with the plan, since a deadline moved out of
 * the hour the clocks skip (see atWallTime) no longer shows the time the user chose.
 */
export function timeOfDayOf(asked: unknown, by: number, timeZone = 'UTC'): number {
  const clock = typeof asked === 'string' ? TIME_OF_DAY.exec(asked.trim()) : null;
  if (clock) return Number(clock[1]) * HOUR + Number(clock[2]) * MINUTE;
  const wall = wallTime(by, timeZone);
  return wall - startOfDay(wall);
}

/**
 * The next deadline of a weekly plan after `now` (and not before `by`): the same time of day on the
 * household's clocks, on the next of its ISO weekdays (1 = Monday) as the household's calendar has
 * them. Whole 24-hour steps would judge the weekday in UTC and keep the UTC time of day, shifting the
 * deadline an hour each time the clocks change.
 */
export function nextOccurrence(
  by: number,
  days: number[],
  now: number,
  timeZone = 'UTC',
  timeOfDay = timeOfDayOf(undefined, by, timeZone),
): number {
  if (by > now && days.includes(isoWeekdayOfWall(startOfDay(wallTime(by, timeZone))))) return by;
  // From the day before today rather than from `by`: a hub stopped for months would otherwise step
  // through each day since. The day before too, so no change of offset can make a deadline skipped.
  let day = Math.max(startOfDay(wallTime(by, timeZone)), startOfDay(wallTime(now, timeZone)) - DAY);
  for (let i = 0; i < 9; i++, day += DAY) {
    if (!days.includes(isoWeekdayOfWall(day))) continue;
    const at = atWallTime(day + timeOfDay, timeZone);
    if (at > now && at >= by) return at;
  }
  throw new RangeError(`a weekly plan needs ISO weekdays, 1 (Monday) to 7 (Sunday), not ${JSON.stringify(days)}`);
}

export function planView(
  request: PlanRequest,
  plan: ChargePlan,
  extra: {
    neededKwh: number;
    capacityKwh: number | null;
    efficiency: number;
    currency: string | null;
    now: number;
    /** Why the plan cannot be met (see shortfallReason), null when it can. */
    reason: string | null;
  },
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
      priced: s.priced,
    })),
    energyKwh: r(plan.energyKwh, 6),
    neededKwh: r(extra.neededKwh, 6),
    cost: r(plan.cost, 6),
    unpricedKwh: r(plan.unpricedKwh, 6),
    currency: extra.currency,
    feasible: plan.feasible && extra.reason === null,
    reason: extra.reason,
    shortfallKwh: r(plan.shortfallKwh, 6),
    shortfallSoc,
    plannedAt: new Date(extra.now).toISOString(),
  };
}
