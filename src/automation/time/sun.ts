/** Where the household is, for sunrise and sunset. */
export interface GeoPoint {
  latitude: number;
  longitude: number;
}

export type SunEvent = 'sunrise' | 'sunset';

const RAD = Math.PI / 180;
const DAY_MS = 86_400_000;
/** The sun's centre 0.833° below the horizon: refraction plus the disc's radius, as almanacs use. */
const HORIZON = -0.833;

/**
 * Sunrise or sunset on the UTC calendar day containing `dayMs`, by the NOAA sunrise equation
 * (accurate to about a minute away from the poles). Null when the sun does not rise or set that day.
 */
export function sunTime(event: SunEvent, dayMs: number, where: GeoPoint): number | null {
  const julianDay = Math.floor(dayMs / DAY_MS) + 2440587.5 + 0.5;
  const n = Math.round(julianDay - 2451545.0 + 0.0008);
  const meanSolarNoon = n - where.longitude / 360;
  const meanAnomaly = (357.5291 + 0.98560028 * meanSolarNoon) % 360;
  const m = meanAnomaly * RAD;
  const centre = 1.9148 * Math.sin(m) + 0.02 * Math.sin(2 * m) + 0.0003 * Math.sin(3 * m);
  const eclipticLongitude = ((meanAnomaly + centre + 180 + 102.9372) % 360) * RAD;
  const transit = 2451545.0 + meanSolarNoon + 0.0053 * Math.sin(m) - 0.0069 * Math.sin(2 * eclipticLongitude);
  const declination = Math.asin(Math.sin(eclipticLongitude) * Math.sin(23.4397 * RAD));
  const lat = where.latitude * RAD;
  const cosHourAngle =
    (Math.sin(HORIZON * RAD) - Math.sin(lat) * Math.sin(declination)) / (Math.cos(lat) * Math.cos(declination));
  if (cosHourAngle < -1 || cosHourAngle > 1) return null;
  const hourAngle = Math.acos(cosHourAngle) / RAD;
  const julian = event === 'sunrise' ? transit - hourAngle / 360 : transit + hourAngle / 360;
  return Math.round((julian - 2440587.5) * DAY_MS);
}

/** The next sunrise or sunset (plus `offsetMs`) strictly after `after`. */
export function nextSunTime(event: SunEvent, offsetMs: number, after: number, where: GeoPoint): number {
  for (let day = -1; day <= 366; day++) {
    const t = sunTime(event, after + day * DAY_MS, where);
    if (t !== null && t + offsetMs > after) return t + offsetMs;
  }
  return Number.POSITIVE_INFINITY;
}

/**
 * The sunrise or sunset (plus offset) of the day `at` is in at `where`, for conditions. The day is
 * the place's solar day, midnight to midnight by the sun at its longitude, about its civil day: the
 * UTC day it was before put 21:00 in New York (01:00 UTC) on the next day, so "after sunset"
 * compared with tomorrow's sunset and was never true in an evening west of Greenwich.
 */
export function sunTimeOn(event: SunEvent, offsetMs: number, at: number, where: GeoPoint): number | null {
  const t = sunTime(event, at + (where.longitude / 360) * DAY_MS, where);
  return t === null ? null : t + offsetMs;
}
