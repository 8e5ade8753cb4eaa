/**
 * The simulated site's weather, household and market, as functions of time so a virtual clock
 * can run a day in seconds: a clear-sky solar curve, a house load with morning and evening
 * peaks, and a day-ahead price series shaped like a real one (cheap nights and noon, dear evenings).
 */

const HOUR = 3_600_000;

/** Hours since local midnight, for a site `utcOffsetHours` east of Greenwich. */
function localHour(ts: number, utcOffsetHours: number): number {
  return (((ts / HOUR + utcOffsetHours) % 24) + 24) % 24;
}

/** Solar production, W: a sine from sunrise to sunset, zero at night. */
export function solarPower(
  ts: number,
  options: { peakW: number; sunrise?: number; sunset?: number; utcOffsetHours?: number },
): number {
  const hour = localHour(ts, options.utcOffsetHours ?? 0);
  const [rise, set] = [options.sunrise ?? 6, options.sunset ?? 20];
  if (hour <= rise || hour >= set) return 0;
  return Math.round(options.peakW * Math.sin(((hour - rise) / (set - rise)) * Math.PI));
}

/** House consumption without the charger, W: a base load with morning and evening peaks. */
export function houseLoad(ts: number, options: { baseW?: number; utcOffsetHours?: number } = {}): number {
  const hour = localHour(ts, options.utcOffsetHours ?? 0);
  const base = options.baseW ?? 300;
  const morning = hour >= 7 && hour < 9 ? 900 : 0;
  const evening = hour >= 17 && hour < 22 ? 1500 : 0;
  return base + morning + evening;
}

/** A day-ahead series of hourly prices per kWh from `dayStart` for `hours`. */
export function dayAheadPrices(
  dayStart: number,
  hours = 48,
  utcOffsetHours = 0,
): Array<{ start: number; end: number; price: number }> {
  return Array.from({ length: hours }, (_, i) => {
    const start = dayStart + i * HOUR;
    const hour = localHour(start, utcOffsetHours);
    const night = hour < 6 ? -0.08 : 0;
    const noon = hour >= 11 && hour < 15 ? -0.06 : 0;
    const peak = hour >= 17 && hour < 21 ? 0.12 : 0;
    return { start, end: start + HOUR, price: Math.round((0.24 + night + noon + peak) * 1e4) / 1e4 };
  });
}
