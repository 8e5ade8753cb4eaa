import type { Thing } from './api/types.ts';

/** Things that belong in a room: devices (and chargers), not people, phones, vehicles or the energy site. */
export function isDevice(thing: Thing): boolean {
  return !['person', 'tracker', 'household', 'vehicle', 'zone', 'site'].includes(thing.kind);
}

export interface Room {
  name: string;
  devices: Thing[];
}

/** Where devices with no room go: the energy ones together, the rest last. */
const ENERGY_GROUP = 'Energy';
const OTHER_GROUP = 'Other';

/** Properties a meter reports: a thing with only these is a meter (grid, solar, house load). */
const METER_PROPERTIES = new Set(['sensor.power', 'sensor.energy']);

/**
 * A charge point or a power meter: the things of the energy flow, which seldom have a room (a
 * wallbox on the drive, a meter in the cupboard) but read best side by side.
 */
function isEnergyThing(thing: Thing): boolean {
  if (thing.kind === 'charger' || thing.capabilities.includes('charging')) return true;
  const properties = Object.keys(thing.properties);
  return properties.length > 0 && properties.every((p) => METER_PROPERTIES.has(p));
}

function groupOf(thing: Thing): string {
  return thing.room ?? (isEnergyThing(thing) ? ENERGY_GROUP : OTHER_GROUP);
}

/** Rooms first, by name; then the energy group; "Other" last. */
function groupOrder(name: string): number {
  return name === OTHER_GROUP ? 2 : name === ENERGY_GROUP ? 1 : 0;
}

/**
 * Devices grouped by room, rooms in alphabetical order; devices with no room after them, the
 * chargers and meters under "Energy", anything else under "Other".
 */
export function roomsOf(things: Iterable<Thing>): Room[] {
  const rooms = new Map<string, Thing[]>();
  for (const thing of things) {
    if (!isDevice(thing)) continue;
    const room = groupOf(thing);
    rooms.set(room, [...(rooms.get(room) ?? []), thing]);
  }
  return [...rooms.entries()]
    .sort(([a], [b]) => groupOrder(a) - groupOrder(b) || a.localeCompare(b))
    .map(([name, devices]) => ({ name, devices: devices.sort((x, y) => x.name.localeCompare(y.name)) }));
}

export function vehiclesOf(things: Iterable<Thing>): Thing[] {
  return [...things].filter((t) => t.kind === 'vehicle').sort((a, b) => a.name.localeCompare(b.name));
}
