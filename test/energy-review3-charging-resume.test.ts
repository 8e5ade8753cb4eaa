import assert from 'node:assert/strict';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { LocalBus } from '../src/core/bus.ts';
import { VirtualClock } from '../src/core/clock.ts';
import { CommandService } from '../src/core/commands.ts';
import { HubCore } from '../src/core/core.ts';
import type { HubEvent, StateChanged } from '../src/core/events.ts';
import { createLogger } from '../src/core/log.ts';
import { TwinRegistry } from '../src/core/twin.ts';
import { openStore } from '../src/store/index.ts';
import type { Store } from '../src/store/store.ts';
import {
  CHARGING_SESSION_EVENT,
  type ChargingSessionRecord,
  ChargingSessionRecorder,
} from '../src/vehicles/charging.ts';
import { vehicleThing } from '../src/vehicles/thing.ts';
import { TRIP_EVENT, type TripRecord, TripRecorder } from '../src/vehicles/trips.ts';
import { tempDir } from './helpers/hub-process.ts';

/**
 * A car detached mid-charge and another attached under its name before a restart: the charge that
 * was running is the detached car's, and the new car must not record it as its own session when
 * the hub, started again, hears the new car is not charging. Trips had the same edge (see
 * vehicles-resume.test.ts); a real SQLite file is written and reopened.
 */
const HOUSEHOLD = 'home';
const CAR = 'family-car';
const GRACE_MS = 60_000;
const T0 = Date.UTC(2026, 10, 2, 8, 0, 0);

describe('vehicles: a charge under way is resumed only for the car it belongs to', () => {
  let file: string;
  let seq = 0;

  beforeEach(async () => {
    file = join(await tempDir(), 'triad.db');
  });

  /** A hub's worth of parts over the store file: the twin holds the car, the bus collects trips. */
  async function boot(now: number, attachedAt = 0) {
    const store = await openStore({ kind: 'sqlite', file });
    const clock = new VirtualClock(now);
    const bus = new LocalBus();
    const twins = new TwinRegistry();
    twins.put({
      ...vehicleThing({ id: CAR, householdId: HOUSEHOLD, name: 'Family car', viss: 'ws://x' }),
      createdAt: new Date(attachedAt).toISOString(),
      updatedAt: new Date(attachedAt).toISOString(),
    });
    // The twin starts from the latest stored values, as the hub's does.
    for (const value of await store.latestValues(HOUSEHOLD)) {
      twins.get(HOUSEHOLD, value.thing)?.state.set(value.property, { value: value.value, ts: value.ts });
    }
    const trips: TripRecord[] = [];
    const charges: ChargingSessionRecord[] = [];
    bus.subscribe((event: HubEvent) => {
      if (event.type === TRIP_EVENT) trips.push((event as unknown as { data: TripRecord }).data);
      if (event.type === CHARGING_SESSION_EVENT)
        charges.push((event as unknown as { data: ChargingSessionRecord }).data);
    });
    const recorder = new TripRecorder({ bus, clock, twins, stopGraceMs: GRACE_MS });
    const log = createLogger({ level: 'silent' });
    const commands = new CommandService({ clock, bus, store, twins, adapters: new Map(), log, defaultTimeoutMs: 5000 });
    const core = new HubCore({ clock, bus, store, twins, commands, log });
    const charging = new ChargingSessionRecorder({ bus, clock, twins, core });
    /** Reports a value as the car's adapter would: twin, bus, and history. */
    const report = async (ts: number, values: Record<string, unknown>) => {
      const changes: StateChanged[] = [];
      for (const [property, value] of Object.entries(values)) {
        const twin = twins.get(HOUSEHOLD, CAR)!;
        const from = twin.state.get(property)?.value ?? null;
        twin.state.set(property, { value, ts });
        changes.push({
          type: 'state',
          id: `evt_${String(ts).padStart(14, '0')}${String(seq++).padStart(6, '0')}`,
          householdId: HOUSEHOLD,
          ts,
          cause: null,
          thing: CAR,
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

  let open: Store | null = null;
  afterEach(async () => {
    await open?.close();
    open = null;
  });

  /** The hub started again at `now`: its store closed after the test, one recorder resumed (not started). */
  async function restart(now: number, resume: 'recorder' | 'charging', attachedAt?: number) {
    const hub = await boot(now, attachedAt);
    open = hub.store;
    await hub[resume].resume(hub.store, [HOUSEHOLD]);
    return hub;
  }

  /** A hub before the restart with the car charging from T0, half an hour in. */
  async function chargeAndStop() {
    const first = await boot(T0);
    first.charging.start();
    await first.report(T0 - 60_000, {
      'charging.charging': false,
      'vehicle.charged_energy': 1000,
      'battery.level': 40,
      'battery.capacity': 60,
    });
    await first.report(T0, { 'charging.charging': true, 'charging.power': 7 });
    await first.report(T0 + 30 * 60_000, { 'charging.power': 11, 'vehicle.charged_energy': 1005, 'battery.level': 48 });
    first.charging.stop();
    await first.store.close();
  }

  it('a car attached under the name of one detached mid-charge does not take up its session after a restart', async () => {
    await chargeAndStop();
    const attachedAt = T0 + 40 * 60_000;
    const hub = await restart(T0 + 45 * 60_000, 'charging', attachedAt);
    hub.charging.start();
    await hub.report(T0 + 50 * 60_000, {
      'charging.charging': false,
      'vehicle.charged_energy': 20,
      'battery.level': 70,
    });
    assert.deepEqual(hub.charges, [], 'the new car, not charging, has had no charging session');
    hub.charging.stop();
  });

  it('a car attached after its counters were last heard of counts its own charge from its own readings', async () => {
    await chargeAndStop();
    // The new car, attached at +40 min, charges from +42 min; its counters come after.
    const attachedAt = T0 + 40 * 60_000;
    const second = await boot(T0 + 41 * 60_000, attachedAt);
    second.charging.start();
    await second.report(T0 + 42 * 60_000, { 'charging.charging': true });
    second.charging.stop();
    await second.store.close();

    const hub = await restart(T0 + 45 * 60_000, 'charging', attachedAt);
    hub.charging.start();
    await hub.report(T0 + 50 * 60_000, { 'vehicle.charged_energy': 20, 'battery.level': 70, 'charging.power': 3 });
    await hub.report(T0 + 60 * 60_000, { 'vehicle.charged_energy': 23, 'battery.level': 75 });
    await hub.report(T0 + 61 * 60_000, { 'charging.charging': false });
    assert.equal(hub.charges.length, 1);
    const [session] = hub.charges;
    assert.equal(session.start, new Date(T0 + 42 * 60_000).toISOString(), "from the new car's own start");
    assert.equal(session.energyKwh, 3, "its own counter, not the detached car's 1005 kWh");
    assert.equal(session.startLevel, 70, "the detached car's 48 % is not its start");
    assert.equal(session.maxPowerKw, 3, "the detached car's 11 kW is not its peak");
    hub.charging.stop();
  });
});
