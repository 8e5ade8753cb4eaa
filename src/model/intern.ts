import type { ActionSpec, EventSpec, PropertySpec, Thing } from './thing.ts';

/** A thing's spec maps, as the store keeps them apart from the rest of the thing. */
export interface ThingSpecs {
  properties: Record<string, PropertySpec>;
  actions: Record<string, ActionSpec>;
  events?: Record<string, EventSpec>;
}

/** Distinct specs kept per property or action name; past this a name's specs are too varied to be worth sharing. */
const MAX_VARIANTS = 16;

/**
 * Makes things read from the store share identical property and action specs, and identical
 * property and action maps. A hundred thousand lights then hold one `light.brightness` schema
 * between them instead of a hundred thousand parsed copies, which is most of a thing's memory.
 *
 * Sharing is safe because a thing's description is never changed in place: an update replaces
 * the whole thing (adapters already hand the core one shared map for many things). Specs only
 * count as identical when their JSON would be too, key order included, so nothing a client sees
 * changes. One interner serves one load; it keeps what it has seen until dropped.
 */
export class SpecInterner {
  private readonly properties = new SpecTable<PropertySpec>();
  private readonly actions = new SpecTable<ActionSpec>();
  private readonly propertyMaps = new Map<string, Record<string, PropertySpec>>();
  private readonly actionMaps = new Map<string, Record<string, ActionSpec>>();
  private readonly texts = new Map<string, ThingSpecs>();

  /** Shares the specs of a whole parsed thing with those of things seen before. */
  thing(thing: Thing): Thing {
    thing.properties = internMap(thing.properties, this.properties, this.propertyMaps);
    thing.actions = internMap(thing.actions, this.actions, this.actionMaps);
    return thing;
  }

  /** The specs stored as `text`, parsed the first time that text is seen and shared after. */
  specs(text: string): ThingSpecs {
    let specs = this.texts.get(text);
    if (!specs) {
      const parsed = JSON.parse(text) as ThingSpecs;
      // Different texts still share the specs they have in common (one thing with an extra property).
      specs = {
        properties: internMap(parsed.properties, this.properties, this.propertyMaps),
        actions: internMap(parsed.actions, this.actions, this.actionMaps),
        events: parsed.events,
      };
      this.texts.set(text, specs);
    }
    return specs;
  }
}

/** Identical specs under one name, each with a small number that stands for it in map keys. */
class SpecTable<T> {
  private readonly byName = new Map<string, { spec: T; n: number }[]>();
  private next = 0;

  /** The shared copy of `spec` and its number, or undefined when the name has too many variants. */
  intern(name: string, spec: T): { spec: T; n: number } | undefined {
    let variants = this.byName.get(name);
    if (!variants) {
      variants = [];
      this.byName.set(name, variants);
    }
    for (const variant of variants) if (sameJson(variant.spec, spec)) return variant;
    if (variants.length >= MAX_VARIANTS) return undefined;
    const entry = { spec, n: this.next++ };
    variants.push(entry);
    return entry;
  }
}

function internMap<T>(
  map: Record<string, T>,
  table: SpecTable<T>,
  maps: Map<string, Record<string, T>>,
): Record<string, T> {
  if (typeof map !== 'object' || map === null) return map;
  // The key names each entry and its spec's number, in order: equal keys mean equal JSON.
  let key = '';
  let shareable = true;
  for (const name of Object.keys(map)) {
    // Assigning `__proto__` would set the prototype rather than the entry: leave such a map alone.
    const entry = name === '__proto__' ? undefined : table.intern(name, map[name]);
    if (!entry) {
      shareable = false;
      continue;
    }
    if (map[name] !== entry.spec) map[name] = entry.spec;
    key += `${name}\u0000${entry.n}\u0001`;
  }
  if (!shareable) return map;
  const shared = maps.get(key);
  if (shared) return shared;
  maps.set(key, map);
  return map;
}

/** Deep equality of parsed JSON that also requires the same key order, so both serialise alike. */
function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!sameJson(a[i], b[i])) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  for (let i = 0; i < ka.length; i++) {
    if (ka[i] !== kb[i]) return false;
    if (!sameJson((a as Record<string, unknown>)[ka[i]], (b as Record<string, unknown>)[kb[i]])) return false;
  }
  return true;
}
