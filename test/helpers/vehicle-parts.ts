import { LocalBus } from '../../src/core/bus.ts';
import { VirtualClock } from '../../src/core/clock.ts';
import { CommandService } from '../../src/core/commands.ts';
import { HubCore } from '../../src/core/core.ts';
import type { HubEvent, StateChanged } from '../../src/core/events.ts';
import { createLogger } from '../../src/core/log.ts';
import { TwinRegistry } from '../../src/core/twin.ts';
import { openStore } from '../../src/store/index.ts';
import {
  CHARGING_SESSION_EVENT,
  type ChargingSessionRecord,
  ChargingSessionRecorder,
} from '../../src/vehicles/charging.ts';
import { vehicleThing } from '../../src/vehicles/thing.ts';
import { TRIP_EVENT, type TripRecord, TripRecorder } from '../../src/vehicles/trips.ts';

export const PARTS_HOUSEHOLD = 'home';
export const PARTS_CAR = 'family-car';
export const PARTS_STOP_GRACE_MS = 60_000;

/** Event ids in the order the reports are made, across every hub a test boots. */
let seq = 0;

/**
 * A hub's worth of vehicle parts over a SQLite store file, at `now` on a virtual clock: the twin
 * holds the car (attached at `attachedAt`) with the latest stored values, as the hub's does at a
 * start, and the bus collects the trips and charging sessions recorded. For restarts mid-drive or
 * mid-charge: boot, report, close the store, boot again on the same file.
 */
export async function bootVehicleParts(file: string, now: number, attachedAt = 0) {
  const store = await openStore({ kind: 'sqlite', file });
  const clock = new VirtualClock(now);
  const bus = new LocalBus();
  const twins = new TwinRegistry();
  twins.put({
    ...vehicleThing({ id: PARTS_CAR, householdId: PARTS_HOUSEHOLD, name: 'Family car', viss: 'ws://x' }),
    createdAt: new Date(attachedAt).toISOString(),
    updatedAt: new Date(attachedAt).toISOString(),
  });
  for (const value of await store.latestValues(PARTS_HOUSEHOLD)) {
    twins.get(PARTS_HOUSEHOLD, value.thing)?.state.set(value.property, { value: value.value, ts: value.ts });
  }
  const trips: TripRecord[] = [];
  const charges: ChargingSessionRecord[] = [];
  bus.subscribe((event: HubEvent) => {
    if (event.type === TRIP_EVENT) trips.push((event as unknown as { data: TripRecord }).data);
    if (event.type === CHARGING_SESSION_EVENT) charges.push((event as unknown as { data: ChargingSessionRecord }).data);
  });
  const recorder = new TripRecorder({ bus, clock, twins, stopGraceMs: PARTS_STOP_GRACE_MS });
  const log = createLogger({ level: 'silent' });
  const commands = new CommandService({ clock, bus, store, twins, adapters: new Map(), log, defaultTimeoutMs: 5000 });
  const core = new HubCore({ clock, bus, store, twins, commands, log });
  const charging = new ChargingSessionRecorder({ bus, clock, twins, core });
  /** Reports a value as the car's adapter would: twin, bus, and history. */
  const report = async (ts: number, values: Record<string, unknown>) => {
    const changes: StateChanged[] = [];
    for (const [property, value] of Object.entries(values)) {
      const twin = twins.get(PARTS_HOUSEHOLD, PARTS_CAR);
      if (!twin) throw new Error('the car is not in the twin');
      const from = twin.state.get(property)?.value ?? null;
      twin.state.set(property, { value, ts });
      changes.push({
        type: 'state',
        id: `evt_${String(ts).padStart(14, '0')}${String(seq++).padStart(6, '0')}`,
        householdId: PARTS_HOUSEHOLD,
        ts,
        cause: null,
        thing: PARTS_CAR,
        property,
        from,
        to: value,
        source: 'test',
      } as StateChanged);
    }
    await store.appendHistory(changes);
    for (const change of changes) bus.publish(change);
  };
  return { store, clock, recorder, trips, report, charging, charges };
}
