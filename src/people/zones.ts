import type { Thing } from '../model/thing.ts';
import { distanceMetres, type GeoPoint } from './geo.ts';

/** The id `presence.zone` takes when someone is home; the home zone comes from household settings. */
export const HOME_ZONE_ID = 'home';

/** A circle people arrive in and leave, each with its own delay. */
export interface Zone extends GeoPoint {
  id: string;
  name: string;
  /** Metres. */
  radius: number;
  /** How long someone must be seen inside before they count as arrived, ms. */
  arriveDelayMs: number;
  /** How long someone must be seen outside before they count as gone, ms. */
  leaveDelayMs: number;
}

/** What one fix says about one zone. `unsure` changes nothing: it neither starts nor cancels a change. */
export type ZoneEvidence = 'inside' | 'outside' | 'unsure';

export interface FixCircle extends GeoPoint {
  /** Metres; absent means the sender claims an exact position. */
  accuracy?: number;
}

/**
 * The width of the band beyond the radius where nothing changes, so someone standing at the edge
 * does not flap: at least 20 m, or 15 % of the radius for large zones.
 */
export function hysteresisFor(radius: number): number {
  return Math.max(20, radius * 0.15);
}

/**
 * Judges a fix against a zone, taking its accuracy circle seriously: `inside` needs the centre
 * within the radius and the whole circle within the outer band; `outside` needs even the nearest
 * point of the circle beyond the outer band. Anything between is `unsure`.
 */
export function judgeFix(zone: Zone, fix: FixCircle): ZoneEvidence {
  const distance = distanceMetres(zone, fix);
  const accuracy = fix.accuracy ?? 0;
  const outer = zone.radius + hysteresisFor(zone.radius);
  if (distance <= zone.radius && distance + accuracy <= outer) return 'inside';
  if (distance - accuracy > outer) return 'outside';
  return 'unsure';
}

/** Household-wide presence settings, kept in the household record's `settings.presence`. */
export interface PresenceSettings {
  latitude?: number;
  longitude?: number;
  /** Metres. */
  homeRadius: number;
  /** Seconds. */
  arriveDelay: number;
  /** Seconds. */
  leaveDelay: number;
  /** Fixes less accurate than this (metres) do not move a person. */
  accuracyLimit: number;
  /** Whether regions a phone sends (`waypoint`, `waypoints`) become zones. */
  importWaypoints: boolean;
  /**
   * Seconds without a fix from a tracker after which it counts as stale: offline, and its
   * person's presence shown as not backed by a recent report (see staleness.ts); 0 never.
   */
  staleAfter: number;
}

export const DEFAULT_PRESENCE_SETTINGS: PresenceSettings = {
  homeRadius: 100,
  arriveDelay: 0,
  leaveDelay: 120,
  accuracyLimit: 250,
  importWaypoints: false,
  // Longer than a night: a phone in significant-change mode that sits still at home sends nothing
  // for hours (see staleness.ts), and a healthy phone should not go stale every morning.
  staleAfter: 12 * 3600,
};

/** Reads settings leniently: anything missing or mistyped falls back to its default. */
export function presenceSettingsFrom(settings: Record<string, unknown>): PresenceSettings {
  const raw = (settings.presence ?? {}) as Record<string, unknown>;
  const num = (key: keyof PresenceSettings, fallback: number) =>
    typeof raw[key] === 'number' && Number.isFinite(raw[key]) ? (raw[key] as number) : fallback;
  const d = DEFAULT_PRESENCE_SETTINGS;
  const result: PresenceSettings = {
    homeRadius: num('homeRadius', d.homeRadius),
    arriveDelay: num('arriveDelay', d.arriveDelay),
    leaveDelay: num('leaveDelay', d.leaveDelay),
    accuracyLimit: num('accuracyLimit', d.accuracyLimit),
    importWaypoints: raw.importWaypoints === true,
    staleAfter: num('staleAfter', d.staleAfter),
  };
  if (typeof raw.latitude === 'number' && typeof raw.longitude === 'number') {
    result.latitude = raw.latitude;
    result.longitude = raw.longitude;
  }
  return result;
}

/** The home zone, once the household's location is known. */
export function homeZone(settings: PresenceSettings): Zone | null {
  if (settings.latitude === undefined || settings.longitude === undefined) return null;
  return {
    id: HOME_ZONE_ID,
    name: 'Home',
    latitude: settings.latitude,
    longitude: settings.longitude,
    radius: settings.homeRadius,
    arriveDelayMs: settings.arriveDelay * 1000,
    leaveDelayMs: settings.leaveDelay * 1000,
  };
}

/** What a zone thing keeps in its `meta`. */
export interface ZoneMeta {
  latitude: number;
  longitude: number;
  radius: number;
  arriveDelay: number;
  leaveDelay: number;
  /** `api` for zones made by a person, `owntracks` for regions imported from a phone. */
  source: 'api' | 'owntracks';
  /** The phone's region id (`rid`) for imported zones, so a re-export updates rather than duplicates. */
  regionId?: string;
}

/** The zone a zone thing describes, or null when its meta is not one. */
export function zoneFromThing(thing: Thing): Zone | null {
  const meta = thing.meta as Partial<ZoneMeta> | undefined;
  if (thing.kind !== 'zone' || !meta) return null;
  const { latitude, longitude, radius, arriveDelay, leaveDelay } = meta;
  if ([latitude, longitude, radius, arriveDelay, leaveDelay].some((v) => typeof v !== 'number')) return null;
  return {
    id: thing.id,
    name: thing.name,
    latitude: latitude as number,
    longitude: longitude as number,
    radius: radius as number,
    arriveDelayMs: (arriveDelay as number) * 1000,
    leaveDelayMs: (leaveDelay as number) * 1000,
  };
}
