import type { Thing } from './api/types.ts';

/** Things that belong in a room: devices (and chargers), not people, phones, vehicles or the energy site. */
export function isDevice(thing: Thing): boolean {
  return !['person', 'tracker', 'household', 'vehicle', 'zone', 'site'].includes(thing.kind);
}

/**
 * A room as its devices name it, or one of the dashboard's own groups of devices with no room:
 * `energy` (chargers and meters) or `other`. A group is told from a room by its kind, never by its
 * name: a room someone called "Energy" or "Other" stays a room of its own.
 */
export type RoomKind = 'room' | 'energy' | 'other';

export interface Room {
  /** Unique among the rooms listed together: a room's own name never equals a group's key. */
  key: string;
  kind: RoomKind;
  name: string;
  devices: Thing[];
}

/** What the groups of devices with no room are called, unless a room already has that name. */
const GROUP_NAMES: Record<Exclude<RoomKind, 'room'>, { name: string; clash: string }> = {
  energy: { name: 'Energy', clash: 'Energy (no room)' },
  other: { name: 'Other', clash: 'Other (no room)' },
};

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

/** The room a device is in; a blank name is no room. */
function roomOf(thing: Thing): string | null {
  return thing.room?.trim() ? thing.room : null;
}

function kindOf(thing: Thing): RoomKind {
  return roomOf(thing) !== null ? 'room' : isEnergyThing(thing) ? 'energy' : 'other';
}

/** Rooms first, by name; then the energy group; the other devices with no room last. */
const ORDER: Record<RoomKind, number> = { room: 0, energy: 1, other: 2 };

/**
 * Devices grouped by room, rooms in alphabetical order; devices with no room after them, the
 * chargers and meters under "Energy", anything else under "Other" (each group named otherwise
 * when a room already bears its name, so two sections never read the same).
 */
export function roomsOf(things: Iterable<Thing>): Room[] {
  const rooms = new Map<string, Omit<Room, 'name'>>();
  const roomNames = new Set<string>();
  for (const thing of things) {
    if (!isDevice(thing)) continue;
    const kind = kindOf(thing);
    const room = roomOf(thing);
    const key = room === null ? kind : `room:${room}`;
    if (room !== null) roomNames.add(room);
    const entry = rooms.get(key) ?? { key, kind, devices: [] };
    entry.devices.push(thing);
    rooms.set(key, entry);
  }
  const nameOf = (room: Omit<Room, 'name'>): string => {
    if (room.kind === 'room') return room.key.slice('room:'.length);
    const group = GROUP_NAMES[room.kind];
    return roomNames.has(group.name) ? group.clash : group.name;
  };
  return [...rooms.values()]
    .map((room) => ({ ...room, name: nameOf(room) }))
    .sort((a, b) => ORDER[a.kind] - ORDER[b.kind] || a.name.localeCompare(b.name))
    .map((room) => ({ ...room, devices: room.devices.sort((x, y) => x.name.localeCompare(y.name)) }));
}

export function vehiclesOf(things: Iterable<Thing>): Thing[] {
  return [...things].filter((t) => t.kind === 'vehicle').sort((a, b) => a.name.localeCompare(b.name));
}
