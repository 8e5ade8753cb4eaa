import type { Thing } from '../model/thing.ts';
import type { StateChanged } from './events.ts';

export interface PropertyValue {
  value: unknown;
  /**
   * When the value was last reported (even if it did not change): the device's newest word, which a
   * report of another value stamped by its device before it does not replace (HubCore.ingest).
   */
  ts: number;
}

/** A thing and what Triad currently believes about it. */
export interface Twin {
  thing: Thing;
  state: Map<string, PropertyValue>;
  /** null until the device has said anything about its availability. */
  online: boolean | null;
}

/**
 * The hub's in-memory picture of every household's things. Keyed by household, then thing id, so
 * isolation between households is the shape of the data, not a filter someone can forget.
 */
export class TwinRegistry {
  private readonly households = new Map<string, Map<string, Twin>>();
  /**
   * The changes of the report whose events are being delivered (set by HubCore.ingest, one
   * thing's, in order), or null. The whole report is in the twin by then; see valueBefore.
   */
  delivering: StateChanged | StateChanged[] | null = null;

  get(householdId: string, id: string): Twin | undefined {
    return this.households.get(householdId)?.get(id);
  }

  list(householdId: string): Twin[] {
    return [...(this.households.get(householdId)?.values() ?? [])];
  }

  /** Every household's twins, without copying them into an array. */
  *all(): IterableIterator<Twin> {
    for (const things of this.households.values()) yield* things.values();
  }

  /** Adds a thing or replaces its description, keeping the state of properties it still has. */
  put(thing: Thing): Twin {
    let things = this.households.get(thing.householdId);
    if (!things) {
      things = new Map();
      this.households.set(thing.householdId, things);
    }
    const existing = things.get(thing.id);
    if (existing) {
      existing.thing = thing;
      for (const property of existing.state.keys()) {
        if (!Object.hasOwn(thing.properties, property)) existing.state.delete(property);
      }
      return existing;
    }
    const twin: Twin = { thing, state: new Map(), online: null };
    things.set(thing.id, twin);
    return twin;
  }

  remove(householdId: string, id: string): boolean {
    return this.households.get(householdId)?.delete(id) ?? false;
  }

  value(householdId: string, id: string, property: string): unknown {
    return this.get(householdId, id)?.state.get(property)?.value;
  }

  /**
   * What a property was before the report whose changes are being delivered, as its change's `from`
   * says (null when it had no value); outside such a delivery, or for a property that report did not
   * change, its value now. For a subscriber that must see a thing as it stood before a report, such
   * as a trip's start, when every change it hears already finds the whole report in the twin.
   */
  valueBefore(householdId: string, id: string, property: string): unknown {
    const change = this.deliveredChange(householdId, id, property);
    return change ? change.from : this.value(householdId, id, property);
  }

  /** The first change of the property in the report being delivered: its `from` is from before the report. */
  private deliveredChange(householdId: string, id: string, property: string): StateChanged | undefined {
    const changes = this.delivering;
    if (changes === null) return undefined;
    return (Array.isArray(changes) ? changes : [changes]).find(
      (change) => change.householdId === householdId && change.thing === id && change.property === property,
    );
  }

  get size(): number {
    let n = 0;
    for (const things of this.households.values()) n += things.size;
    return n;
  }
}

/** Deep equality for JSON-like values: what counts as "no change" for a report. */
export function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => sameValue((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

/**
 * Whether a reported value fulfils what a command asked for. Numbers get a small tolerance because
 * devices round on their own scales (50 % brightness is 127 of 254, which reads back as 50.0 %, but
 * 33 % reads back as 33.07 %; 2700 K is 370 mireds, which reads back as 2702.7 K).
 */
export function fulfils(reported: unknown, expected: unknown): boolean {
  if (typeof reported === 'number' && typeof expected === 'number') {
    return Math.abs(reported - expected) <= Math.max(0.6, Math.abs(expected) * 0.01);
  }
  return sameValue(reported, expected);
}
