/**
 * The values a user gives on the command line and in the config file, checked the same way in
 * both places, so a bad one is refused with one line that names where it came from (a flag or a
 * config key) and what is allowed, before anything starts.
 */

/** A value the user gave that Triad cannot use: printed as one line, exit code 2. */
export class ConfigError extends Error {}

/** How to read one kind of setting, and what it must be, in the words the error uses. */
export interface Setting<T> {
  mustBe: string;
  /** The value as Triad uses it, or undefined when it is not acceptable. */
  read(raw: unknown): T | undefined;
}

/** Flags arrive as text and YAML may quote a number, so digits in a string count as a number. */
function numberFrom(raw: unknown): number | undefined {
  if (typeof raw === 'number') return Number.isFinite(raw) ? raw : undefined;
  if (typeof raw !== 'string' || !/^\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*$/.test(raw)) return undefined;
  return Number(raw);
}

export function wholeNumber(min: number, max: number, mustBe?: string): Setting<number> {
  return {
    mustBe: mustBe ?? `a whole number from ${min.toLocaleString('en')} to ${max.toLocaleString('en')}`,
    read: (raw) => {
      const n = numberFrom(raw);
      return n !== undefined && Number.isInteger(n) && n >= min && n <= max ? n : undefined;
    },
  };
}

/** More than zero, at most `max`. */
export function positiveNumber(max: number, mustBe?: string): Setting<number> {
  return {
    mustBe: mustBe ?? `a number above 0, at most ${max.toLocaleString('en')}`,
    read: (raw) => {
      const n = numberFrom(raw);
      return n !== undefined && n > 0 && n <= max ? n : undefined;
    },
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

export const yesOrNo: Setting<boolean> = {
  mustBe: 'true or false',
  read: (raw) => (typeof raw === 'boolean' ? raw : undefined),
};

export const isoTime: Setting<number> = {
  mustBe: 'an ISO 8601 time, such as 2026-01-05T07:55:00Z',
  read: (raw) => {
    const ms = typeof raw === 'string' ? Date.parse(raw) : Number.NaN;
    return Number.isFinite(ms) ? ms : undefined;
  },
};

export const mqttUrl = text('an mqtt://, mqtts://, ws://, wss:// or tcp:// address', /^(mqtts?|wss?|tcp):\/\/\S+$/);
export const postgresUrl = text('a postgres:// or postgresql:// address', /^postgres(ql)?:\/\/\S+$/);

/** How `value` reads as shown in an error: text quoted, so an empty or spaced value is visible. */
export function shown(value: unknown): string {
  const json = JSON.stringify(value);
  return json === undefined ? String(value) : json.length > 60 ? `${json.slice(0, 57)}…` : json;
}

/** Reads a flag's value (undefined when the flag was not given), or refuses it naming the flag. */
export function flagValue<T>(setting: Setting<T>, flag: string, raw: string | undefined): T | undefined {
  if (raw === undefined) return undefined;
  const value = setting.read(raw);
  if (value === undefined) throw new ConfigError(`${flag} must be ${setting.mustBe}, got ${shown(raw)}`);
  return value;
}
