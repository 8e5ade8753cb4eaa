import { atWallTime, isoWeekdayOfWall, processTimeZone, startOfDay, wallTime } from '../../core/wall-time.ts';

/**
 * Durations as people write them in rules: `10m`, `1h30m`, `90s`, `500ms`, `00:10:00`, a number of
 * seconds, or Home Assistant's `{minutes: 10}`. Returns milliseconds, or an error message.
 */
export function parseDuration(value: unknown): number | string {
  if (typeof value === 'number') {
    return Number.isFinite(value) && value >= 0 ? Math.round(value * 1000) : 'must be a non-negative number of seconds';
  }
  if (typeof value === 'string') {
    const text = value.trim();
    const clock = /^(\d{1,3}):([0-5]?\d)(?::([0-5]?\d(?:\.\d+)?))?$/.exec(text);
    if (clock) return Math.round(((Number(clock[1]) * 60 + Number(clock[2])) * 60 + Number(clock[3] ?? 0)) * 1000);
    const unitPattern = /(\d+(?:\.\d+)?)\s*(ms|d|h|m|s)/gy;
    let total = 0;
    let consumed = 0;
    for (let match = unitPattern.exec(text); match; match = unitPattern.exec(text)) {
      total += Number(match[1]) * UNITS[match[2]];
      consumed = unitPattern.lastIndex;
      while (text[consumed] === ' ') consumed++;
      unitPattern.lastIndex = consumed;
    }
    if (consumed === text.length && consumed > 0) return Math.round(total);
    return `must be a duration such as 10m, 1h30m, 45s or 00:10:00, got ${JSON.stringify(value)}`;
  }
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    let total = 0;
    for (const [key, amount] of Object.entries(value)) {
      const unit = OBJECT_UNITS[key];
      if (unit === undefined)
        return `has unknown unit ${JSON.stringify(key)} (use days, hours, minutes, seconds, milliseconds)`;
      if (typeof amount !== 'number' || !Number.isFinite(amount) || amount < 0)
        return `${key} must be a non-negative number`;
      total += amount * unit;
    }
    return Math.round(total);
  }
  return 'must be a duration such as 10m, 1h30m, 45s or 00:10:00';
}

const DAY = 86_400_000;
const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const OBJECT_UNITS: Record<string, number> = {
  days: 86_400_000,
  hours: 3_600_000,
  minutes: 60_000,
  seconds: 1000,
  milliseconds: 1,
};

/** A time of day `HH:MM` or `HH:MM:SS`, as seconds after midnight, or null. */
export function parseTimeOfDay(value: unknown): number | null {
  if (typeof value !== 'string') return null;
  const match = /^([01]?\d|2[0-3]):([0-5]\d)(?::([0-5]\d))?$/.exec(value.trim());
  if (!match) return null;
  return Number(match[1]) * 3600 + Number(match[2]) * 60 + Number(match[3] ?? 0);
}

export const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;

/** ISO weekday (Monday 1 … Sunday 7) of a time, on the clocks of `timeZone` (the household's). */
export function isoWeekday(ms: number, timeZone = processTimeZone()): number {
  return isoWeekdayOfWall(wallTime(ms, timeZone));
}

/** Seconds after midnight on the clocks of `timeZone`. */
export function secondsOfDay(ms: number, timeZone = processTimeZone()): number {
  const wall = wallTime(ms, timeZone);
  return Math.floor((wall - startOfDay(wall)) / 1000);
}

/**
 * The next time the clocks of `timeZone` read `seconds` after midnight, strictly after `after`,
 * on an allowed weekday. A time the clocks skip comes as late as the jump (02:30 at 03:30); one
 * they read twice, its first pass.
 */
export function nextTimeOfDay(
  after: number,
  seconds: number,
  weekdays?: number[],
  timeZone = processTimeZone(),
): number {
  const today = startOfDay(wallTime(after, timeZone));
  for (let day = 0; day <= 8; day++) {
    const midnight = today + day * DAY;
    if (weekdays?.length && !weekdays.includes(isoWeekdayOfWall(midnight))) continue;
    const candidate = atWallTime(midnight + seconds * 1000, timeZone, 'shift');
    if (candidate > after) return candidate;
  }
  return Number.POSITIVE_INFINITY;
}
