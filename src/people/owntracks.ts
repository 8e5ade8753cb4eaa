import { coordinateProblem, type GeoPoint } from './geo.ts';

/**
 * The OwnTracks app's JSON messages (https://owntracks.org/booklet/tech/json/), parsed into the
 * few shapes Triad acts on. Wire field names stay the app's own (`lat`, `tst`, `inregions`);
 * parsed values use Triad's units: times in epoch milliseconds, speed in km/h.
 */

export interface PhoneFix extends GeoPoint {
  /** When the phone took the fix, epoch ms. */
  ts: number;
  /** Radius of the 68 % confidence circle, metres; absent when the phone did not say. */
  accuracy?: number;
  /** km/h. */
  speed?: number;
  /** Course over ground, degrees from north. */
  heading?: number;
  altitude?: number;
}

export interface LocationMessage extends PhoneFix {
  type: 'location';
  battery?: number;
  batteryStatus?: 'unknown' | 'unplugged' | 'charging' | 'full';
  /** The two-letter tracker id shown on the map. */
  tid?: string;
  /** Names of the phone's own regions it believes it is in. */
  inRegions: string[];
  /** What made the phone report: `p` ping, `c` region, `u` manual, `t` timer… */
  trigger?: string;
}

export interface TransitionMessage extends PhoneFix {
  type: 'transition';
  event: 'enter' | 'leave';
  /** The region's name on the phone (`desc`). */
  region: string;
  regionId?: string;
  tid?: string;
}

export interface WaypointMessage extends GeoPoint {
  type: 'waypoint';
  name: string;
  radius: number;
  regionId?: string;
  /** When the region was created on the phone; with the name it identifies it. */
  createdAt: number;
}

export interface WaypointsMessage {
  type: 'waypoints';
  waypoints: WaypointMessage[];
  /** Regions of the export that are not circles (a beacon, a point): no zone can be made of them. */
  notCircles: string[];
}

/** The phone's last will, sent by the broker when it drops off without a goodbye. */
export interface LastWillMessage {
  type: 'lwt';
  ts?: number;
}

export type OwnTracksMessage =
  | LocationMessage
  | TransitionMessage
  | WaypointMessage
  | WaypointsMessage
  | LastWillMessage;

/**
 * `invalid`: the sender made a mistake (not JSON, fields missing or impossible) and should be
 * told. `ignored`: a well-formed message Triad does not act on (a card, an empty payload); a
 * phone that sent it must not be told to retry it.
 */
export type ParseResult =
  | { ok: true; message: OwnTracksMessage }
  | { ok: false; severity: 'invalid' | 'ignored'; reason: string };

/** Larger than any message the app sends (a waypoints export with a few hundred regions). */
const MAX_PAYLOAD_BYTES = 128 * 1024;
const MAX_WAYPOINTS = 500;
const MAX_NAME_LENGTH = 200;

/** Types the app sends that Triad has no use for; acknowledged and dropped. */
const UNUSED_TYPES = new Set([
  'card',
  'cmd',
  'status',
  'steps',
  'beacon',
  'configuration',
  'request',
  'dump',
  'encrypted',
]);

const invalid = (reason: string): ParseResult => ({ ok: false, severity: 'invalid', reason });
const ignored = (reason: string): ParseResult => ({ ok: false, severity: 'ignored', reason });

/** Parses one payload as it arrives (bytes, text or decoded JSON). Never throws. */
export function parseOwnTracks(payload: Buffer | string | unknown): ParseResult {
  let value = payload;
  if (Buffer.isBuffer(value)) {
    if (value.length > MAX_PAYLOAD_BYTES) return invalid('payload is too large');
    value = value.toString('utf8');
  }
  if (typeof value === 'string') {
    if (value.length > MAX_PAYLOAD_BYTES) return invalid('payload is too large');
    // The app sends an empty payload when a friend is deleted; the docs say to ignore it.
    if (value.trim() === '') return ignored('empty payload');
    try {
      value = JSON.parse(value);
    } catch {
      return invalid('payload is not JSON');
    }
  }
  if (!isRecord(value)) return invalid('payload is not a JSON object');
  const type = value._type;
  if (typeof type !== 'string') return invalid('_type is missing');
  switch (type) {
    case 'location':
      return parseLocation(value);
    case 'transition':
      return parseTransition(value);
    case 'waypoint': {
      const notCircle = regionWithoutRadius(value);
      if (notCircle !== null) return ignored(`region ${JSON.stringify(notCircle)} has no radius: not a zone`);
      return wrap(parseWaypoint(value));
    }
    case 'waypoints':
      return parseWaypoints(value);
    case 'lwt':
      return { ok: true, message: { type: 'lwt', ...optionalTs(value) } };
    default:
      if (UNUSED_TYPES.has(type)) return ignored(`_type ${type} is not used by Triad`);
      return invalid(`unknown _type ${JSON.stringify(type.slice(0, 40))}`);
  }
}

