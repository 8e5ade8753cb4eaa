import type { PropertyInfo, Thing } from './api/types.ts';

/**
 * What every view calls a thing's properties: the Home view's readings, the History view's
 * selector, chart and heading, the car's facts and its controls all ask here, so a property reads
 * the same everywhere, and no two properties of one thing share a name.
 */

/** The part of a thing its labels depend on. */
export type Labelled = Pick<Thing, 'kind' | 'properties'>;

/** Properties whose name, said as is, is unclear ("Level" of what?) or reads badly. */
const LABELS: Record<string, string> = {
  'battery.level': 'Battery level',
  'battery.range': 'Range',
  'battery.capacity': 'Battery capacity',
  'charging.connected': 'Plugged in',
  'charging.charging': 'Charging',
  'charging.power': 'Charging power',
  'charging.limit': 'Charge limit',
  'charging.current_limit': 'Current limit',
  // The energy of the charge under way (or the last one), not a meter's total.
  'charging.energy': 'Energy this charge',
  'charging.time_to_complete': 'Time to charge limit',
  'light.color_temp': 'Colour temperature',
  'location.accuracy': 'Location accuracy',
  'presence.home': 'At home',
  'site.charge_power': 'Car charging power',
  // Signed (into the battery, negative out of it), as a chart of it shows about its zero line; the
  // hub's title says so at length, too long for a heading or a list of readings.
  'vehicle.battery_power': 'Battery power',
  'vehicle.vin': 'VIN',
  'vehicle.charged_energy': 'Lifetime energy charged',
  'vehicle.consumed_energy': 'Lifetime energy used',
};

/** Where a kind of thing needs a name of its own for a property. */
const BY_KIND: Record<string, Record<string, string>> = {
  // A charge point's meter runs on from charge to charge; beside "Energy this charge" it is the reading.
  charger: { 'sensor.energy': 'Meter reading' },
  vehicle: {
    // The driver's door speaks for central locking; the other doors have their own properties.
    'lock.locked': 'Central locking',
    // Beside the outside temperature, the climate's "current" temperature is the cabin's.
    'climate.current_temperature': 'Cabin temperature',
    'climate.target_temperature': 'Cabin target temperature',
    'climate.mode': 'Climate mode',
  },
};

/** A car's doors as `vehicle.door_<door>_locked|open` and `vehicle.window_<door>` name them. */
const DOORS: Record<string, string> = {
  front_driver: 'Driver’s door',
  front_passenger: 'Front passenger door',
  rear_driver: 'Rear driver-side door',
  rear_passenger: 'Rear passenger-side door',
};
const WINDOWS: Record<string, string> = {
  front_driver: 'Driver’s window',
  front_passenger: 'Front passenger window',
  rear_driver: 'Rear driver-side window',
  rear_passenger: 'Rear passenger-side window',
};

/** `climate.target_temperature` → "Target temperature": a name as people say it, for names no table has. */
function spoken(property: string): string {
  const name = property.includes('.') ? property.slice(property.indexOf('.') + 1) : property;
  const words = name.replace(/_/g, ' ');
  return words.charAt(0).toUpperCase() + words.slice(1);
}

function capabilityOf(property: string): string {
  return property.includes('.') ? property.slice(0, property.indexOf('.')) : '';
}

/** One property's label, before any clash with the thing's other properties is settled. */
function baseLabel(kind: string, property: string, info: Pick<PropertyInfo, 'title'> | undefined): string {
  const own = BY_KIND[kind];
  if (own && Object.hasOwn(own, property)) return own[property];
  if (Object.hasOwn(LABELS, property)) return LABELS[property];
  const door = /^vehicle\.door_(\w+?)_(locked|open)$/.exec(property);
  if (door && Object.hasOwn(DOORS, door[1])) return `${DOORS[door[1]]} ${door[2]}`;
  const window = /^vehicle\.window_(\w+)$/.exec(property);
  // The value is how far it is open (%), so the label says so.
  if (window && Object.hasOwn(WINDOWS, window[1])) return `${WINDOWS[window[1]]} open`;
  // A title the hub has for the property (a car's binding, a discovered entity) before a guess.
  const title = info?.title?.trim();
  return title ? title.charAt(0).toUpperCase() + title.slice(1) : spoken(property);
}

const cache = new WeakMap<object, { kind: string; labels: Map<string, string> }>();

/**
 * Every property of the thing with its label, none shared: properties that would still read
 * alike (two adapters' "Energy") are told apart by their capability, "Energy (sensor)".
 */
