import type { StateChanged } from '../core/events.ts';
import { toJson } from './migrations.ts';

/**
 * JSON texts of numbers seen recently. Most history values are numbers, and a sensor repeats a
 * small set of them (a temperature to two decimals); formatting a double to its shortest text is
 * most of what JSON.stringify costs for one, and each value is written twice (as `from` and `to`).
 */
const numberTexts = new Map<number, string>();
const NUMBER_TEXTS_LIMIT = 4096;

/**
 * A history value as JSON text, exactly as toJson writes it: for a finite number JSON.stringify
 * is defined as its plain string form (and the map's one key for 0 and -0 is right, both are "0").
 */
export function jsonText(value: unknown): string | null {
  if (typeof value !== 'number' || !Number.isFinite(value)) return toJson(value);
  let text = numberTexts.get(value);
  if (text === undefined) {
    text = String(value);
    if (numberTexts.size >= NUMBER_TEXTS_LIMIT) numberTexts.clear();
    numberTexts.set(value, text);
  }
  return text;
}

/**
 * The last change of each property in a batch, for the latest-values upsert. Keyed by a plain
 * string (a JSON key cost a stringify per row): the length prefix ends the household id, and a
 * thing id holds no NUL, so no two properties share a key.
 */
export function lastChangeOfEachProperty(changes: StateChanged[]): StateChanged[] {
  const last = new Map<string, StateChanged>();
  for (const c of changes) last.set(`${c.householdId.length}:${c.householdId}${c.thing}\u0000${c.property}`, c);
  return [...last.values()];
}