function parseLocation(raw: Record<string, unknown>): ParseResult {
  const fix = parseFix(raw);
  if (typeof fix === 'string') return invalid(fix);
  const message: LocationMessage = { type: 'location', ...fix, inRegions: [] };
  const battery = raw.batt;
  if (battery !== undefined) {
    if (typeof battery !== 'number' || !Number.isFinite(battery) || battery < 0 || battery > 100) {
      return invalid('batt must be a percentage');
    }
    message.battery = battery;
  }
  const status = raw.bs;
  if (status === 0 || status === 1 || status === 2 || status === 3) {
    message.batteryStatus = (['unknown', 'unplugged', 'charging', 'full'] as const)[status];
  }
  const tid = shortText(raw.tid, 8);
  if (tid) message.tid = tid;
  const trigger = shortText(raw.t, 4);
  if (trigger) message.trigger = trigger;
  if (raw.inregions !== undefined) {
    if (!Array.isArray(raw.inregions) || !raw.inregions.every((r) => typeof r === 'string')) {
      return invalid('inregions must be a list of names');
    }
    message.inRegions = (raw.inregions as string[]).slice(0, 100).map((r) => r.slice(0, MAX_NAME_LENGTH));
  }
  return { ok: true, message };
}

function parseTransition(raw: Record<string, unknown>): ParseResult {
  const fix = parseFix(raw);
  if (typeof fix === 'string') return invalid(fix);
  if (raw.event !== 'enter' && raw.event !== 'leave') return invalid('event must be "enter" or "leave"');
  const region = shortText(raw.desc, MAX_NAME_LENGTH);
  const regionId = shortText(raw.rid, MAX_NAME_LENGTH);
  if (!region && !regionId) return invalid('a transition needs desc or rid to name its region');
  const message: TransitionMessage = { type: 'transition', ...fix, event: raw.event, region: region ?? '' };
  if (regionId) message.regionId = regionId;
  const tid = shortText(raw.tid, 8);
  if (tid) message.tid = tid;
  return { ok: true, message };
}

/**
 * The name of a region that has no radius, or null. The apps list such regions among the others:
 * iOS's beacon regions (`rad` 0, with `uuid`, `major`, `minor`) and Android's regions saved
 * without a radius. They are the phone's own business, not a mistake: refusing the export for
 * them refused every circle in it, and the app, which waits for a 2xx before it sends anything
 * else, kept sending it.
 */
function regionWithoutRadius(raw: Record<string, unknown>): string | null {
  if (raw.rad !== undefined && raw.rad !== null && raw.rad !== 0) return null;
  return shortText(raw.desc, MAX_NAME_LENGTH) ?? '';
}

function parseWaypoint(raw: Record<string, unknown>): WaypointMessage | string {
  const where = coordinateProblem(raw.lat, raw.lon);
  if (where) return where;
  const name = shortText(raw.desc, MAX_NAME_LENGTH);
  if (!name) return 'desc (the region name) is missing';
  const radius = raw.rad;
  if (typeof radius !== 'number' || !Number.isFinite(radius) || radius <= 0 || radius > 100_000) {
    return 'rad must be a radius in metres between 0 and 100000';
  }
  const tst = raw.tst;
  if (typeof tst !== 'number' || !Number.isFinite(tst) || tst < 0) return 'tst must be a UNIX time in seconds';
  const waypoint: WaypointMessage = {
    type: 'waypoint',
    name,
    latitude: raw.lat as number,
    longitude: raw.lon as number,
    radius,
    createdAt: tst * 1000,
  };
  const regionId = shortText(raw.rid, MAX_NAME_LENGTH);
  if (regionId) waypoint.regionId = regionId;
  return waypoint;
}

function parseWaypoints(raw: Record<string, unknown>): ParseResult {
  const list = raw.waypoints;
  if (!Array.isArray(list)) return invalid('waypoints must be a list');
  if (list.length > MAX_WAYPOINTS) return invalid(`more than ${MAX_WAYPOINTS} waypoints`);
  const waypoints: WaypointMessage[] = [];
  const notCircles: string[] = [];
  for (const [index, item] of list.entries()) {
    // One bad region refuses the whole export: importing part of it would leave zones half-made.
    if (!isRecord(item)) return invalid(`waypoints[${index}] is not an object`);
    const notCircle = regionWithoutRadius(item);
    if (notCircle !== null) {
      notCircles.push(notCircle);
      continue;
    }
    const waypoint = parseWaypoint(item);
    if (typeof waypoint === 'string') return invalid(`waypoints[${index}]: ${waypoint}`);
    waypoints.push(waypoint);
  }
  return { ok: true, message: { type: 'waypoints', waypoints, notCircles } };
}

function wrap(result: WaypointMessage | string): ParseResult {
  return typeof result === 'string' ? invalid(result) : { ok: true, message: result };
}

