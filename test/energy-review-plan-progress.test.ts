import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { VirtualClock } from '../src/core/clock.ts';
import type { Hub } from '../src/core/hub.ts';
import { vocabularyProperties } from '../src/model/thing.ts';
import { eventually, tempDir } from './helpers/hub-process.ts';
import { OcppChargePoint, startOcppHub } from './helpers/ocpp-charge-point.ts';

/**
 * A plan for an amount of energy ("10 kWh by tonight") with part of it delivered: what it has had
 * is on disk as it goes, so a hub that crashes (and never gets to save on its way out) does not
 * plan the delivered energy a second time when it starts again.
 */

const START = Date.UTC(2026, 5, 10, 18);
const PASSWORD = 'Review-Progress-0123456789';

describe('energy review: an energy plan’s progress on disk', () => {
  const clock = new VirtualClock(START);
  const cps: OcppChargePoint[] = [];
  let hub: Hub;
  let dataDir = '';
  let ocpp: Awaited<ReturnType<typeof startOcppHub>>;
  /** The owner's API: a POST with a JSON body, or a GET without one. */
  const api = (method: 'GET' | 'POST', path: string, body?: unknown) => ocpp.api(path, method, body);

  before(async () => {
    dataDir = await tempDir();
    ocpp = await startOcppHub(clock, [], { dataDir, energy: { efficiency: 1, tickMs: 10_000 } });
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

  it('keeps the energy delivered towards the plan on disk while it charges, not only at a clean stop', async () => {
    const registered = await api('POST', '/api/chargers', {
      chargePointId: 'CP-PROGRESS',
      name: 'Barn',
      password: PASSWORD,
    });
    assert.equal(registered.status, 201, JSON.stringify(registered.body));
    const charger = registered.body.id as string;
    // 10 kWh by 23:00, five hours on.
    const plan = await api('POST', '/api/energy/plans', { vehicle: 'car', charger, energyKwh: 10, by: '23:00' });
    assert.equal(plan.status, 201, JSON.stringify(plan.body));

    const path = (registered.body.ocpp as { path: string }).path;
    const cp = await OcppChargePoint.open(`${ocpp.wsUrl}${path}`, 'CP-PROGRESS', PASSWORD);
    cps.push(cp);
    const at = () => new Date(clock.now()).toISOString();
    await cp.call('StatusNotification', { connectorId: 1, errorCode: 'NoError', status: 'Preparing', timestamp: at() });
    const { transactionId } = await cp.call('StartTransaction', {
      connectorId: 1,
      idTag: 'B4A63CDF',
      meterStart: 0,
      timestamp: at(),
    });
    await cp.call('StatusNotification', { connectorId: 1, errorCode: 'NoError', status: 'Charging', timestamp: at() });
    await clock.advance(30_000);
    await cp.call('MeterValues', {
      connectorId: 1,
      transactionId,
      meterValue: [
        {
          timestamp: at(),
          sampledValue: [
            { value: '3000', measurand: 'Energy.Active.Import.Register', unit: 'Wh' },
            { value: '11000', measurand: 'Power.Active.Import', unit: 'W' },
          ],
        },
      ],
    });
    // Two minutes of control steps: the hub has counted the 3 kWh towards the plan.
    await clock.advance(120_000);
    const live = await eventually(async () => {
      const { body } = await api('GET', `/api/energy/plans/${charger}`);
      return (body.neededKwh as number) < 10 && body;
    });
    assert.ok(Math.abs((live.neededKwh as number) - 7) < 0.01, JSON.stringify(live));

    // What a crash now would leave behind: the plan as the site thing holds it on disk.
    const onDisk = await eventually(() => {
      const reader = new Database(join(dataDir, 'triad.db'), { readonly: true, fileMustExist: true });
      try {
        const row = reader.prepare("SELECT body FROM things WHERE id = 'site'").get() as { body: string } | undefined;
        const plans = (
          JSON.parse(row?.body ?? '{}') as { meta?: { energy?: { plans?: Array<Record<string, number>> } } }
        ).meta?.energy?.plans;
        return plans?.[0];
      } finally {
        reader.close();
      }
    });
    assert.ok(Math.abs((onDisk.deliveredKwh ?? 0) - 3) < 0.01, JSON.stringify(onDisk));
  });
});
