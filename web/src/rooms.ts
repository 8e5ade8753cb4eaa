import type { Thing } from './api/types.ts';

/** Things that belong in a room: devices (and chargers), not people, phones, vehicles or the energy site. */
export function isDevice(thing: Thing): boolean {
  return !['person', 'tracker', 'household', 'vehicle', 'zone', 'site'].includes(thing.kind);
}

export interface Room {
  name: string;
  devices: Thing[];
}

/** Devices grouped by room, rooms in alphabetical order, unplaced devices last under "Other". */
export function roomsOf(things: Iterable<Thing>): Room[] {
  const rooms = new Map<string, Thing[]>();
  for (const thing of things) {
    if (!isDevice(thing)) continue;
    const room = thing.room ?? 'Other';
    rooms.set(room, [...(rooms.get(room) ?? []), thing]);
  }
  return [...rooms.entries()]
    .sort(([a], [b]) => (a === 'Other' ? 1 : b === 'Other' ? -1 : a.localeCompare(b)))
    .map(([name, devices]) => ({ name, devices: devices.sort((x, y) => x.name.localeCompare(y.name)) }));
}

export function vehiclesOf(things: Iterable<Thing>): Thing[] {
  return [...things].filter((t) => t.kind === 'vehicle').sort((a, b) => a.name.localeCompare(b.name));
}