/** The fields a location and a transition share; a string is what is wrong. */
function parseFix(raw: Record<string, unknown>): PhoneFix | string {
  const where = coordinateProblem(raw.lat, raw.lon);
  if (where) return where;
  const tst = raw.tst;
  const when = secondsProblem(tst);
  if (when) return when;
  const fix: PhoneFix = {
    latitude: raw.lat as number,
    longitude: raw.lon as number,
    ts: Math.round((tst as number) * 1000),
  };
  const accuracy = raw.acc;
  if (accuracy !== undefined) {
    if (typeof accuracy !== 'number' || !Number.isFinite(accuracy) || accuracy < 0)
      return 'acc must be metres, 0 or more';
    fix.accuracy = accuracy;
  }
  // iOS sends -1 for a speed or course it does not know; that is "absent", not an error.
  const speed = finiteIn(raw.vel, 0, 1000);
  if (speed !== undefined) fix.speed = speed;
  const heading = finiteIn(raw.cog, 0, 360);
  if (heading !== undefined) fix.heading = heading;
  const altitude = finiteIn(raw.alt, -1000, 100_000);
  if (altitude !== undefined) fix.altitude = altitude;
  return fix;
}

/**
 * From here on a `tst` is milliseconds (the year 5138 in seconds). Taken as seconds it was a fix
 * thousands of years ahead, ignored as "in the future": a script that sent `Date.now()` got a 200
 * and never learnt why nobody moved.
 */
const FIRST_MILLISECONDS_TST = 1e11;

/** Null when `tst` reads as the app's UNIX time in seconds, or what is wrong with it. */
function secondsProblem(tst: unknown): string | null {
  if (typeof tst !== 'number' || !Number.isFinite(tst) || tst <= 0) return 'tst must be a UNIX time in seconds';
  if (tst >= FIRST_MILLISECONDS_TST) return `tst ${tst} looks like milliseconds: OwnTracks sends seconds`;
  return null;
}

function optionalTs(raw: Record<string, unknown>): { ts?: number } {
  const tst = raw.tst;
  return typeof tst === 'number' && Number.isFinite(tst) && tst > 0 ? { ts: tst * 1000 } : {};
}

function finiteIn(value: unknown, min: number, max: number): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) && value >= min && value <= max ? value : undefined;
}

function shortText(value: unknown, max: number): string | undefined {
  if (typeof value !== 'string') return undefined;
  const text = value.trim().slice(0, max);
  return text || undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** How far a phone's clock may run ahead of the hub's before its fixes are not believed. */
export const MAX_FUTURE_MS = 5 * 60_000;
/** Fixes older than this say nothing about where someone is now. */
export const MAX_AGE_MS = 24 * 3_600_000;

/** Null when a fix's time is believable at `now`, or why it is not. */
export function timestampProblem(ts: number, now: number): string | null {
  if (ts > now + MAX_FUTURE_MS) return `tst is ${Math.round((ts - now) / 1000)} s in the future`;
  if (ts < now - MAX_AGE_MS) return `tst is more than ${MAX_AGE_MS / 3_600_000} h in the past`;
  return null;
}

/** What the app receives about a friend: their position as a `location` message, keyed by `topic`. */
export interface FriendLocation extends PhoneFix {
  topic: string;
  tid: string;
  battery?: number;
}

/** A friend's position in the app's own wire format, so it shows on the phone's map. */
export function locationPayload(friend: FriendLocation): Record<string, unknown> {
  const payload: Record<string, unknown> = {
    _type: 'location',
    lat: round(friend.latitude, 6),
    lon: round(friend.longitude, 6),
    tst: Math.floor(friend.ts / 1000),
    tid: friend.tid,
    topic: friend.topic,
  };
  if (friend.accuracy !== undefined) payload.acc = Math.round(friend.accuracy);
  if (friend.speed !== undefined) payload.vel = Math.round(friend.speed);
  if (friend.heading !== undefined) payload.cog = Math.round(friend.heading);
  if (friend.battery !== undefined) payload.batt = Math.round(friend.battery);
  return payload;
}

/** The friend's name card, so the map shows "Sam" rather than two letters. */
export function cardPayload(topic: string, tid: string, name: string): Record<string, unknown> {
  return { _type: 'card', name, tid, topic };
}

/** Two letters from a name, as the app shows on the map (`Alex Smith` → `AS`, `Sam` → `SA`). */
export function trackerIdFor(name: string): string {
  const words = name
    .normalize('NFKD')
    .replace(/[^\p{L}\p{N} ]/gu, '')
    .split(/\s+/)
    .filter(Boolean);
  const letters = words.length >= 2 ? words[0][0] + words[1][0] : (words[0] ?? 'XX').slice(0, 2);
  return letters.toUpperCase().padEnd(2, 'X');
}

function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
