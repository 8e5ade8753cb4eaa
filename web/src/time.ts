/** `datetime-local` wants local time without a zone: "2026-11-29T14:05". */
export function localInput(ms: number): string {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60_000);
  return d.toISOString().slice(0, 16);
}

/** Trace times come as epoch milliseconds or ISO text depending on the route; both read the same. */
export function toMs(time: number | string | null | undefined): number | null {
  if (time === null || time === undefined) return null;
  const ms = typeof time === 'number' ? time : Date.parse(time);
  return Number.isFinite(ms) ? ms : null;
}

/**
 * The next time the browser's clock reads `HH:MM` (today, or tomorrow once it has passed), as ISO
 * text. The hub reads a bare time of day on the household's clock (its tariff's zone, UTC when
 * unset), which need not be this browser's; every time on the page is in the browser's (where the
 * household's clocks differ, the charge plan names both), so what is typed is sent as the moment it
 * names here. Null for anything but `HH:MM`.
 */
export function nextLocalTime(hhmm: string, now = Date.now()): string | null {
  const match = /^(\d{2}):(\d{2})$/.exec(hhmm.trim());
  if (!match || Number(match[1]) > 23 || Number(match[2]) > 59) return null;
  const at = new Date(now);
  at.setHours(Number(match[1]), Number(match[2]), 0, 0);
  // A day later on the wall clock, not 24 h later: a change to or from summer time in between.
  if (at.getTime() <= now) at.setDate(at.getDate() + 1);
  return at.toISOString();
}

/** The time zone this browser's clocks are on (IANA). */
export function browserZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone;
}

const HALF_YEAR_MS = 182 * 86_400_000;

/**
 * The household's time zone when its clocks read otherwise than this browser's, now or half a year
 * on (summer time starts on other dates in other places); else null, and a time needs no zone named.
 * Null too for a zone this browser does not know.
 */
export function householdZoneApart(householdZone: string | null, now = Date.now()): string | null {
  if (!householdZone) return null;
  const here = browserZone();
  if (here === householdZone) return null;
  try {
    const reading = (timeZone: string, at: number) =>
      new Intl.DateTimeFormat('en-GB', { timeZone, dateStyle: 'short', timeStyle: 'short' }).format(at);
    const agree = [now, now + HALF_YEAR_MS].every((at) => reading(here, at) === reading(householdZone, at));
    return agree ? null : householdZone;
  } catch {
    return null;
  }
}

/** A moment's time of day on the clocks of `timeZone`: "9:00 PM", as this browser writes times. */
export function clockIn(time: string | number, timeZone: string): string {
  return new Date(time).toLocaleTimeString(undefined, { hour: 'numeric', minute: '2-digit', timeZone });
}
