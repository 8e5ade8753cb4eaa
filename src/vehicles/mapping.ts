import type { VissMapping } from '../adapters/viss/adapter.ts';
import { isVissError } from '../adapters/viss/errors.ts';
import { fromWire } from '../adapters/viss/tree.ts';
import { VSS_NODES } from '../adapters/viss/vss-nodes.ts';
import type { Report } from '../core/events.ts';
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

/** How a Triad vehicle maps onto VSS, for the VISS client adapter. */
export const vehicleMapping: VissMapping = {
  paths: (thing) =>
    Object.values(thing.properties)
      .map((spec) => spec.binding)
      .filter((path): path is string => typeof path === 'string' && path in VSS_NODES),

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
    // A trip or a charge starts and ends on these. A batch (the reads after a reconnect, a car that
    // sends all its signals in one event) is all in the twin before any of its changes is heard: a
    // start reads the car as it stood before it (TwinRegistry.valueBefore), so a trip the car began
    // while out of reach begins where it stood, and an end reads it as the batch left it, so one it
    // ended meanwhile ends where it parked. A start is heard first, so the trip or charge is under
    // way when the batch's place and counters are heard (its route takes the new place, a counter
    // it did not know yet becomes its start); an end last, once the route has the place it ended.
    const phase = (report: Report) => {
      const begins = BEGINS[report.property];
      return begins === undefined ? 1 : begins(report.value) ? 0 : 2;
    };
    // The sort is stable: otherwise the car's own order holds.
    return reports.sort((a, b) => phase(a) - phase(b));
  },

  writes: (command) => {
    const writes = writesFor(command.action, command.input);
    if (!Array.isArray(writes)) throw writes;
    return writes;
  },
};
