import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { AutomationEngine } from '../src/automation/index.ts';
import { VirtualClock } from '../src/core/clock.ts';
import { Hub } from '../src/core/hub.ts';
import { createLogger } from '../src/core/log.ts';
import { EnergyService, PLUG_MATCH_MS } from '../src/energy/index.ts';
import { vocabularyProperties } from '../src/model/thing.ts';
import { eventually, tempDir } from './helpers/hub-process.ts';

const HOUR = 3_600_000;
const EVENING = Date.UTC(2026, 5, 10, 21);

/**
 * Issue 6: "an automation can set a plan (when the alarm for tomorrow is set, plan for 80 % by
 * 7:30)". The charger's `plan` action goes through the command path like any other action.
 */
describe('an automation sets a charge plan', () => {
  const clock = new VirtualClock(EVENING);
  let hub: Hub;
  let charger = '';
  const api = async (path: string, init: RequestInit = {}) => {
    const res = await fetch(hub.httpUrl + path, {
      ...init,
      headers: {
        authorization: `Bearer ${hub.ownerToken}`,
        ...(init.body ? { 'content-type': 'application/json' } : {}),
      },
    });
    return { status: res.status, body: (res.status === 204 ? null : await res.json()) as Record<string, unknown> };
  };

  before(async () => {
    hub = new Hub({
      dataDir: await tempDir(),
      http: { port: 0, host: '127.0.0.1' },
      mqtt: { port: 0, host: '127.0.0.1' },
      clock,
      log: createLogger({ level: 'silent' }),
    })
      .use(new EnergyService())
      .use(new AutomationEngine());
    await hub.start();
    const car = { householdId: hub.householdId, kind: 'vehicle' as const, adapter: 'core', actions: {} };
    await hub.core.upsertThing({
      ...car,
      id: 'car',
      name: 'Car',
      properties: vocabularyProperties(['battery.level', 'battery.capacity', 'charging.connected']),
    });
    await hub.core.upsertThing({
      ...car,
      kind: 'device',
      id: 'alarm-clock',
      name: 'Alarm clock',
      properties: vocabularyProperties(['switch.on']),
    });
    hub.core.ingest([
      { householdId: hub.householdId, thing: 'car', property: 'battery.level', value: 40, source: 'test' },
      { householdId: hub.householdId, thing: 'car', property: 'battery.capacity', value: 60, source: 'test' },
      { householdId: hub.householdId, thing: 'car', property: 'charging.connected', value: true, source: 'test' },
      { householdId: hub.householdId, thing: 'alarm-clock', property: 'switch.on', value: false, source: 'test' },
    ]);
    const registered = await api('/api/chargers', {
      method: 'POST',
      body: JSON.stringify({ chargePointId: 'garage-1', name: 'Garage wallbox' }),
    });
    assert.equal(registered.status, 201, JSON.stringify(registered.body));
    charger = registered.body.id as string;
    const slots = Array.from({ length: 24 }, (_, i) => ({
      start: new Date(EVENING + i * HOUR).toISOString(),
      end: new Date(EVENING + (i + 1) * HOUR).toISOString(),
      price: i >= 4 && i < 7 ? 0.08 : 0.3,
    }));
    assert.equal(
      (await api('/api/energy/prices', { method: 'PUT', body: JSON.stringify({ currency: 'EUR', slots }) })).status,
      200,
    );
  });

  after(async () => {
    await hub?.stop();
  });

  it('plans 80 % by the next 07:30 when the alarm is set, through the charger’s plan action', async () => {
    const rule = {
      id: 'plan-on-alarm',
      name: 'Charge for the morning when the alarm is set',
      triggers: [{ trigger: 'state', thing: 'alarm-clock', property: 'switch.on', to: true }],
      actions: [{ action: 'plan', thing: charger, data: { vehicle: 'car', targetSoc: 80, by: '07:30' } }],
    };
    const created = await api('/api/automations', { method: 'POST', body: JSON.stringify(rule) });
    assert.equal(created.status, 201, JSON.stringify(created.body));

    hub.core.ingest([
      { householdId: hub.householdId, thing: 'alarm-clock', property: 'switch.on', value: true, source: 'test' },
    ]);
    await clock.advance(100);
    const plan = await eventually(
      async () => {
        const { body } = await api(`/api/energy/plans/${charger}`);
        return body && body.targetSoc === 80 ? body : null;
      },
      { what: 'the plan the rule set' },
    );
    assert.equal(plan.by, new Date(Date.UTC(2026, 5, 11, 7, 30)).toISOString());
    assert.equal(plan.feasible, true);
    // 40 % → 80 % of 60 kWh is 24 kWh in the battery; the cheap hours come first.
    const slots = plan.slots as Array<{ start: string; energyKwh: number }>;
    assert.ok(slots.length > 0);
    const cheap = slots.filter((s) => {
      const hour = new Date(s.start).getUTCHours();
      return hour >= 1 && hour < 4;
    });
    assert.ok(cheap.length > 0, 'the plan uses the cheapest hours');

    const traces = await api('/api/automations/plan-on-alarm/traces');
    assert.equal(traces.status, 200);
    assert.ok(JSON.stringify(traces.body).includes('plan'));
  });

  it('a plan without a vehicle takes the car of the session under way, however long ago it was plugged in', async () => {
    // No plan names the car any more: only the session can.
    assert.equal((await api(`/api/energy/plans/${charger}`, { method: 'DELETE' })).status, 204);
    // The car plugged in at the start of this suite; the charger's session begins now and takes it.
    hub.core.ingest([
      { householdId: hub.householdId, thing: charger, property: 'charging.connected', value: true, source: 'test' },
    ]);
    await clock.advance(PLUG_MATCH_MS + 20 * 60_000);
    const ok = await api(`/api/things/${charger}/actions/plan`, {
      method: 'POST',
      body: JSON.stringify({ energyKwh: 4, by: new Date(clock.now() + 8 * HOUR).toISOString() }),
    });
    assert.equal(ok.status, 202, JSON.stringify(ok.body));
    const command = await eventually(async () => {
      const { body } = await api(`/api/commands/${ok.body.commandId}`);
      return body.status === 'confirmed' || body.status === 'failed' ? body : null;
    });
    assert.equal(command.status, 'confirmed', JSON.stringify(command));
    assert.equal((await api(`/api/energy/plans/${charger}`)).body.vehicle, 'car');
    hub.core.ingest([
      { householdId: hub.householdId, thing: charger, property: 'charging.connected', value: false, source: 'test' },
    ]);
  });

  it('takes a plan as an action over the API too, and refuses a bad one with nothing stored', async () => {
    const ok = await api(`/api/things/${charger}/actions/plan`, {
      method: 'POST',
      body: JSON.stringify({ vehicle: 'car', energyKwh: 5, by: new Date(EVENING + 10 * HOUR).toISOString() }),
    });
    assert.equal(ok.status, 202);
    const command = await eventually(async () => {
      const { body } = await api(`/api/commands/${ok.body.commandId}`);
      return body.status === 'confirmed' || body.status === 'failed' ? body : null;
    });
    assert.equal(command.status, 'confirmed', JSON.stringify(command));
    const bad = await api(`/api/things/${charger}/actions/plan`, {
      method: 'POST',
      body: JSON.stringify({ targetSoc: 180, by: '07:30' }),
    });
    assert.equal(bad.status, 400);
    // A deadline years ahead would make the planner walk millions of slots on every re-plan.
    const far = await api('/api/energy/plans', {
      method: 'POST',
      body: JSON.stringify({ vehicle: 'car', charger, targetSoc: 90, by: '2099-01-01T00:00:00Z' }),
    });
    assert.equal(far.status, 400, JSON.stringify(far.body));
    const { body } = await api(`/api/energy/plans/${charger}`);
    assert.equal(body.energyKwh !== undefined, true);
    assert.notEqual(body.targetSoc, 180);
  });
});
