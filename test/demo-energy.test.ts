import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { VirtualClock } from '../src/core/clock.ts';
import type { Hub } from '../src/core/hub.ts';
import { createLogger } from '../src/core/log.ts';
import { CAR } from '../src/sim/car/physics.ts';
import { SimulatedChargePoint } from '../src/sim/charger/charge-point.ts';
import { startDemoTriad } from './helpers/demo-hub.ts';
import { eventually } from './helpers/hub-process.ts';

/**
 * The demo household's energy site on a hub with every subsystem: the OCPP charge point is plugged
 * into the simulated car, so what its meter counts is what the car's battery gains (less the car's
 * charging losses), its plug drives the transactions, and the session is tied to the car.
 */

const CAR_ID = 'family-car';
/** 21:00 UTC: the car is home from work and plugged in; it leaves at 08:00. */
const START = Date.parse('2026-01-05T21:00:00Z');
const DEPARTURE = Date.parse('2026-01-06T08:00:00Z');

describe('demo energy site', () => {
  const clock = new VirtualClock(START);
  let hub: Hub;
  let charger = '';

  /** The API's JSON answer (an object or a list), failing the test on an error status. */
  const api = async (path: string, init: RequestInit = {}) => {
    const headers = new Headers(init.headers);
    headers.set('authorization', `Bearer ${hub.ownerToken}`);
    if (init.body !== undefined) headers.set('content-type', 'application/json');
    const res = await fetch(hub.httpUrl + path, { ...init, headers });
    const body = await res.json();
    assert.ok(res.ok, `${init.method ?? 'GET'} ${path}: ${res.status} ${JSON.stringify(body)}`);
    return body as Record<string, unknown> & Array<Record<string, unknown>>;
  };
  const state = async (thing: string) => (await api(`/api/things/${thing}`)).state as Record<string, unknown>;
  /** The car's charge (%) and the charger's meter (kWh), read from the twin. */
  const readings = async () => ({
    level: Number((await state(CAR_ID))['battery.level']),
    meterKwh: Number((await state(charger))['sensor.energy']),
  });

  /**
   * Runs simulated time in `stepMs` steps, pausing for real time between them so the OCPP, VISS
   * and MQTT sockets deliver as the clock moves; then lets the last messages arrive.
   */
  const run = async (ms: number, stepMs = 2_000) => {
    for (let t = 0; t < ms; t += stepMs) {
      await clock.advance(Math.min(stepMs, ms - t));
      await delay(2);
    }
    await delay(100);
  };
  const setMode = (mode: string) =>
    api(`/api/chargers/${charger}/mode`, { method: 'PUT', body: JSON.stringify({ mode }) });

  before(async () => {
    hub = await startDemoTriad({ clock });
  });

  after(async () => {
    await hub?.stop();
  });

  it('boots the charge point over OCPP with the car plugged in, tied to the car', async () => {
    const chargers = (await eventually(
      async () => {
        const list = (await api('/api/chargers')) as Array<Record<string, unknown>>;
        return list.some((c) => c.connected === true && c.vendor === 'Triad') && list;
      },
      { what: 'the demo charge point to boot' },
    )) as Array<{ id: string; vehicle?: string; protocol: string }>;
    assert.equal(chargers.length, 1);
    charger = chargers[0].id;
    assert.equal(chargers[0].protocol, 'ocpp1.6');
    assert.equal(chargers[0].vehicle, CAR_ID);
    await eventually(async () => (await state(charger))['charging.connected'] === true, {
      what: 'the charger to report the cable connected',
    });
    await eventually(async () => typeof (await state(CAR_ID))['battery.level'] === 'number', {
      what: "the car's charge in its twin",
    });
  });

  it("in mode now the car's charge rises by what the charger's meter counts, less the car's losses", async () => {
    await setMode('now');
    // A first stretch for the hub to send the current limit and the charge point to start.
    await run(60_000);
    const before = await readings();
    await run(20 * 60_000);
    const after = await readings();
    assert.equal((await state(charger))['charging.status'], 'Charging');
    const meteredKwh = after.meterKwh - before.meterKwh;
    const gainedKwh = ((after.level - before.level) / 100) * CAR.netCapacityKwh;
    // 20 minutes at up to 11 kW: the meter counted a few kWh, and the battery gained them less
    // the on-board charger's losses (the SoC is reported to 0.1 %, 0.064 kWh).
    assert.ok(meteredKwh > 3 && meteredKwh < 3.8, `metered ${meteredKwh} kWh`);
    assert.ok(
      Math.abs(gainedKwh - meteredKwh * CAR.chargerEfficiency) < 0.1,
      `gained ${gainedKwh} kWh for ${meteredKwh} kWh metered`,
    );
  });

  it('in mode off the car gains no charge and the meter stands still', async () => {
    await setMode('off');
    await run(60_000);
    const before = await readings();
    await run(10 * 60_000);
    const after = await readings();
    assert.deepEqual(after, before);
    assert.equal((await state(charger))['charging.status'], 'SuspendedEVSE');
    assert.equal((await state(CAR_ID))['charging.charging'], false);
  });

  it('stops metering when the car reaches its charge limit, though power is offered', async () => {
    await setMode('now');
    // From about 75 % the car reaches its 80 % limit in well under an hour.
    await run(60 * 60_000, 5_000);
    const atLimit = await readings();
    assert.ok(atLimit.level >= 80 && atLimit.level < 80.3, `stopped at ${atLimit.level} %`);
    assert.equal((await state(charger))['charging.status'], 'SuspendedEV');
    await run(10 * 60_000, 5_000);
    assert.deepEqual(await readings(), atLimit);
  });

  it('stops the transaction when the car leaves, and lists the session with the car and its energy', async () => {
    await run(DEPARTURE - clock.now() - 60_000, 30_000);
    assert.equal((await state(charger))['charging.connected'], true, 'still plugged in before departure');
    const metered = (await readings()).meterKwh;
    await run(3 * 60_000);
    await eventually(async () => (await state(charger))['charging.connected'] === false, {
      what: 'the charger to see the cable go',
    });
    assert.equal((await state(charger))['charging.status'], 'Available');
    const sessions = (await api('/api/energy/sessions')) as Array<Record<string, unknown>>;
    const session = sessions.find((s) => s.charger === charger && s.open === false);
    assert.ok(session, `a finished session in ${JSON.stringify(sessions)}`);
    assert.equal(session.vehicle, CAR_ID);
    assert.equal(session.end !== null && Date.parse(String(session.end)) >= DEPARTURE, true);
    // The charge point senses the cable go at once, as a real one does, not at its next 30 s meter sample.
    const late = Date.parse(String(session.end)) - DEPARTURE;
    assert.ok(late <= 3_000, `the session ended ${late} ms after the car left`);
    // Everything the meter counted from the first hour of charging to the limit is in the session.
    assert.ok(Math.abs(Number(session.energyKwh) - metered) < 0.5, `session ${session.energyKwh} kWh of ${metered}`);
  });

  it('senses the cable go at once, not at its next meter sample', async () => {
    const res = await api('/api/chargers', {
      method: 'POST',
      body: JSON.stringify({ chargePointId: 'SIM-CP-PLUG', name: 'Plug check box' }),
    });
    let plugged = true;
    const box = new SimulatedChargePoint({
      url: `${hub.httpUrl.replace(/^http/, 'ws')}/ocpp`,
      chargePointId: 'SIM-CP-PLUG',
      password: String(res.password),
      clock,
      log: createLogger({ level: 'silent' }),
      car: { plugged: () => plugged, soc: () => 50, maxCurrentA: 16, acceptKw: (kw) => kw, charged: () => {} },
    });
    await box.start();
    try {
      const id = String(res.id);
      await eventually(async () => (await state(id))['charging.connected'] === true, {
        what: 'the box to see its car',
      });
      // 7 s into its 30 s meter interval, the car drives off.
      await run(7_000, 1_000);
      plugged = false;
      await run(3_000, 1_000);
      // Simulated time stands still while this waits, 20 s short of the box's next meter sample:
      // only its own notice of the cable can end the wait, so real time may be as slow as the
      // machine is (a couple of seconds of it on a loaded one were not always enough).
      await eventually(async () => (await state(id))['charging.connected'] === false, {
        what: 'the hub to hear the cable went',
        timeoutMs: 10_000,
      });
    } finally {
      await box.stop();
    }
  });
});
