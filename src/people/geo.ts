/** A point on the Earth in decimal degrees (WGS 84, what phones report). */
export interface GeoPoint {
  latitude: number;
  longitude: number;
}

/** Mean Earth radius in metres; the error against the ellipsoid (< 0.5 %) is far below GPS noise. */
const EARTH_RADIUS_M = 6_371_008.8;

const radians = (deg: number) => (deg * Math.PI) / 180;

/** Great-circle distance in metres (haversine: stable for the short distances zones care about). */
export function distanceMetres(a: GeoPoint, b: GeoPoint): number {
  const dLat = radians(b.latitude - a.latitude);
  const dLon = radians(b.longitude - a.longitude);
  const h =
    Math.sin(dLat / 2) ** 2 + Math.cos(radians(a.latitude)) * Math.cos(radians(b.latitude)) * Math.sin(dLon / 2) ** 2;
  return 2 * EARTH_RADIUS_M * Math.asin(Math.min(1, Math.sqrt(h)));
}

/** Null when the coordinates can exist on Earth, or why they cannot. */
export function coordinateProblem(latitude: unknown, longitude: unknown): string | null {
  if (typeof latitude !== 'number' || !Number.isFinite(latitude)) return 'lat must be a number';
  if (typeof longitude !== 'number' || !Number.isFinite(longitude)) return 'lon must be a number';
  if (latitude < -90 || latitude > 90) return `lat ${latitude} is not between -90 and 90`;
  if (longitude < -180 || longitude > 180) return `lon ${longitude} is not between -180 and 180`;
  return null;
}

/** A point `metres` away from `from` towards `bearingDeg` (0 = north); for simulators and tests. */
export function offsetPoint(from: GeoPoint, metres: number, bearingDeg: number): GeoPoint {
  const delta = metres / EARTH_RADIUS_M;
  const bearing = radians(bearingDeg);
  const lat1 = radians(from.latitude);
  const lon1 = radians(from.longitude);
  const lat2 = Math.asin(Math.sin(lat1) * Math.cos(delta) + Math.cos(lat1) * Math.sin(delta) * Math.cos(bearing));
  const lon2 =
    lon1 +
    Math.atan2(Math.sin(bearing) * Math.sin(delta) * Math.cos(lat1), Math.cos(delta) - Math.sin(lat1) * Math.sin(lat2));
  return { latitude: (lat2 * 180) / Math.PI, longitude: (((lon2 * 180) / Math.PI + 540) % 360) - 180 };
}
