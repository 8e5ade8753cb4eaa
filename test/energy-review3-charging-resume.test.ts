import assert from 'node:assert/strict';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { Store } from '../src/store/store.ts';
import { tempDir } from './helpers/hub-process.ts';
import { bootVehicleParts, PARTS_HOUSEHOLD } from './helpers/vehicle-parts.ts';

/**
 * A car detached mid-charge and another attached under its name before a restart: the charge that
 * was running is the detached car's, and the new car must not record it as its own session when
 * the hub, started again, hears the new car is not charging. Trips had the same edge (see
 * vehicles-resume.test.ts); a real SQLite file is written and reopened.
 */
const HOUSEHOLD = PARTS_HOUSEHOLD;
const T0 = Date.UTC(2026, 10, 2, 8, 0, 0);

describe('vehicles: a charge under way is resumed only for the car it belongs to', () => {
  let file: string;

  beforeEach(async () => {
    file = join(await tempDir(), 'triad.db');
  });

  /** A hub's worth of vehicle parts over the test's store file (see bootVehicleParts). */
  const boot = (now: number, attachedAt = 0) => bootVehicleParts(file, now, attachedAt);

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
