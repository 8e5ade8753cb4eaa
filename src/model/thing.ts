import type { DataSchema } from './schema.ts';
import { type ActionDefinition, actionDefinition, capabilities, isCapability, propertySchema } from './vocabulary.ts';

/** The kinds of thing Triad knows; a device is anything in the home. */
export type ThingKind = 'device' | 'person' | 'tracker' | 'vehicle' | 'zone' | 'household' | 'charger' | 'site';

export interface PropertySpec {
  schema: DataSchema;
  /** Where the value lives on the wire, e.g. a COVESA VSS path for a vehicle. */
  binding?: string;
  /** False for properties only a device can change (most of them). */
  writable?: boolean;
}

export interface ActionSpec {
  /** The capability whose definition (input schema, expected state) this action follows. */
  capability: string;
  title?: string;
  input?: DataSchema;
}

export interface EventSpec {
  title?: string;
  data?: DataSchema;
}

/** A person, vehicle, device, zone or household: the one shape every adapter produces. */
export interface Thing {
  id: string;
  householdId: string;
  kind: ThingKind;
  name: string;
  /** Room (for devices) so people can find them the way they think of their home. */
  room?: string;
  /** The adapter that owns the thing and carries its commands to the wire. */
  adapter: string;
  properties: Record<string, PropertySpec>;
  actions: Record<string, ActionSpec>;
  events?: Record<string, EventSpec>;
  /** Adapter-private data (discovery topics, payloads, credentials' ids…); never sent to clients raw. */
  meta?: Record<string, unknown>;
  createdAt: string;
  updatedAt: string;
}

/** Thing ids are readable slugs (`living-room-fan`): lower case letters, digits, `-`, `_` and `.`. */
export const THING_ID_PATTERN = /^[a-z0-9][a-z0-9._-]{0,127}$/;

export function slugify(text: string): string {
  const slug = text
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-')
    .replace(/^[-._]+|[-._]+$/g, '')
    .replace(/-{2,}/g, '-')
    .slice(0, 120);
  return slug || 'thing';
}

/**
 * Letters of their own rather than a base letter with a mark, which NFKD leaves as they are: each
 * folded as people write it without the letter (Bjørn → bjorn, Æsa → aesa, Strauß → strauss).
 */
const OWN_LETTERS: Record<string, string> = {
  ø: 'o',
  æ: 'ae',
  œ: 'oe',
  ß: 'ss',
  đ: 'd',
  ð: 'd',
  þ: 'th',
  ł: 'l',
  ı: 'i',
  ħ: 'h',
  ŧ: 't',
  ŋ: 'n',
};

/**
 * The id for a new thing named `name`: its slug with every accented letter folded to its base
 * letter (`Zoë Ünïcødé` → `zoe-unicode`), the kind itself when the name has no letter or digit
 * to keep (an emoji: `person`), and the name with its kind after it when the slug is an id kept
 * for something else (`household` → `household-person`). Only for new things: ids already given
 * stay as they are, so this may read names better over time without moving anyone.
 */
export function idFromName(name: string, kind: ThingKind, reserved: ReadonlySet<string> = new Set()): string {
  const folded = name
    .normalize('NFKD')
    .replace(/\p{M}/gu, '')
    .toLowerCase()
    .replace(/./gu, (letter) => OWN_LETTERS[letter] ?? letter);
  if (!/[a-z0-9]/.test(folded)) return kind;
  const slug = slugify(folded);
  return reserved.has(slug) ? `${slug}-${kind}` : slug;
}

/** Builds the property map for a set of vocabulary properties, e.g. ['light.on', 'light.brightness']. */
export function vocabularyProperties(names: string[]): Record<string, PropertySpec> {
  const props: Record<string, PropertySpec> = {};
  for (const name of names) {
    const schema = propertySchema(name);
    if (!schema) throw new Error(`unknown vocabulary property ${name}`);
    props[name] = { schema };
  }
  return props;
}

/** Builds the action map for the named actions of one capability, e.g. ('light', ['turn_on']). */
export function vocabularyActions(capability: string, names?: string[]): Record<string, ActionSpec> {
  if (!isCapability(capability)) throw new Error(`unknown capability ${capability}`);
  const all: Record<string, ActionDefinition> = capabilities[capability].actions;
  const actions: Record<string, ActionSpec> = {};
  for (const name of names ?? Object.keys(all)) {
    const def = actionDefinition(capability, name);
    if (!def) throw new Error(`unknown action ${capability}.${name}`);
    actions[name] = { capability, title: def.title, input: def.input };
  }
  return actions;
}

/**
 * Finds an action on a thing by its plain name (`turn_on`) or qualified name (`light.turn_on`).
 * Returns the key under which the thing lists it.
 */
export function resolveAction(thing: Thing, action: string): { key: string; spec: ActionSpec } | undefined {
  if (Object.hasOwn(thing.actions, action)) return { key: action, spec: thing.actions[action] };
  const dot = action.indexOf('.');
  if (dot > 0) {
    const capability = action.slice(0, dot);
    const name = action.slice(dot + 1);
    const spec = Object.hasOwn(thing.actions, name) ? thing.actions[name] : undefined;
    if (spec && spec.capability === capability) return { key: name, spec };
  }
  return undefined;
}

/** The capabilities a thing offers, from its properties and actions. */
export function thingCapabilities(thing: Thing): string[] {
  const set = new Set<string>();
  for (const name of Object.keys(thing.properties)) set.add(name.split('.', 1)[0]);
  for (const spec of Object.values(thing.actions)) set.add(spec.capability);
  return [...set].sort();
}
