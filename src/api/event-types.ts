import { badRequest } from '../core/errors.ts';

/**
 * Every event type the hub records, as `GET /api/events?type=` filters by it. Each subsystem names
 * its own events; this list is what the API can tell a caller about a misspelt one, so a new kind
 * of event is added here too (the API tests check every type the demo records is in it).
 */
export const EVENT_TYPES = [
  // The core: reported values, commands and the things themselves.
  'state',
  'command',
  'availability',
  'thing.added',
  'thing.updated',
  'thing.removed',
  // Automations (src/automation/runtime).
  'automation.run',
  'automation.notify',
  // A webhook, MQTT, time, cron or sun trigger: the cause of its run (state triggers have theirs).
  'automation.triggered',
  // People (src/people/household.ts; household.updated: PUT /api/household, src/people/service.ts).
  'household.updated',
  'presence.arrived',
  'presence.left',
  'presence.first_arrived',
  'presence.last_left',
  // Energy (src/energy/service.ts).
  'energy.plan',
  'energy.plan.removed',
  'energy.session',
  // Vehicles (src/vehicles: trips and charging sessions).
  'vehicle.trip',
  'vehicle.charging_session',
] as const;

const KNOWN = new Set<string>(EVENT_TYPES);

/**
 * `?type=a,b` as a list of event types, or undefined for all of them. A type the hub never records
 * is a mistake (`type=comand` would otherwise answer an empty list that looks like no commands).
 */
export function parseEventTypes(value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  const types = value
    .split(',')
    .map((type) => type.trim())
    .filter(Boolean);
  if (types.length === 0) return undefined;
  const unknown = types.filter((type) => !KNOWN.has(type));
  if (unknown.length) {
    throw badRequest(
      `unknown event type ${unknown.map((type) => JSON.stringify(type.slice(0, 60))).join(', ')}; the types are ${EVENT_TYPES.join(', ')}`,
    );
  }
  return types;
}
