/**
 * The values a user gives on the command line and in the config file, checked the same way in
 * both places, so a bad one is refused with one line that names where it came from (a flag or a
 * config key) and what is allowed, before anything starts.
 */

import { isIP } from 'node:net';
import { decimalInteger } from '../core/decimal.ts';
import { ISO_TIME_EXAMPLE, parseIsoTime } from '../core/iso-time.ts';
import { hidePasswords } from '../core/redact.ts';

/** A value the user gave that Triad cannot use: printed as one line, exit code 2. */
export class ConfigError extends Error {}

/** How to read one kind of setting, and what it must be, in the words the error uses. */
export interface Setting<T> {
  mustBe: string;
  /** The value as Triad uses it, or undefined when it is not acceptable. */
  read(raw: unknown): T | undefined;
  /**
   * A flag's text as the config file would hold the value (a number for a number), when it is not
   * text itself: flags are text by nature, a config file's values are typed, and a quoted number
   * there (`port: "8780"`) is refused like `demo: "yes"`.
   */
  fromText?(text: string): unknown;
}

/** A number with a fraction as a flag gives it (`--speedup 0.5`): decimal digits, no exponent or sign. */
function decimalNumber(text: string): number | undefined {
  return /^(\d{1,15}(\.\d{1,15})?)$/.test(text) ? Number(text) : undefined;
}

/** Ports and counts: a whole number from the config file, or a flag's plain decimal digits. */
export function wholeNumber(min: number, max: number, mustBe?: string): Setting<number> {
  return {
    mustBe: mustBe ?? `a whole number from ${min.toLocaleString('en')} to ${max.toLocaleString('en')}`,
    read: (raw) => (typeof raw === 'number' && Number.isInteger(raw) && raw >= min && raw <= max ? raw : undefined),
    fromText: decimalInteger,
  };
}

/** More than zero, at most `max`. */
export function positiveNumber(max: number, mustBe?: string): Setting<number> {
  return {
    mustBe: mustBe ?? `a number above 0, at most ${max.toLocaleString('en')}`,
    read: (raw) => (typeof raw === 'number' && raw > 0 && raw <= max ? raw : undefined),
    fromText: decimalNumber,
  };
}

export const portNumber = wholeNumber(0, 65_535, 'a port number (0–65535)');

export function oneOf<T extends string>(choices: readonly T[]): Setting<T> {
  return {
    mustBe:
      choices.length === 2
        ? `${choices[0]} or ${choices[1]}`
        : `one of ${choices.slice(0, -1).join(', ')} or ${choices.at(-1)}`,
    read: (raw) => (choices.includes(raw as T) ? (raw as T) : undefined),
  };
}

export function text(mustBe = 'some text', pattern?: RegExp): Setting<string> {
  return {
    mustBe,
    read: (raw) => (typeof raw === 'string' && raw.trim() !== '' && (!pattern || pattern.test(raw)) ? raw : undefined),
  };
}

/**
 * An address to listen on, as Node's `listen` takes it: an IP address (IPv6 without brackets) or a
 * host name. Anything else (`http://x`, `127.0.0.1:8080`, `[::1]`, ` 127.0.0.1`) Node would hand
 * to DNS, and the failure would come only when the server binds.
 */
export const listenHost: Setting<string> = {
  mustBe: 'an IP address (such as 0.0.0.0, 127.0.0.1, :: or ::1) or a host name, without a scheme or port',
  read: (raw) => (typeof raw === 'string' && (isIP(raw) !== 0 || isHostName(raw)) ? raw : undefined),
};

/**
 * A host name by RFC 1123's labels, with `_`, which names on some home networks carry and the
 * resolver takes. A last label of digits is no name but a mistyped IPv4 address (`999.1.1.1`).
 */
function isHostName(name: string): boolean {
  const labels = name.replace(/\.$/, '').split('.');
  const label = /^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$/i;
  return name.length <= 253 && labels.every((l) => label.test(l)) && !/^\d+$/.test(labels.at(-1) ?? '');
}

/** The names Fastify's `trustProxy` (proxy-addr) gives to ranges: 127.0.0.0/8 and ::1, and so on. */
const PROXY_RANGE_NAMES = ['loopback', 'linklocal', 'uniquelocal'];

