import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import WebSocket from 'ws';
import { VirtualClock } from '../src/core/clock.ts';
import type { Hub } from '../src/core/hub.ts';
import { startDemoTriad } from './helpers/demo-hub.ts';
import { eventually, eventuallyPasses } from './helpers/hub-process.ts';
import { ownerJson } from './helpers/owner-api.ts';

/**
 * The demo car and its charge point, as the hub's stream shows them to the dashboard: neither is
 * ever "charging" at 0 kW. The car said it charged a second before it said at what power (its
 * battery power was worked out at its next step), and the charge point said "Charging" before the
 * meter sample that carried the power; each time charging started (a plan's slot, the car home,
 * mode "now") the dashboard read "Charging at 0 kW" and the history kept it. Also: a car stopped
 * or started from the app is followed by the charge point within a second (it was up to its next
 * 30 s sample), and a car that stopped at its limit charges again when the limit is raised.
 */

const CAR = 'family-car';
const CHARGER = 'charger-sim-cp-1';
/** 21:00 UTC: the car is home from work and plugged in. */
const START = Date.parse('2026-01-05T21:00:00Z');

describe('demo car and charge point: charging and its power agree', () => {
  const clock = new VirtualClock(START);
  let hub: Hub;
  let stream: WebSocket;
  /** Each thing's charging properties as the stream last said them. */
  const seen: Record<string, Record<string, unknown>> = {};
  /** Every moment the stream showed a thing charging at 0 kW. */
  const zeroKw: string[] = [];

  const api = (path: string, method = 'GET', body?: unknown) => ownerJson(hub, path, method, body);
  /** Simulated time in 1 s steps, with real time between them for the sockets. */
  const run = async (ms: number) => {
    for (let t = 0; t < ms; t += 1_000) {
      await clock.advance(1_000);
      await delay(5);
    }
    await delay(50);
  };
  const charging = (thing: string) => seen[thing]?.['charging.charging'];
  /**
   * `check` passes once what the simulated time run so far made has reached the stream: on a busy
   * machine that can take longer than the 50 ms run() leaves. Simulated time stands still while
   * this waits, so what only a later step (a 30 s meter sample) would bring never arrives.
   */
  const arrived = (check: () => void) => eventuallyPasses(check);

  before(async () => {
    hub = await startDemoTriad({ clock });
    stream = new WebSocket(`${hub.httpUrl.replace(/^http/, 'ws')}/api/stream`, {
      headers: { authorization: `Bearer ${hub.ownerToken}` },
    });
    await new Promise((resolve) => stream.once('open', resolve));
    stream.send(JSON.stringify({ type: 'subscribe', things: [CAR, CHARGER] }));
    stream.on('message', (data) => {
      const message = JSON.parse(String(data));
      if (message.type !== 'state' || !String(message.property).startsWith('charging.')) return;
      seen[message.thing] = { ...seen[message.thing], [message.property]: message.value };
      const s = seen[message.thing];
      if (s['charging.charging'] === true && s['charging.power'] === 0)
        zeroKw.push(`${message.ts} ${message.thing} after ${message.property}=${JSON.stringify(message.value)}`);
    });
    await eventually(async () => (await api('/api/chargers'))[0]?.connected === true, {
      what: 'the demo charge point to boot',
    });
  });

  after(async () => {
    stream?.close();
    await hub?.stop();
  });

  it('never shows charging at 0 kW as charging stops and starts again', async () => {
    await api(`/api/chargers/${CHARGER}/mode`, 'PUT', { mode: 'now' });
    await run(30_000);
    for (const mode of ['off', 'now', 'off', 'now']) {
      await api(`/api/chargers/${CHARGER}/mode`, 'PUT', { mode });
      await run(20_000);
      await arrived(() => {
        assert.equal(charging(CAR), mode === 'now', `car charging in mode ${mode}`);
        assert.equal(charging(CHARGER), mode === 'now', `charger charging in mode ${mode}`);
      });
    }
    assert.ok(Number(seen[CAR]['charging.power']) > 5, `car at ${seen[CAR]['charging.power']} kW`);
    assert.ok(Number(seen[CHARGER]['charging.power']) > 10, `charger at ${seen[CHARGER]['charging.power']} kW`);
    assert.deepEqual(zeroKw, []);
  });

  it('follows a car stopped and started from its app within a second or two', async () => {
    await api(`/api/things/${CAR}/actions/stop`, 'POST', {});
    await run(2_000);
    await arrived(() => {
      assert.equal(charging(CAR), false);
      assert.equal(seen[CHARGER]['charging.status'], 'SuspendedEV', 'the charger saw the car stop drawing');
      assert.equal(seen[CHARGER]['charging.power'], 0);
    });
    await api(`/api/things/${CAR}/actions/start`, 'POST', {});
    await run(2_000);
    await arrived(() => {
      assert.equal(charging(CAR), true);
      assert.equal(seen[CHARGER]['charging.status'], 'Charging');
    });
    assert.deepEqual(zeroKw, []);
  });

  it('charges again when the limit it stopped at is raised, as a real car does', async () => {
    const level = Number((await api(`/api/things/${CAR}`)).state['battery.level']);
    await api(`/api/things/${CAR}/actions/set_limit`, 'POST', { limit: Math.max(50, Math.floor(level)) });
    await run(3_000);
    await arrived(() => {
      assert.equal(charging(CAR), false, 'stopped at the limit lowered to its charge');
      assert.equal(seen[CHARGER]['charging.status'], 'SuspendedEV');
    });
    await api(`/api/things/${CAR}/actions/set_limit`, 'POST', { limit: 90 });
    await run(3_000);
    await arrived(() => {
      assert.equal(charging(CAR), true, 'charging again up to the new limit');
      assert.equal(seen[CHARGER]['charging.status'], 'Charging');
    });
    // One stopped from its app waits for "start", whatever its limit.
    await api(`/api/things/${CAR}/actions/stop`, 'POST', {});
    await run(2_000);
    await api(`/api/things/${CAR}/actions/set_limit`, 'POST', { limit: 95 });
    await run(3_000);
    assert.equal(charging(CAR), false, 'a stop from the app holds');
    assert.deepEqual(zeroKw, []);
  });
});
