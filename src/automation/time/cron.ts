import { atWallTime, processTimeZone, startOfDay, wallTime } from '../../core/wall-time.ts';

const DAY = 86_400_000;
const HOUR = 3_600_000;
const MINUTE = 60_000;

/**
 * Five-field cron (`minute hour day-of-month month day-of-week`) on the household's clocks, with
 * `*`, lists, ranges, steps and names (`jan`, `mon`). As in Vixie cron, when both day fields are
 * restricted a day matches if either does.
 */
export interface CronSchedule {
  minutes: Set<number>;
  hours: Set<number>;
  days: Set<number>;
  months: Set<number>;
  weekdays: Set<number>;
  dayRestricted: boolean;
  weekdayRestricted: boolean;
}

const FIELDS = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day of month', min: 1, max: 31 },
  {
    name: 'month',
    min: 1,
    max: 12,
    names: ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'],
  },
  { name: 'day of week', min: 0, max: 7, names: ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] },
] as const;

/** Parses a pattern, or returns an error naming the field that is wrong. */
export function parseCron(pattern: string): CronSchedule | string {
  const parts = pattern.trim().split(/\s+/);
  if (parts.length !== 5) return `needs 5 fields (minute hour day month weekday), got ${parts.length}`;
  const sets: Set<number>[] = [];
  for (const [i, field] of FIELDS.entries()) {
    const set = new Set<number>();
    for (const item of parts[i].split(',')) {
      const match = /^(\*|[a-z0-9]+(?:-[a-z0-9]+)?)(?:\/(\d+))?$/i.exec(item);
      if (!match) return `${field.name} field ${JSON.stringify(parts[i])} is not valid`;
      const step = match[2] === undefined ? 1 : Number(match[2]);
      if (step < 1) return `${field.name} step must be at least 1`;
      let lo: number = field.min;
      let hi: number = field.max;
      if (match[1] !== '*') {
        const [a, b] = match[1].split('-');
        const from = value(a, field);
        const to = b === undefined ? (match[2] === undefined ? from : field.max) : value(b, field);
        if (from === null || to === null || from > to)
          return `${field.name} field ${JSON.stringify(parts[i])} is out of range ${field.min}-${field.max}`;
        lo = from;
        hi = to;
      }
      for (let n = lo; n <= hi; n += step) set.add(i === 4 && n === 7 ? 0 : n);
    }
    sets.push(set);
  }
  return {
    minutes: sets[0],
    hours: sets[1],
    days: sets[2],
    months: sets[3],
    weekdays: sets[4],
    dayRestricted: parts[2] !== '*',
    weekdayRestricted: parts[4] !== '*',
  };
}

function value(text: string, field: (typeof FIELDS)[number]): number | null {
  const names: readonly string[] | undefined = 'names' in field ? field.names : undefined;
  const named = names?.indexOf(text.toLowerCase()) ?? -1;
  const n = named >= 0 ? named + (field.min === 1 ? 1 : 0) : /^\d+$/.test(text) ? Number(text) : Number.NaN;
  return Number.isInteger(n) && n >= field.min && n <= field.max ? n : null;
}

/**
 * The first moment strictly after `after` that the schedule matches on the clocks of `timeZone`
 * (the household's), searching up to 5 years.
 *
 * On the nights the clocks change, a cron job does what a `time` trigger's `at:` does, so that one
 * rule holds for both: a daily job must not silently skip the night the clocks go forward, nor
 * run twice the night they go back. A wall time the jump skips (02:30 in Berlin on the last
 * Sunday of March) comes as late as the jump (03:30), as Vixie cron catches up a job whose time
 * was skipped; a wall time the night repeats comes in its first pass only, unless the pattern
 * runs every hour (`*` or every hour listed), which then runs in every real hour, both passes
 * included, as Vixie cron runs its wildcard jobs.
 */
export function nextCron(schedule: CronSchedule, after: number, timeZone = processTimeZone()): number {
  const { hours, minutes } = inOrder(schedule);
  const everyHour = schedule.hours.size === 24;
  const lastMinute = minutes[minutes.length - 1];
  const today = startOfDay(wallTime(after, timeZone));
  // Day by day on the household's calendar: wall days are whole days, so stepping skips none.
  for (let day = 0; day <= 5 * 366; day++) {
    const midnight = today + day * DAY;
    const date = new Date(midnight);
    if (!schedule.months.has(date.getUTCMonth() + 1) || !dayMatches(schedule, date)) continue;
    // Most days have no clock change from the day before to the day after: their times are
    // arithmetic. On the others a skipped wall time comes as late as the jump, a repeated one in
    // its first pass (see atWallTime).
    const offset = wallTime(midnight - DAY, timeZone) - (midnight - DAY);
    const plain = offset === wallTime(midnight + 2 * DAY, timeZone) - (midnight + 2 * DAY);
    const at = plain
      ? (hour: number, minute: number) => midnight + hour * HOUR + minute * MINUTE - offset
      : (hour: number, minute: number) => atWallTime(midnight + hour * HOUR + minute * MINUTE, timeZone, 'shift');
    let best = Number.POSITIVE_INFINITY;
    for (const hour of hours) {
      // An hour all of whose minutes are past is passed over whole: a one-minute cron asks often.
      if (at(hour, lastMinute) + (everyHour && !plain ? HOUR : 0) <= after) continue;
      for (const minute of minutes) {
        const first = at(hour, minute);
        const second = first + HOUR;
        // The second pass of a repeated hour: the clocks read the same then as an hour before.
        if (
          everyHour &&
          !plain &&
          second > after &&
          second < best &&
          wallTime(first, timeZone) === wallTime(second, timeZone)
        )
          best = second;
        // Later minutes and hours only come later than this one, in either pass.
        if (first > after) return Math.min(best, first);
      }
    }
    if (best < Number.POSITIVE_INFINITY) return best;
  }
  return Number.POSITIVE_INFINITY;
}

/** A schedule's hours and minutes in order, sorted once: a one-minute cron asks for its next often. */
const sorted = new WeakMap<CronSchedule, { hours: number[]; minutes: number[] }>();

function inOrder(schedule: CronSchedule): { hours: number[]; minutes: number[] } {
  let found = sorted.get(schedule);
  if (!found) {
    const ascending = (set: Set<number>) => [...set].sort((a, b) => a - b);
    found = { hours: ascending(schedule.hours), minutes: ascending(schedule.minutes) };
    sorted.set(schedule, found);
  }
  return found;
}

/** Whether a wall date (see wallTime) is one of the schedule's days. */
function dayMatches(schedule: CronSchedule, d: Date): boolean {
  const day = schedule.days.has(d.getUTCDate());
  const weekday = schedule.weekdays.has(d.getUTCDay());
  if (schedule.dayRestricted && schedule.weekdayRestricted) return day || weekday;
  return day && weekday;
}