/**
 * The reverse proxies whose X-Forwarded-For, -Proto and -Host the hub believes, as Fastify's
 * `trustProxy` takes them: IP addresses, CIDR ranges (an IPv4 one may give its netmask) and
 * proxy-addr's range names, comma-separated (a config file may give a list). Checked here: Fastify
 * would throw only when the HTTP server is built, after the store and the broker have started. A
 * range of /0 (everyone) proxy-addr refuses too: a hub that believed any client's headers would
 * let each name its own address and escape the sign-in limits.
 */
export const trustedProxies: Setting<string[]> = {
  mustBe: `IP addresses, CIDR ranges (such as 10.0.0.0/8) or ${PROXY_RANGE_NAMES.join(', ')}, separated by commas`,
  read: (raw) => {
    const entries = typeof raw === 'string' ? raw.split(',') : Array.isArray(raw) ? raw : [];
    const list = entries.map((entry) => (typeof entry === 'string' ? entry.trim() : ''));
    return list.length > 0 && list.every(isProxyAddress) ? list : undefined;
  },
};

/** One entry of `trustedProxies`, read as proxy-addr reads it. */
function isProxyAddress(entry: string): boolean {
  if (PROXY_RANGE_NAMES.includes(entry)) return true;
  const [address, range, ...more] = entry.split('/');
  const family = isIP(address);
  if (family === 0 || more.length > 0) return false;
  if (range === undefined) return true;
  if (/^\d+$/.test(range)) return Number(range) >= 1 && Number(range) <= (family === 4 ? 32 : 128);
  return family === 4 && isNetmask(range);
}

/** A dotted IPv4 netmask (`255.255.0.0`): ones, then zeros, and at least one of them a one. */
function isNetmask(mask: string): boolean {
  if (isIP(mask) !== 4) return false;
  const bits = mask
    .split('.')
    .map((part) => Number(part).toString(2).padStart(8, '0'))
    .join('');
  return /^1+0*$/.test(bits);
}

export const yesOrNo: Setting<boolean> = {
  mustBe: 'true or false',
  read: (raw) => (typeof raw === 'boolean' ? raw : undefined),
};

/** A time as the API takes it (see parseIsoTime): with its zone, on a date that exists. */
export const isoTime: Setting<number> = {
  mustBe: `an ISO 8601 time (a date and time with its zone, such as ${ISO_TIME_EXAMPLE})`,
  read: (raw) => (typeof raw === 'string' ? (parseIsoTime(raw) ?? undefined) : undefined),
};

/**
 * An external broker's address. Parsed whole, not only its scheme: the MQTT client reads a port
 * it cannot use (`:abc`) as its default and one out of range only when it connects, after the
 * hub has opened its store, and an address without a host as localhost.
 */
export const mqttUrl: Setting<string> = {
  mustBe: 'an mqtt://, mqtts://, ws://, wss:// or tcp:// address with a host, such as mqtt://127.0.0.1:1883',
  read: (raw) => {
    if (typeof raw !== 'string' || !/^(mqtts?|wss?|tcp):\/\/\S+$/.test(raw)) return undefined;
    const url = URL.canParse(raw) ? new URL(raw) : undefined;
    return url && url.hostname !== '' && url.port !== '0' ? raw : undefined;
  },
};

export const postgresUrl = text('a postgres:// or postgresql:// address', /^postgres(ql)?:\/\/\S+$/);

/**
 * How `value` reads as shown in an error: text quoted, so an empty or spaced value is visible; a
 * password in an address as `***`, since the line ends up in terminals and service logs.
 */
export function shown(value: unknown): string {
  const json = JSON.stringify(typeof value === 'string' ? hidePasswords(value) : value);
  return json === undefined ? String(value) : json.length > 60 ? `${json.slice(0, 57)}…` : json;
}

/** Reads a flag's value (undefined when the flag was not given), or refuses it naming the flag. */
export function flagValue<T>(setting: Setting<T>, flag: string, raw: string | undefined): T | undefined {
  if (raw === undefined) return undefined;
  const value = setting.read(setting.fromText ? setting.fromText(raw) : raw);
  if (value === undefined) throw new ConfigError(`${flag} must be ${setting.mustBe}, got ${shown(raw)}`);
  return value;
}
