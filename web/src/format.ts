import type { ActionInfo, PropertyInfo, Thing, Value } from './api/types.ts';
import { booleanText, lastSeenWords } from './labels.ts';

export function formatNumber(value: number, digits = 1): string {
  return new Intl.NumberFormat(undefined, { maximumFractionDigits: digits }).format(value);
}

/** "1 value", "3 values": a count with its noun, which takes an s unless it is one. */
export function counted(count: number, one: string, many = `${one}s`): string {
  return `${formatNumber(count, 0)} ${count === 1 ? one : many}`;
}

/**
 * A property's value as every view shows it: a yes/no value in the property's own words
 * ("Plugged in: Yes", "Trunk locked: Locked"), anything else with its unit.
 */
export function formatReading(
  property: string,
  value: Value | undefined,
  info?: Pick<PropertyInfo, 'unit' | 'type'>,
): string {
  return typeof value === 'boolean' ? booleanText(property, value) : formatValue(value, info);
}

/**
 * A value with its unit, in the words a person reads on a dashboard. A yes/no value reads "Yes" or
 * "No" here: only its property knows better words, so a property's value goes through formatReading.
 */
export function formatValue(value: Value | undefined, info?: Pick<PropertyInfo, 'unit' | 'type'>): string {
  if (value === null || value === undefined) return '—';
  if (typeof value === 'boolean') return value ? 'Yes' : 'No';
  if (typeof value === 'number') {
    const unit = info?.unit;
    if (unit === 'm') return formatDistance(value);
    if (unit === 's') return formatDuration(value);
    if (unit === 'deg') return `${formatNumber(value, 4)}°`;
    if (unit === 'kWh') return formatKwh(value);
    // From a kilowatt up, as "Energy now" writes power: a meter's "5.69 kW", not "5,690 W".
    if (unit === 'W' && Math.abs(value) >= 1000) return `${formatNumber(value / 1000, 2)} kW`;
    return unit ? `${formatNumber(value)}${unit === '%' ? ' %' : ` ${unit}`}` : formatNumber(value);
  }
  return value;
}

/**
 * Energy in kWh: one decimal from 1 kWh up, and two significant digits below, so a kettle's
 * 0.04 kWh or a charge's first 0.3 kWh is not shown as "0 kWh".
 */
export function formatKwh(kwh: number): string {
  if (kwh === 0 || Math.abs(kwh) >= 1) return `${formatNumber(kwh)} kWh`;
  return `${new Intl.NumberFormat(undefined, { maximumSignificantDigits: 2 }).format(kwh)} kWh`;
}

export function formatDistance(metres: number): string {
  return metres >= 1000 ? `${formatNumber(metres / 1000)} km` : `${Math.round(metres)} m`;
}

export function formatDuration(seconds: number): string {
  if (seconds < 60) return `${Math.round(seconds)} s`;
  const minutes = Math.round(seconds / 60);
  return minutes < 60 ? `${minutes} min` : `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

export function formatTime(time: string | number | null | undefined): string {
  if (time === null || time === undefined) return '—';
  const date = new Date(time);
  if (Number.isNaN(date.getTime())) return '—';
  return date.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

/**
 * A moment as people say it when they ask "since when": the time alone today ("14:05"), the date
 * with it on another day.
 */
export function formatWhen(time: string | number | null | undefined, now = Date.now()): string {
  if (time === null || time === undefined) return '—';
  const date = new Date(time);
  if (Number.isNaN(date.getTime())) return '—';
  if (date.toDateString() === new Date(now).toDateString())
    return date.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
  return formatTime(time);
}

/** When the hub last heard from the thing: the newest report of any of its properties, or null. */
export function lastReported(thing: Thing): string | null {
  let latest: string | null = null;
  let latestMs = Number.NEGATIVE_INFINITY;
  for (const info of Object.values(thing.properties)) {
    const ms = info.ts ? Date.parse(info.ts) : Number.NaN;
    if (ms > latestMs) {
      latestMs = ms;
      latest = info.ts;
    }
  }
  return latest;
}

/**
 * Whether the hub has lost touch with the thing (its gateway went away, it is out of reach): its
 * readings are then the last it heard, not now. `null`, not heard of either way yet, is not offline.
 */
export const isOffline = (thing: Thing) => thing.online === false;

/** "Last seen 14:05": when a thing that is offline was last heard from (see lastSeenWords). */
export function lastSeenText(thing: Thing, now = Date.now()): string {
  const seen = lastReported(thing);
  return lastSeenWords(seen ? formatWhen(seen, now) : null);
}

/**
 * How long ago a moment was, coarsely, as people say it of a last report: "less than a minute",
 * "5 min", "14 h", "3 days"; `spoken` has the units spelt out ("14 hours"), for screen readers.
 * A moment ahead of this browser's clock (the hub's runs a little ahead) is "less than a minute".
 */
export function formatAge(
  time: string | number | null | undefined,
  now = Date.now(),
): { short: string; spoken: string } | null {
  if (time === null || time === undefined) return null;
  const ms = new Date(time).getTime();
  if (Number.isNaN(ms)) return null;
  const minutes = Math.floor(Math.max(0, now - ms) / 60_000);
  if (minutes < 1) return { short: 'less than a minute', spoken: 'less than a minute' };
  if (minutes < 60) return { short: `${formatNumber(minutes, 0)} min`, spoken: counted(minutes, 'minute') };
  const hours = Math.floor(minutes / 60);
  // Up to two days in hours ("30 h"): "1 day" would hide whether it was last night or the one before.
  if (hours < 48) return { short: `${formatNumber(hours, 0)} h`, spoken: counted(hours, 'hour') };
  const days = Math.floor(hours / 24);
  return { short: counted(days, 'day'), spoken: counted(days, 'day') };
}

export function formatClock(time: string | number): string {
  return new Date(time).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

export function numberOf(thing: Thing | undefined, property: string): number | null {
  const value = thing?.state[property];
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}

export function boolOf(thing: Thing | undefined, property: string): boolean | null {
  const value = thing?.state[property];
  return typeof value === 'boolean' ? value : null;
}

/**
 * The thing's action for a capability: `lock` on a door, or a car's `lock` that its adapter may
 * have spelt `doors_lock` or `lock.lock`. Returns the action's real name, or null.
 */
export function findAction(
  thing: Thing,
  capability: string,
  wanted: string,
): { name: string; info: ActionInfo } | null {
  const entries = Object.entries(thing.actions);
  const exact = entries.find(([name, info]) => name === wanted && (!info.capability || info.capability === capability));
  const loose =
    exact ??
    entries.find(
      ([name, info]) => info.capability === capability && (name.endsWith(`.${wanted}`) || name.endsWith(`_${wanted}`)),
    );
  return loose ? { name: loose[0], info: loose[1] } : null;
}

/** The one input field an action takes (`temperature` for set_target_temperature), if it takes one. */
export function inputField(info: ActionInfo): string | null {
  const names = Object.keys(info.input?.properties ?? {});
  return names[0] ?? null;
}
