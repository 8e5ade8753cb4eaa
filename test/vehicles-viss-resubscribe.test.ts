import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { VirtualClock } from '../src/core/clock.ts';
import type { Hub } from '../src/core/hub.ts';
import { createLogger, type LogLine } from '../src/core/log.ts';
import { eventually } from './helpers/hub-process.ts';
import { type ScriptedCar, startScriptedCar } from './helpers/scripted-car.ts';
import { type ApiAnswer, startVehicleHub } from './helpers/vehicle-hub.ts';

/**
 * A car that ends the hub's subscriptions: with an error event (VISS core: the server terminates
 * the subscription after one), or with an unsubscribe nobody asked for. The hub notices, reads the
 * signal again and subscribes again after a back-off, logs it once, and is not made to hammer a
 * car that keeps ending it. The car is a bare VISS server scripted by the test.
 */

const NOW = Date.parse('2026-03-02T09:00:00Z');
const SPEED = 'Vehicle.Speed';
const TEMPERATURE = 'Vehicle.Exterior.AirTemperature';
const BACKOFF = { initialMs: 1_000, maxMs: 8_000 };

/** Lets the real sockets deliver what the virtual clock set going. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 40));

describe('vehicles: a subscription the car ends is renewed', () => {
  const clock = new VirtualClock(NOW);
  const values: Record<string, string> = { [SPEED]: '0', [TEMPERATURE]: '5' };
  /** Ends each new subscription to this path at once (a car that keeps forgetting it). */
  let forgetful: string | null = null;
  let car: ScriptedCar;
  let hub: Hub;
  const warnings: LogLine[] = [];

  const iso = (ms: number) => new Date(ms).toISOString();
  const send = (body: Record<string, unknown>) => car.send(body);
  const idOf = (path: string) => car.subscriptionOf(path) as string;
  const count = (path: string) => car.subscribes.filter((s) => s.path === path).length;
  const endedBy = (subscriptionId: string) =>
    send({
      action: 'subscription',
      subscriptionId,
      error: { number: '503', reason: 'service_unavailable', message: 'the signal source restarted' },
    });
  const event = (path: string, value: string) =>
    send({ action: 'subscription', subscriptionId: idOf(path), data: { path, dp: { value, ts: iso(clock.now()) } } });

  let api: (path: string, init?: RequestInit) => Promise<ApiAnswer>;
  const speed = async () => ((await api('/api/things/car')).body.state as Record<string, unknown>)['location.speed'];
  const renewalWarnings = () => warnings.filter((w) => /ended a subscription/.test(w.message));

  before(async () => {
    car = await startScriptedCar({
      clock,
      values,
      onSubscribe: (path, id) => {
        if (path === forgetful) setTimeout(() => endedBy(id), 5);
      },
    });
    ({ hub, api } = await startVehicleHub({
      clock,
      viss: car.url,
      service: { backoff: BACKOFF },
      log: createLogger({ level: 'warn', sink: (line) => warnings.push(line) }),
    }));
    await eventually(() => count(SPEED) === 1 && count(TEMPERATURE) === 1, { what: 'the first subscriptions' });
    await eventually(async () => (await speed()) === 0, { what: 'the first reading' });
  });

  after(async () => {
    await hub?.stop();
    await car?.close();
  });

  it('an error event ends a subscription: the hub reads the signal again and subscribes again, once, after a wait', async () => {
    const before = idOf(SPEED);
    endedBy(before);
    // Changed while nobody was subscribed: no event will ever tell of it.
    values[SPEED] = '30';
    await settle();
    assert.equal(count(SPEED), 1, 'not at once: after a back-off');
    assert.equal(renewalWarnings().length, 1, JSON.stringify(warnings));
    assert.equal(renewalWarnings()[0].fields?.path, SPEED);

    await clock.advance(BACKOFF.initialMs * 1.5);
    await eventually(() => count(SPEED) === 2, { what: 'the subscription again' });
    await eventually(async () => (await speed()) === 30, { what: 'the value read again' });
    assert.notEqual(idOf(SPEED), before);
    // The new subscription carries the car's changes; the other signal was never touched.
    event(SPEED, '42');
    await eventually(async () => (await speed()) === 42, { what: 'an event of the new subscription' });
    assert.equal(count(TEMPERATURE), 1);
    assert.equal(renewalWarnings().length, 1, 'logged once');
  });

  it('an unsubscribe the hub did not ask for is renewed the same way; an id it never had renews nothing', async () => {
    send({ action: 'subscription', subscriptionId: '9999', error: { number: 404, reason: 'x', message: 'made up' } });
    send({ action: 'unsubscribe', subscriptionId: '9998' });
    await clock.advance(BACKOFF.maxMs * 2);
    await settle();
    assert.equal(count(SPEED), 2);
    assert.equal(count(TEMPERATURE), 1);

    send({ action: 'unsubscribe', subscriptionId: idOf(TEMPERATURE) });
    await settle();
    await clock.advance(BACKOFF.initialMs * 1.5);
    await eventually(() => count(TEMPERATURE) === 2, { what: 'the temperature subscription again' });
    assert.equal(count(SPEED), 2);
  });

  it('a car that ends it again at once is asked less and less often, and logged once for the run', async () => {
    // The last renewal was long enough ago that this is a new run of endings.
    await clock.advance(BACKOFF.maxMs * 2);
    const warned = renewalWarnings().length;
    forgetful = SPEED;
    const first = count(SPEED);
    endedBy(idOf(SPEED));
    await settle();
    // Walk 60 s of car time in 250 ms steps: a tight loop would subscribe hundreds of times. Each
    // renewal goes over real sockets (read, subscribe, the car's ending): time stands still until
    // it is through, or on a busy machine the clock ran on meanwhile and fewer renewals fit.
    for (let t = 0; t < 60_000; t += 250) {
      const renewals = count(SPEED);
      await clock.advance(250);
      await new Promise((resolve) => setTimeout(resolve, 10));
      if (count(SPEED) > renewals) await settle();
    }
    await settle();
    const times = car.subscribes
      .filter((s) => s.path === SPEED)
      .slice(first)
      .map((s) => s.at);
    // Waits of about 1, 2, 4, 8, 8, 8… seconds: 9 or 10 in a minute, and never closer than the first wait.
    assert.ok(times.length >= 5 && times.length <= 11, `renewals in a minute: ${times.length}`);
    for (let i = 1; i < times.length; i++) assert.ok(times[i] - times[i - 1] >= BACKOFF.initialMs);
    assert.ok(times.at(-1)! - times.at(-2)! >= BACKOFF.maxMs - 250, `the wait grows to the longest: ${times}`);
    assert.equal(renewalWarnings().length, warned + 1, 'one warning for the whole run');
    forgetful = null;
  });
});
