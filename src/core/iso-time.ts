/**
 * A point in time as Triad takes it from a person or a script: an ISO 8601 date and time with its
 * zone, `2026-12-24T18:00:00Z`, `2026-12-24T18:00+01:00`, `…T18:00:00.250-05:00`. Date.parse alone
 * is not enough: it takes "December 25, 2026" and "Fri Dec 25 2026", reads `2026-12-24T10:00` in
 * the zone of whatever machine the hub runs on, and rolls 31 February over into 3 March. Each of
 * those would be answered as if it were a different question, so each is refused instead.
 */
const ISO_TIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(?:Z|([+-])(\d{2}):?(\d{2}))$/i;

/** What an ISO time must look like, for error messages. */
export const ISO_TIME_EXAMPLE = '2026-12-24T18:00:00Z or 2026-12-24T19:00:00+01:00';

function daysInMonth(year: number, month: number): number {
  if (month === 2) return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}

/** Epoch ms for a strict ISO 8601 date and time with its zone; null for anything else. */
export function parseIsoTime(text: string): number | null {
  const match = ISO_TIME.exec(text);
  if (!match) return null;
  const [year, month, day, hour, minute] = match.slice(1, 6).map(Number);
  const second = Number(match[6] ?? 0);
  const [offsetHours, offsetMinutes] = [Number(match[9] ?? 0), Number(match[10] ?? 0)];
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return null;
  if (hour > 23 || minute > 59 || second > 59 || offsetHours > 23 || offsetMinutes > 59) return null;
  // Date.UTC would read years 0–99 as 1900–1999; setUTCFullYear takes the year as written.
  const utc = new Date(
    Date.UTC(2000, month - 1, day, hour, minute, second, Number((match[7] ?? '').padEnd(3, '0').slice(0, 3))),
  );
  utc.setUTCFullYear(year, month - 1, day);
  const offset = (offsetHours * 60 + offsetMinutes) * 60_000 * (match[8] === '-' ? -1 : 1);
  return utc.getTime() - offset;
}
