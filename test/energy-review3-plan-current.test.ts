import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { VirtualClock } from '../src/core/clock.ts';
import type { Hub } from '../src/core/hub.ts';
import { type ChargerLimits, shareHeadroom, wantedCurrent, wattsPerAmp } from '../src/energy/modes/charge-mode.ts';
import { SolarSurplus } from '../src/energy/modes/solar-surplus.ts';
import { vocabularyProperties } from '../src/model/thing.ts';
import { OcppChargePoint, startOcppHub } from './helpers/ocpp-charge-point.ts';

/**
 * A charge plan is met: the current the hub gives the charger for a planned slot draws at least
 * the slot's planned power (10.58 A planned went out as 10 A, and the car missed its departure
 * target by 0.4 kW an hour), never more than the charger or the site's fuse allow.
 */

const START = Date.UTC(2026, 5, 10, 18);
const PASSWORD = 'Review3-PlanAmps-0123456789';
const THREE_PHASE: ChargerLimits = { minCurrentA: 6, maxCurrentA: 16, phases: 3, voltage: 230 };

describe('energy review 3: the planned current meets the plan', () => {
  const clock = new VirtualClock(START);
  const cps: OcppChargePoint[] = [];
  let hub: Hub;
  let ocpp: Awaited<ReturnType<typeof startOcppHub>>;

  before(async () => {
    ocpp = await startOcppHub(clock, [], { energy: { efficiency: 1, tickMs: 10_000 } });
    hub = ocpp.hub;
    await hub.core.upsertThing({
      id: 'car',
      householdId: hub.householdId,
      kind: 'vehicle',
      name: 'Car',
      adapter: 'core',
      properties: vocabularyProperties(['battery.level', 'battery.capacity', 'charging.connected']),
      actions: {},
    });
  });
  after(async () => {
    for (const cp of cps) await cp.close();
    await hub?.stop();
  });

  /** Sets the site up, registers a charge point and plans `energyKwh` for the car by 22:00 on it. */
  async function planOn(siteConfig: Record<string, unknown>, chargePointId: string, energyKwh: number) {
    const site = await ocpp.api('/api/energy/site', 'PUT', siteConfig);
    assert.equal(site.status, 200, JSON.stringify(site.body));
    const registered = await ocpp.api('/api/chargers', 'POST', {
      chargePointId,
      name: chargePointId,
      password: PASSWORD,
    });
    assert.equal(registered.status, 201, JSON.stringify(registered.body));
    const charger = registered.body.id as string;
    const plan = await ocpp.api('/api/energy/plans', 'POST', { vehicle: 'car', charger, energyKwh, by: '22:00' });
    assert.equal(plan.status, 201, JSON.stringify(plan.body));
    return { registered, charger, plan };
  }

  it('sends a current that draws the planned 7.3 kW (10.6 A on three phases), not 10 A', async () => {
    // 11 kW connection, 3.7 kW kept for the house: the plan has 7.3 kW, for four hours.
    const { registered, plan } = await planOn({ limitKw: 11, houseReserveKw: 3.7 }, 'CP-AMPS', 29.2);
    const slots = plan.body.slots as Array<{ powerKw: number }>;
    assert.ok(slots.length > 0 && slots.every((s) => Math.abs(s.powerKw - 7.3) < 1e-3), JSON.stringify(slots));

    const path = (registered.body.ocpp as { path: string }).path;
    const cp = await OcppChargePoint.open(`${ocpp.wsUrl}${path}`, 'CP-AMPS', PASSWORD);
    cps.push(cp);
    await cp.call('BootNotification', { chargePointVendor: 'VendorX', chargePointModel: 'Wallbox' });
    const at = () => new Date(clock.now()).toISOString();
    await cp.call('StatusNotification', { connectorId: 1, errorCode: 'NoError', status: 'Preparing', timestamp: at() });
    await cp.call('StartTransaction', { connectorId: 1, idTag: 'B4A63CDF', meterStart: 0, timestamp: at() });
    await cp.call('StatusNotification', { connectorId: 1, errorCode: 'NoError', status: 'Charging', timestamp: at() });
    const advancing = clock.advance(20_000);
    const profile = (await cp.answer('SetChargingProfile', { status: 'Accepted' })) as {
      csChargingProfiles: { chargingSchedule: { chargingSchedulePeriod: Array<{ limit: number }> } };
    };
    await advancing;
    const [{ limit }] = profile.csChargingProfiles.chargingSchedule.chargingSchedulePeriod;
    assert.ok(limit * 690 >= 7300, `${limit} A on three phases draws ${limit * 690} W, under the planned 7300 W`);
    assert.ok(limit <= 16 && limit * 690 <= 11_000, `${limit} A is over the charger's 16 A or the 11 kW fuse`);
  });

  it('plans with the power the control step gives while the house cannot be measured, and says when it falls short', async () => {
    // A grid meter that has never reported (or has gone): the step keeps half the 11 kW connection
    // for the house, so 40 kWh in four hours cannot be had at 5.5 kW.
    await hub.core.upsertThing({
      id: 'grid-meter',
      householdId: hub.householdId,
      kind: 'device',
      name: 'Grid meter',
      adapter: 'core',
      properties: vocabularyProperties(['sensor.power']),
      actions: {},
    });
    const { charger, plan } = await planOn({ grid: 'grid-meter', limitKw: 11 }, 'CP-RESERVE', 40);
    const live = await ocpp.api('/api/energy/site');
    const headroomKw = (live.body as { headroomW?: number; reading?: { headroomW?: number } }).reading?.headroomW;
    const slots = plan.body.slots as Array<{ powerKw: number }>;
    const most = Math.max(...slots.map((s) => s.powerKw));
    assert.ok(
      most <= 5.5 + 1e-9,
      `the plan has ${most} kW where the step gives 5.5 kW (${JSON.stringify(live.body)}, ${headroomKw})`,
    );
    assert.equal(plan.body.feasible, false, 'the plan says it cannot be met');
    const removed = await ocpp.api(`/api/energy/plans/${charger}`, 'DELETE');
    assert.ok(removed.status < 300, JSON.stringify(removed.body));
  });
});

