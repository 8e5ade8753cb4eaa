import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { VirtualClock } from '../src/core/clock.ts';
import type { Hub } from '../src/core/hub.ts';
import { createLogger, type LogLine } from '../src/core/log.ts';
import { eventually } from './helpers/hub-process.ts';
import { type ScriptedCar, startScriptedCar } from './helpers/scripted-car.ts';
import { type ApiAnswer, startVehicleHub } from './helpers/vehicle-hub.ts';

/**
 * A car that refuses a subscription when the hub connects (a gateway whose signal source is not
 * up yet answers 404) and grants it later: the hub does not leave that signal stale for the whole
 * connection, but reads and subscribes again after a back-off, like a subscription the car ended,
 * and says so once.
 */

const NOW = Date.parse('2026-03-02T09:00:00Z');
const SPEED = 'Vehicle.Speed';
const TEMPERATURE = 'Vehicle.Exterior.AirTemperature';
const BACKOFF = { initialMs: 1_000, maxMs: 8_000 };

/** Lets the real sockets deliver what the virtual clock set going. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 40));

describe('vehicles: a subscription the car refuses at connect is tried again', () => {
  const clock = new VirtualClock(NOW);
  // No temperature yet: the car answers its read and its subscription with 404.
  const values: Record<string, string> = { [SPEED]: '0' };
  let car: ScriptedCar;
  let hub: Hub;
  const warnings: LogLine[] = [];

  const count = (path: string) => car.subscribes.filter((s) => s.path === path).length;
  const refusalWarnings = () => warnings.filter((w) => /refused to subscribe/.test(w.message));
  let api: (path: string, init?: RequestInit) => Promise<ApiAnswer>;
  const state = async () => (await api('/api/things/car')).body.state as Record<string, unknown>;

  before(async () => {
    car = await startScriptedCar({ clock, values });
    ({ hub, api } = await startVehicleHub({
      clock,
      viss: car.url,
      service: { backoff: BACKOFF },
      log: createLogger({ level: 'warn', sink: (line) => warnings.push(line) }),
    }));
    await eventually(() => count(SPEED) === 1, { what: 'the first subscriptions' });
    await eventually(() => refusalWarnings().length === 1, { what: 'the refusal said' });
  });

  after(async () => {
    await hub?.stop();
    await car?.close();
  });

  it('reads and subscribes again after a back-off once the car has the signal, logged once', async () => {
    assert.equal(count(TEMPERATURE), 0);
    assert.match(String(refusalWarnings()[0].fields?.paths), /Vehicle\.Exterior\.AirTemperature/);
    // The car's signal source comes up.
    values[TEMPERATURE] = '7';
    await settle();
    assert.equal(count(TEMPERATURE), 0, 'not at once: after a back-off');

    await clock.advance(BACKOFF.initialMs * 1.5);
    await eventually(() => count(TEMPERATURE) === 1, { what: 'the refused subscription again' });
    await eventually(async () => (await state())['vehicle.outside_temperature'] === 7, { what: 'the value read' });
    // The subscription granted now carries the car's changes.
    car.send({
      action: 'subscription',
      subscriptionId: car.subscriptionOf(TEMPERATURE),
      data: { path: TEMPERATURE, dp: { value: '9', ts: new Date(clock.now()).toISOString() } },
    });
    await eventually(async () => (await state())['vehicle.outside_temperature'] === 9, { what: 'an event' });
    assert.equal(count(SPEED), 1, 'the signals it granted are left alone');
    assert.equal(refusalWarnings().length, 1, 'logged once');
  });
});
