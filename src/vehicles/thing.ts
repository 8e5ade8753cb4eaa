import type { PropertySpec, Thing } from '../model/thing.ts';
import { propertySchema } from '../model/vocabulary.ts';
import { vehicleActions } from './actions.ts';
import { VEHICLE_SIGNALS } from './signals.ts';

/** Where a vehicle's VISS endpoint is kept on its thing. */
export interface VehicleMeta {
  viss: string;
}

export function vehicleMeta(thing: Thing): VehicleMeta | undefined {
  const viss = thing.meta?.viss;
  return thing.kind === 'vehicle' && typeof viss === 'string' ? { viss } : undefined;
}

/** A vehicle thing: every signal bound to its VSS path, plus the energy of the running charge. */
export function vehicleThing(input: {
  id: string;
  householdId: string;
  name: string;
  viss: string;
}): Omit<Thing, 'createdAt' | 'updatedAt'> {
  const properties: Record<string, PropertySpec> = {};
  for (const signal of VEHICLE_SIGNALS) {
    properties[signal.property] = { schema: signal.schema, binding: signal.path };
  }
  // Worked out by the hub: the energy from the charged-energy counter, the power from the
  // battery's while the car charges; VSS has neither as such.
  properties['charging.energy'] = { schema: propertySchema('charging.energy')! };
  properties['charging.power'] = { schema: propertySchema('charging.power')! };
  return {
    id: input.id,
    householdId: input.householdId,
    kind: 'vehicle',
    name: input.name,
    adapter: 'viss',
    properties,
    actions: vehicleActions(),
    events: {
      trip: { title: 'A trip ended' },
      charging_session: { title: 'A charging session ended' },
    },
    meta: { viss: input.viss },
  };
}
