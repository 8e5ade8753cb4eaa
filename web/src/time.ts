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
