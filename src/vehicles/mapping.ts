import type { VissMapping } from '../adapters/viss/adapter.ts';
import { isVissError } from '../adapters/viss/errors.ts';
import { fromWire } from '../adapters/viss/tree.ts';
import { VSS_NODES } from '../adapters/viss/vss-nodes.ts';
import type { Report } from '../core/events.ts';
import type { Thing } from '../model/thing.ts';
import { writesFor } from './actions.ts';
import { signalForPath } from './signals.ts';

/** The properties trips and charging sessions start and end on, and which values start them. */
const BEGINS: Record<string, (value: unknown) => boolean> = {
  'vehicle.moving': (value) => value === true,
  'location.speed': (value) => Number(value) > 0,
  'charging.charging': (value) => value === true,
};

/** Where reports from a car's own VISS server say they came from. */
export const VISS_SOURCE = 'viss';

/** The signals a vehicle follows over VISS: the VSS paths its properties are bound to. */
export function vehiclePaths(thing: Thing): string[] {
  return Object.values(thing.properties)
    .map((spec) => spec.binding)
    .filter((path): path is string => typeof path === 'string' && path in VSS_NODES);
}

/**
 * How a Triad vehicle maps onto VSS, for the VISS client adapter. `current` reads the car's twin as
 * it stands before a batch: the charging power needs both whether the car charges and its
 * battery's power, which seldom come in the same message.
 */
export function vehicleMapping(
  current: (householdId: string, thing: string, property: string) => unknown,
): VissMapping {
  return {
    paths: vehiclePaths,

    reports: (thing, points, now) => {
      const reports: Report[] = [];
      for (const point of points) {
        const signal = signalForPath(point.path);
        const node = VSS_NODES[point.path];
        if (!signal || !node || !Object.hasOwn(thing.properties, signal.property)) continue;
        const typed = fromWire(node, point.value);
        // A value outside the VSS type is the car's bug; the core logs refused reports, so pass it on typed or not at all.
        if (isVissError(typed)) continue;
        reports.push({
          householdId: thing.householdId,
          thing: thing.id,
          property: signal.property,
          value: signal.fromVss ? signal.fromVss(typed) : typed,
          ts: Number.isFinite(point.ts) ? point.ts : now,
          source: VISS_SOURCE,
        });
      }
      const twin = (property: string) => current(thing.householdId, thing.id, property);
      return inOrder(withChargingPower(thing, reports, twin));
    },

    writes: (command) => {
      const writes = writesFor(command.action, command.input);
      if (!Array.isArray(writes)) throw writes;
      return writes;
    },
  };
}

/**
 * Adds the charging power a batch implies: the battery's power while the car charges, none
 * otherwise. Braking, and a wallbox heating a plugged-in cabin, fill the battery without any
 * charge; and a car that says its charge stopped may send its battery's power only later. The
 * power goes next to the charging report it follows from: before a start and after a stop, so the
 * car never shows as charging at 0 kW in between.
 */
function withChargingPower(thing: Thing, reports: Report[], twin: (property: string) => unknown): Report[] {
  if (!Object.hasOwn(thing.properties, 'charging.power')) return reports;
  const charging = reports.findLast((report) => report.property === 'charging.charging');
  const battery = reports.findLast((report) => report.property === 'vehicle.battery_power');
  if (!charging && !battery) return reports;
  const charges = (charging ? charging.value : twin('charging.charging')) === true;
  const batteryKw = battery ? battery.value : twin('vehicle.battery_power');
  // Charging at a power not yet heard: it comes with the battery's next.
  if (charges && typeof batteryKw !== 'number') return reports;
  const power: Report = {
    householdId: thing.householdId,
    thing: thing.id,
    property: 'charging.power',
    value: charges ? Math.max(0, Number(batteryKw)) : 0,
    ts: Math.max(charging?.ts ?? Number.NEGATIVE_INFINITY, battery?.ts ?? Number.NEGATIVE_INFINITY),
    source: VISS_SOURCE,
  };
  if (!charging) return [...reports, power];
  const at = reports.indexOf(charging) + (charges ? 0 : 1);
  return [...reports.slice(0, at), power, ...reports.slice(at)];
}

/**
 * A trip or a charge starts and ends on these. A batch (the reads after a reconnect, a car that
 * sends all its signals in one event) is all in the twin before any of its changes is heard: a
 * start reads the car as it stood before it (TwinRegistry.valueBefore), so a trip the car began
 * while out of reach begins where it stood, and an end reads it as the batch left it, so one it
 * ended meanwhile ends where it parked. A start is heard first, so the trip or charge is under
 * way when the batch's place and counters are heard (its route takes the new place, a counter
 * it did not know yet becomes its start); an end last, once the route has the place it ended.
 * The charging power keeps its place beside the charge's start or end (withChargingPower).
 */
function inOrder(reports: Report[]): Report[] {
  const charging = reports.findLast((report) => report.property === 'charging.charging');
  const phase = (report: Report) => {
    const by = report.property === 'charging.power' && charging ? charging : report;
    const begins = BEGINS[by.property];
    return begins === undefined ? 1 : begins(by.value) ? 0 : 2;
  };
  // The sort is stable: otherwise the car's own order holds.
  return reports.sort((a, b) => phase(a) - phase(b));
}