export function propertyLabels(thing: Labelled): Map<string, string> {
  const cached = cache.get(thing.properties);
  if (cached && cached.kind === thing.kind) return cached.labels;
  const names = Object.keys(thing.properties);
  const base = new Map(names.map((name) => [name, baseLabel(thing.kind, name, thing.properties[name])]));
  const count = new Map<string, number>();
  for (const label of base.values()) count.set(label.toLowerCase(), (count.get(label.toLowerCase()) ?? 0) + 1);
  const labels = new Map<string, string>();
  for (const [name, label] of base) {
    const clash = (count.get(label.toLowerCase()) ?? 0) > 1 && capabilityOf(name);
    labels.set(name, clash ? `${label} (${capabilityOf(name).replace(/_/g, ' ')})` : label);
  }
  cache.set(thing.properties, { kind: thing.kind, labels });
  return labels;
}

/**
 * What the property is called on this thing, in every view. A property the thing does not (yet)
 * list still gets the label it would have, so a control can name what it sets before a value came.
 */
export function propertyLabel(thing: Labelled, property: string): string {
  return propertyLabels(thing).get(property) ?? baseLabel(thing.kind, property, undefined);
}

/** The label inside a sentence: "Driveway charger meter reading", but "Family car VIN". */
export function inSentence(label: string): string {
  return /^[A-Z]{2}/.test(label) ? label : label.charAt(0).toLowerCase() + label.slice(1);
}

/** What a yes/no property's two values are called: [when true, when false]. */
export type ValueWords = readonly [string, string];

const ON_OFF: ValueWords = ['On', 'Off'];
const YES_NO: ValueWords = ['Yes', 'No'];
const LOCKED: ValueWords = ['Locked', 'Unlocked'];
const OPEN: ValueWords = ['Open', 'Closed'];

/**
 * Yes/no properties whose values have words of their own: "Front door: Locked", "Alex: Away",
 * where "On" would say nothing. Ones no table or pattern knows read "Yes"/"No", which fits a
 * label that asks a question ("Plugged in", "Charging", "Moving").
 */
const VALUE_WORDS: Record<string, ValueWords> = {
  'switch.on': ON_OFF,
  'light.on': ON_OFF,
  'climate.on': ON_OFF,
  'lock.locked': LOCKED,
  // Triad follows Zigbee2MQTT here: contact `true` means the contact is made, the door closed.
  'sensor.contact': ['Closed', 'Open'],
  'sensor.motion': ['Motion', 'Clear'],
  'presence.home': ['Home', 'Away'],
  'vehicle.horn': ['Sounding', 'Silent'],
  'vehicle.hazard_lights': ['Flashing', 'Off'],
};

/** A yes/no property's words, from the table, else from how its name ends (`trunk_locked`, `door_…_open`). */
export function valueWords(property: string): ValueWords {
  if (Object.hasOwn(VALUE_WORDS, property)) return VALUE_WORDS[property];
  if (/[._]locked$/.test(property)) return LOCKED;
  if (/[._]open$/.test(property)) return OPEN;
  if (/[._]on$/.test(property)) return ON_OFF;
  return YES_NO;
}

/** A yes/no value in its property's words: `charging.connected` true → "Yes", `lock.locked` false → "Unlocked". */
export function booleanText(property: string, value: boolean): string {
  const [yes, no] = valueWords(property);
  return value ? yes : no;
}

/**
 * What a thing that is offline shows of its readings: the last ones the hub heard, said with when
 * ("Last seen 14:05"), and never as if they were now. `when` is already formatted (formatWhen).
 */
export function lastSeenWords(when: string | null): string {
  return when ? `Last seen ${when}` : 'Not seen yet';
}

/**
 * What a person whose phones have all gone silent (stale: no fix within the household's
 * `staleAfter`) shows after where they were, so that it reads as last known: "Home · last report
 * 14 h ago". `ago` is how long ago their last report came (formatAge's short form), null when that
 * is not known (no report yet): "Home · last known".
 */
export function lastReportWords(ago: string | null): string {
  return ago ? `last report ${ago} ago` : 'last known';
}

/**
 * The same for screen readers, whole, with `ago` in units spelt out (formatAge's spoken form):
 * "Home when last known: the last report came 14 hours ago".
 */
export function lastReportSpoken(where: string, ago: string | null): string {
  return ago ? `${where} when last known: the last report came ${ago} ago` : `${where} when last known`;
}

/**
 * A person on a map whose phones have all gone silent: "Robin · last known 14 h ago", so their dot
 * reads as where they were, not where they are. `ago` as for lastReportWords.
 */
export function lastKnownMarkerLabel(name: string, ago: string | null): string {
  return ago ? `${name} · last known ${ago} ago` : `${name} · last known`;
}

/** Where a thing that is offline was: "Last known position" rather than "Position". */
export const LAST_KNOWN_POSITION = 'Last known position';