describe('energy review 3: the current for a planned power', () => {
  const limits = fc.record({
    minCurrentA: fc.integer({ min: 6, max: 10 }),
    maxCurrentA: fc.integer({ min: 10, max: 32 }),
    phases: fc.constantFrom(1 as const, 3 as const),
    voltage: fc.constantFrom(220, 230, 240),
  });

  it('draws at least the planned power the charger can give, never above its maximum, and keeps it under a headroom that holds it', () => {
    fc.assert(
      fc.property(
        limits,
        fc.double({ min: 0.01, max: 30, noNaN: true }),
        fc.constantFrom('smart', 'minsolar', 'solar'),
        (l, plannedKw, mode) => {
          const current = wantedCurrent({
            mode: mode as 'smart',
            limits: l,
            now: START,
            surplusW: 0,
            solar: new SolarSurplus({ onThresholdW: 1400, offThresholdW: 0, onDelayMs: 0, offDelayMs: 0 }),
            plannedKw,
          });
          const atMost = (l.maxCurrentA * wattsPerAmp(l)) / 1000;
          assert.ok(current <= l.maxCurrentA, `${current} A over the charger's ${l.maxCurrentA} A`);
          assert.ok(
            (current * wattsPerAmp(l)) / 1000 >= Math.min(plannedKw, atMost) - 1e-9,
            `${current} A gives ${(current * wattsPerAmp(l)) / 1000} kW, under the planned ${plannedKw} kW`,
          );
          // A site whose headroom has room for the plan at 0.1 A keeps the current as it is.
          const headroomW = Math.ceil(current * wattsPerAmp(l));
          const shared = shareHeadroom([{ id: 'c', currentA: current, limits: l }], headroomW).get('c') ?? 0;
          assert.equal(shared, current);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('never shares more than the headroom', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 0, max: 32, noNaN: true }), { minLength: 1, maxLength: 3 }),
        fc.double({ min: 0, max: 50_000, noNaN: true }),
        (wants, headroomW) => {
          const shares = shareHeadroom(
            wants.map((currentA, i) => ({ id: String(i), currentA, limits: THREE_PHASE })),
            headroomW,
          );
          const total = [...shares.values()].reduce((sum, a) => sum + a * wattsPerAmp(THREE_PHASE), 0);
          const wanted = wants.reduce((sum, a) => sum + a * wattsPerAmp(THREE_PHASE), 0);
          assert.ok(total <= Math.max(headroomW, 0) + 1e-6 || (total <= wanted + 1e-6 && wanted <= headroomW));
        },
      ),
    );
  });
});
