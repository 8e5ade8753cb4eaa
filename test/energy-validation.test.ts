import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { VirtualClock } from '../src/core/clock.ts';
import { Hub } from '../src/core/hub.ts';
import { createLogger } from '../src/core/log.ts';
import { EnergyService } from '../src/energy/index.ts';
import { vocabularyProperties } from '../src/model/thing.ts';
import { eventually, tempDir } from './helpers/hub-process.ts';

/**
 * What the energy API refuses up front and what a plan says when it cannot be met: prices that
 * have all ended or are off the quarter hours, a light named as a charger's car, a `by` the plan
 * action took and then failed on, and a plan reaching past the known prices.
 */

const HOUR = 3_600_000;
const START = Date.UTC(2026, 5, 10, 18);

describe('energy validation', () => {
  const clock = new VirtualClock(START);
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
  const put = (path: string, body: unknown) => api(path, { method: 'PUT', body: JSON.stringify(body) });
  const post = (path: string, body: unknown) => api(path, { method: 'POST', body: JSON.stringify(body) });
  const message = (body: Record<string, unknown>) => (body.error as { message?: string } | undefined)?.message ?? '';
  const hourly = (from: number, prices: number[]) =>
    prices.map((price, i) => ({
      start: new Date(from + i * HOUR).toISOString(),
      end: new Date(from + (i + 1) * HOUR).toISOString(),
      price,
    }));

  before(async () => {
    hub = new Hub({
      dataDir: await tempDir(),
      http: { port: 0, host: '127.0.0.1' },
      mqtt: { port: 0, host: '127.0.0.1' },
      clock,
      log: createLogger({ level: 'silent' }),
    }).use(new EnergyService({ mqttChargers: false, efficiency: 0.9 }));
    await hub.start();
    const householdId = hub.householdId;
    await hub.core.upsertThing({
      id: 'car',
      householdId,
      kind: 'vehicle',
      name: 'Car',
      adapter: 'core',
      properties: vocabularyProperties(['battery.level', 'battery.capacity', 'charging.connected']),
      actions: {},
    });
    await hub.core.upsertThing({
      id: 'hall-light',
      householdId,
      kind: 'device',
      name: 'Hall light',
      adapter: 'core',
      properties: vocabularyProperties(['switch.on']),
      actions: {},
    });
    hub.core.ingest([
      { householdId, thing: 'car', property: 'battery.level', value: 40, source: 'test' },
      { householdId, thing: 'car', property: 'battery.capacity', value: 60, source: 'test' },
    ]);
    const registered = await post('/api/chargers', { chargePointId: 'evil', name: 'Garage wallbox' });
    assert.equal(registered.status, 201, JSON.stringify(registered.body));
    charger = registered.body.id as string;
    assert.equal((await put('/api/energy/site', { limitKw: 11 })).status, 200);
    assert.equal((await put('/api/energy/prices', { currency: 'EUR', slots: hourly(START, [0.3, 0.2]) })).status, 200);
  });

  after(async () => {
    await hub?.stop();
  });

  it('refuses prices that have all ended, and slots off the quarter hours, keeping the prices it had', async () => {
    const past = await put('/api/energy/prices', {
      currency: 'EUR',
      slots: [{ start: '2026-06-09T00:00:00Z', end: '2026-06-09T01:00:00Z', price: 0.1 }],
    });
    assert.equal(past.status, 400, JSON.stringify(past.body));
    assert.match(message(past.body), /every slot has ended: the series ends at 2026-06-09T01:00:00\.000Z, before now/);
    const askew = await put('/api/energy/prices', {
      currency: 'EUR',
      slots: [{ start: '2026-06-10T20:05:00Z', end: '2026-06-10T21:05:00Z', price: 0.1 }],
    });
    assert.equal(askew.status, 400, JSON.stringify(askew.body));
    assert.match(message(askew.body), /slot 0 \(2026-06-10T20:05:00\.000Z\) does not start on a quarter hour/);
    const kept = await api('/api/energy/prices');
    assert.deepEqual(
      (kept.body.slots as Array<{ price: number }>).map((s) => s.price),
      [0.3, 0.2],
    );
  });

  it('charges at the times past the known prices, after the priced ones, rather than planning nothing', async () => {
    // Prices for 18:00–20:00 only; 24 kWh by 02:00 at 11 kW needs more than those two hours give.
    const plan = await post('/api/energy/plans', {
      vehicle: 'car',
      charger,
      energyKwh: 24,
      by: new Date(START + 8 * HOUR).toISOString(),
    });
    assert.equal(plan.status, 201, JSON.stringify(plan.body));
    assert.equal(plan.body.feasible, true, JSON.stringify(plan.body));
    assert.equal(plan.body.reason, null);
    assert.equal(plan.body.energyKwh, 24);
    const slots = plan.body.slots as Array<{ start: string; energyKwh: number; priced: boolean; cost: number }>;
    const priced = slots.filter((s) => s.priced);
    // Both priced hours in full (22 kWh), the rest in the first quarter hour after them.
    assert.deepEqual(
      priced.map((s) => [s.start.slice(11, 16), s.energyKwh]),
      [
        ['18:00', 11],
        ['19:00', 11],
      ],
    );
    const unpriced = slots.filter((s) => !s.priced);
    assert.equal(unpriced[0]?.start, '2026-06-10T20:00:00.000Z', JSON.stringify(slots));
    assert.equal(plan.body.unpricedKwh, 2);
    assert.ok(Math.abs((plan.body.cost as number) - (11 * 0.3 + 11 * 0.2)) < 1e-9);
    assert.ok(unpriced.every((s) => s.cost === 0));
    assert.equal((await api(`/api/energy/plans/${charger}`, { method: 'DELETE' })).status, 204);
  });

  it('says why a plan cannot be met', async () => {
    // 40 % → 100 % of 60 kWh with 10 % losses is 40 kWh; one hour at 11 kW gives 11.
    const plan = await post('/api/energy/plans', {
      vehicle: 'car',
      charger,
      targetSoc: 100,
      by: new Date(START + HOUR).toISOString(),
    });
    assert.equal(plan.status, 201, JSON.stringify(plan.body));
    assert.equal(plan.body.feasible, false);
    assert.equal(
      plan.body.reason,
      "the car needs 40 kWh by 19:00 UTC, but 1 h at 11 kW (the site's limit) give at most 11 kWh",
    );
    const listed = await api(`/api/energy/plans/${charger}`);
    assert.equal(listed.body.reason, plan.body.reason);
    assert.equal((await api(`/api/energy/plans/${charger}`, { method: 'DELETE' })).status, 204);
  });

  it('refuses a thing that is not a vehicle as a charger’s car, naming it', async () => {
    const light = await put(`/api/chargers/${charger}/mode`, { mode: 'now', vehicle: 'hall-light' });
    assert.equal(light.status, 400, JSON.stringify(light.body));
    assert.match(message(light.body), /"hall-light" is a device, not a vehicle/);
    assert.equal((await put(`/api/chargers/${charger}/mode`, { mode: 'now', vehicle: 'nobody' })).status, 404);
    const charger_ = (await api('/api/chargers')).body as unknown as Array<{ id: string; vehicle?: string }>;
    assert.equal(charger_.find((c) => c.id === charger)?.vehicle, undefined);
    const planned = await post('/api/energy/plans', {
      vehicle: 'hall-light',
      charger,
      energyKwh: 5,
      by: new Date(START + 4 * HOUR).toISOString(),
    });
    assert.equal(planned.status, 400, JSON.stringify(planned.body));
    assert.equal((await put(`/api/chargers/${charger}/mode`, { mode: 'now', vehicle: 'car' })).status, 200);
  });

  it("plans for the charger's own car when the body names none, as the plan action does", async () => {
    assert.equal((await put(`/api/chargers/${charger}/mode`, { mode: 'now', vehicle: 'car' })).status, 200);
    const tied = await post('/api/energy/plans', {
      charger,
      energyKwh: 5,
      by: new Date(START + 4 * HOUR).toISOString(),
    });
    assert.equal(tied.status, 201, JSON.stringify(tied.body));
    assert.equal(tied.body.vehicle, 'car');
    assert.equal((await api(`/api/energy/plans/${charger}`, { method: 'DELETE' })).status, 204);
  });

  it('takes the same forms of `by` in the API and the plan action, and refuses a bad one up front with one message', async () => {
    const action = await post(`/api/things/${charger}/actions/plan`, { targetSoc: 85, by: '25:99' });
    assert.equal(action.status, 400, JSON.stringify(action.body));
    const byApi = await post('/api/energy/plans', { vehicle: 'car', charger, targetSoc: 85, by: '25:99' });
    assert.equal(byApi.status, 400, JSON.stringify(byApi.body));
    assert.equal(message(action.body), message(byApi.body));
    assert.match(message(action.body), /by must be an ISO 8601 date and time .* or a time of day HH:MM .*"25:99"/);
    assert.equal((await api(`/api/energy/plans/${charger}`)).status, 404, 'nothing planned');

    // "07:30" is the next 07:30 in the household's time zone (the tariff's): 05:30 UTC in Amsterdam's summer.
    assert.equal((await put('/api/energy/tariff', { currency: 'EUR', timeZone: 'Europe/Amsterdam' })).status, 200);
    const morning = await post('/api/energy/plans', { vehicle: 'car', charger, targetSoc: 85, by: '07:30' });
    assert.equal(morning.status, 201, JSON.stringify(morning.body));
    assert.equal(morning.body.by, '2026-06-11T05:30:00.000Z');
    assert.equal((await api(`/api/energy/plans/${charger}`, { method: 'DELETE' })).status, 204);

    const ok = await post(`/api/things/${charger}/actions/plan`, { vehicle: 'car', targetSoc: 80, by: '07:30' });
    assert.equal(ok.status, 202, JSON.stringify(ok.body));
    const command = await eventually(async () => {
      const { body } = await api(`/api/commands/${ok.body.commandId}`);
      return body.status === 'confirmed' || body.status === 'failed' ? body : null;
    });
    assert.equal(command.status, 'confirmed', JSON.stringify(command));
    assert.equal((await api(`/api/energy/plans/${charger}`)).body.by, '2026-06-11T05:30:00.000Z');
    await put('/api/energy/tariff', { currency: 'EUR' });
  });
});
