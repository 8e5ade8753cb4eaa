import { distanceMetres, type GeoPoint, offsetPoint } from '../../people/geo.ts';
import { DEMO_HOME, DEMO_WORK } from '../people.ts';

/** A stretch of road between two points and how fast traffic goes on it. */
export interface RouteLeg {
  from: GeoPoint;
  to: GeoPoint;
  /** km/h. */
  limit: number;
  metres: number;
  heading: number;
}

export interface Route {
  name: string;
  legs: RouteLeg[];
  metres: number;
}

/** Alex's office: where the demo's phone schedule (6 km north-east of home) puts work. */
export { DEMO_WORK };

/** Builds a route through `points`, each leg with the speed limit given for it. */
export function routeThrough(name: string, points: GeoPoint[], limits: number[]): Route {
  const legs: RouteLeg[] = [];
  for (let i = 0; i + 1 < points.length; i++) {
    const from = points[i];
    const to = points[i + 1];
    legs.push({ from, to, limit: limits[i] ?? 50, metres: distanceMetres(from, to), heading: bearing(from, to) });
  }
  return { name, legs, metres: legs.reduce((sum, leg) => sum + leg.metres, 0) };
}

/**
 * The commute as a town drive is: out of the street (30), along the avenue (50), round the ring
 * road (80) and into the business park (30). The way home is the same roads in reverse.
 */
export function commute(home: GeoPoint = DEMO_HOME, work: GeoPoint = DEMO_WORK): { toWork: Route; toHome: Route } {
  const street = offsetPoint(home, 400, 20);
  const avenue = offsetPoint(street, 2_300, 45);
  const parkGate = offsetPoint(work, 700, 250);
  const points = [home, street, avenue, parkGate, work];
  const limits = [30, 50, 80, 30];
  return {
    toWork: routeThrough('home → work', points, limits),
    toHome: routeThrough('work → home', [...points].reverse(), [...limits].reverse()),
  };
}

/** Where on a route a car is after `metres`, and which leg it is on. */
export function pointAlong(route: Route, metres: number): { position: GeoPoint; leg: RouteLeg } {
  let left = Math.max(0, metres);
  for (const leg of route.legs) {
    if (left <= leg.metres) return { position: offsetPoint(leg.from, left, leg.heading), leg };
    left -= leg.metres;
  }
  const last = route.legs[route.legs.length - 1];
  return { position: last.to, leg: last };
}

export function bearing(from: GeoPoint, to: GeoPoint): number {
  const r = Math.PI / 180;
  const y = Math.sin((to.longitude - from.longitude) * r) * Math.cos(to.latitude * r);
  const x =
    Math.cos(from.latitude * r) * Math.sin(to.latitude * r) -
    Math.sin(from.latitude * r) * Math.cos(to.latitude * r) * Math.cos((to.longitude - from.longitude) * r);
  return (((Math.atan2(y, x) / r) % 360) + 360) % 360;
}
