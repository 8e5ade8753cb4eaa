/**
 * Five-field cron (`minute hour day-of-month month day-of-week`) in the hub's local time, with
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

/** The first minute strictly after `after` that the schedule matches (searches up to 5 years). */
export function nextCron(schedule: CronSchedule, after: number): number {
  // The minute `after` is in, by arithmetic: a local setter would take a repeated hour's first pass.
  const d = new Date(Math.floor(after / 60_000) * 60_000);
  forward(d, () => d.setMinutes(d.getMinutes() + 1));
  const limit = after + 5 * 366 * 86_400_000;
  while (d.getTime() <= limit) {
    if (!schedule.months.has(d.getMonth() + 1)) {
      d.setMonth(d.getMonth() + 1, 1);
      d.setHours(0, 0, 0, 0);
      continue;
    }
    if (!dayMatches(schedule, d)) {
      d.setDate(d.getDate() + 1);
      d.setHours(0, 0, 0, 0);
      continue;
    }
    if (!schedule.hours.has(d.getHours())) {
      d.setHours(d.getHours() + 1, 0, 0, 0);
      continue;
    }
    if (!schedule.minutes.has(d.getMinutes())) {
      forward(d, () => d.setMinutes(d.getMinutes() + 1, 0, 0));
      continue;
    }
    return d.getTime();
  }
  return Number.POSITIVE_INFINITY;
}

/**
 * Moves `d` on by a change of its local fields, and never back. In the hour a clock change repeats,
 * a local time names two moments and the Date takes the first: from 02:10 the second time, "the
 * next minute" set as a local minute was 02:11 the first time, an hour earlier, and a scheduler
 * asking again from there fired over and over. Such a step goes on by one real minute instead.
 */
function forward(d: Date, step: () => void): void {
  const before = d.getTime();
  step();
  if (d.getTime() <= before) d.setTime(Math.floor(before / 60_000) * 60_000 + 60_000);
}

function dayMatches(schedule: CronSchedule, d: Date): boolean {
  const day = schedule.days.has(d.getDate());
  const weekday = schedule.weekdays.has(d.getDay());
  if (schedule.dayRestricted && schedule.weekdayRestricted) return day || weekday;
  return day && weekday;
}
