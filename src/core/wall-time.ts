/**
 * The household's time zone, and what its clocks read. Automations ("at 07:00", weekdays, time
 * conditions), charge plans ("by 07:00") and the session answer all take the household's time
 * zone from here, so they agree on what 07:00 is.
 *
 * A wall time is what the clocks of a zone read, written as if it were UTC, epoch ms: whole days
 * and times of day are then plain arithmetic on it (`Math.floor(wall / DAY)`, `getUTCHours()`).
 */

const DAY = 86_400_000;
const MINUTE = 60_000;

/** The zone the hub process runs in, by the TZ it was given, cached till TZ changes. */
let processZone: { tz: string | undefined; zone: string } | null = null;

/**
 * The hub process's own time zone (its TZ, UTC without one). Read again when TZ changes, as the
 * process's own Date does; a TZ Intl does not know ("" or a typo) is UTC, as it is to Date.
 */
export function processTimeZone(): string {
  const tz = process.env.TZ;
  if (processZone === null || processZone.tz !== tz) {
    const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    processZone = { tz, zone: knownZone(zone) ? zone : 'UTC' };
  }
  return processZone.zone;
}

function knownZone(zone: string | undefined): zone is string {
  if (!zone) return false;
  try {
    formatFor(zone);
    return true;
  } catch {
    return false;
  }
}

/**
 * The household's time zone: its tariff's `timeZone` when it has one, else the hub process's own.
 * One answer for automations, charge plans and the session: a hub run with TZ=Europe/Berlin and
 * no tariff zone keeps its rules on Berlin's clocks, and its plans agree with them.
 */
export function householdTimeZone(tariffZone: unknown): string {
  return typeof tariffZone === 'string' && tariffZone !== '' ? tariffZone : processTimeZone();
}

/** The thing that carries a household's site settings, plans and live figures, one in each household. */
export const SITE_THING = 'site';

/** The tariff's time zone as the energy service keeps it on the household's `site` thing, if any. */
export function siteTariffZone(site: { meta?: Record<string, unknown> } | undefined): string | null {
  const energy = site?.meta?.energy as { tariff?: { timeZone?: unknown } } | undefined;
  const zone = energy?.tariff?.timeZone;
  return typeof zone === 'string' && zone !== '' ? zone : null;
}

/** One formatter per zone: building one costs far more than using it. */
const formats = new Map<string, Intl.DateTimeFormat>();

function formatFor(timeZone: string): Intl.DateTimeFormat {
  let format = formats.get(timeZone);
  if (!format) {
    format = new Intl.DateTimeFormat('en-US', {
      timeZone,
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
      hourCycle: 'h23',
    });
    formats.set(timeZone, format);
  }
  return format;
}

/**
 * The offset last worked out per zone, for its minute: a rule's time condition or `hour()` asks
 * for the wall time at every run, and runs come many to a minute. Zones change offset only on a
 * whole minute, so one minute's offset holds for all of it.
 */
const lastOffset = new Map<string, { minute: number; offset: number }>();

/** What the clocks of `timeZone` read at a moment, as a wall time (see the top of this file). */
export function wallTime(ms: number, timeZone: string): number {
  const minute = Math.floor(ms / MINUTE);
  const known = lastOffset.get(timeZone);
  if (known?.minute === minute) return ms + known.offset;
  const parts = formatFor(timeZone).formatToParts(new Date(minute * MINUTE));
  let year = 0;
  let month = 0;
  let day = 0;
  let hour = 0;
  let min = 0;
  let second = 0;
  for (const part of parts) {
    if (part.type === 'year') year = Number(part.value);
    else if (part.type === 'month') month = Number(part.value);
    else if (part.type === 'day') day = Number(part.value);
    else if (part.type === 'hour') hour = Number(part.value);
    else if (part.type === 'minute') min = Number(part.value);
    else if (part.type === 'second') second = Number(part.value);
  }
  // Offsets are whole seconds (whole minutes since the 1970s): milliseconds carry over as they are.
  const offset = Date.UTC(year, month - 1, day, hour, min, second) - minute * MINUTE;
  lastOffset.set(timeZone, { minute, offset });
  return ms + offset;
}

/** The wall time of the start of the day a wall time is in. */
export function startOfDay(wall: number): number {
  return Math.floor(wall / DAY) * DAY;
}

/** The ISO weekday (1 = Monday … 7 = Sunday) of a wall time. */
export function isoWeekdayOfWall(wall: number): number {
  const day = new Date(wall).getUTCDay();
  return day === 0 ? 7 : day;
}

/**
 * What to do with a wall time the clocks skip (the hour jumped when they go forward):
 * - `jump`: the moment of the jump, the first at or after it (a car ready "by 02:30" that night
 *   is ready by the jump from 02:00 to 03:00, not an hour after it);
 * - `shift`: as late as the jump is long (02:30 comes at 03:30), as cron catches up a job whose
 *   time was skipped, and as the process's own Date did for automations.
 */
export type SkippedWallTime = 'jump' | 'shift';

/**
 * The moment the clocks of `timeZone` read `wall`. Where they read it twice (the hour repeated
 * when the clocks go back), the first. Where they never read it, as `skipped` says.
 */
export function atWallTime(wall: number, timeZone: string, skipped: SkippedWallTime = 'jump'): number {
  // The offsets a day either side: real zones change theirs at most once in two days.
  const before = wallTime(wall - DAY, timeZone) - (wall - DAY);
  const after = wallTime(wall + DAY, timeZone) - (wall + DAY);
  if (before === after) return wall - before;
  const readings = [wall - before, wall - after].filter((at) => wallTime(at, timeZone) === wall);
  if (readings.length > 0) return Math.min(...readings);
  if (skipped === 'shift') return wall - before;
  // Skipped: the clocks read less than `wall` at `early` and more at `late`; find the jump between.
  let early = Math.min(wall - before, wall - after);
  let late = Math.max(wall - before, wall - after);
  if (wallTime(early, timeZone) >= wall || wallTime(late, timeZone) < wall) return wall - before;
  while (late - early > 1) {
    const middle = Math.floor((early + late) / 2);
    if (wallTime(middle, timeZone) >= wall) late = middle;
    else early = middle;
  }
  return late;
}

/** The clocks of `timeZone` at a moment as `HH:MM:SS`, for traces. */
export function wallClockTime(ms: number, timeZone: string): string {
  return new Date(wallTime(ms, timeZone)).toISOString().slice(11, 19);
}
