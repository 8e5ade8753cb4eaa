import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { VirtualClock } from '../src/core/clock.ts';
import type { Hub } from '../src/core/hub.ts';
import { distanceMetres } from '../src/people/geo.ts';
import { DEMO_HOME } from '../src/sim/people.ts';
import { startDemoTriad } from './helpers/demo-hub.ts';
import { eventually } from './helpers/hub-process.ts';

/**
 * Where the demo's car is when the demo first starts: at home on the wallbox, whatever the hour.
 * By the commute it was at work through office hours (UTC), and the demo (and every test of it)
 * showed a different household by day than by night: trips "from Work", a car no wallbox reached.
 */

/** Eleven in the morning, UTC: office hours by the commute. */
const START = Date.parse('2026-01-05T11:00:00Z');

describe('the demo car at the first start', () => {
  const clock = new VirtualClock(START);
  let hub: Hub | undefined;

  after(async () => {
    await hub?.stop();
  });

  it('stands at home with its cable in during office hours', async () => {
    hub = await startDemoTriad({ clock });
    const car = async () => {
      const res = await fetch(`${hub!.httpUrl}/api/things/family-car`, {
        headers: { authorization: `Bearer ${hub!.ownerToken}` },
      });
      return res.ok ? ((await res.json()) as { state: Record<string, unknown> }).state : null;
    };
    const state = await eventually(
      async () => {
        await clock.advance(1_000);
        await delay(15);
        const s = await car();
        return s && typeof s['location.latitude'] === 'number' && s['charging.connected'] !== undefined ? s : null;
      },
      { timeoutMs: 20_000, what: 'the demo car to report where it is' },
    );
    const at = { latitude: Number(state['location.latitude']), longitude: Number(state['location.longitude']) };
    assert.ok(distanceMetres(at, DEMO_HOME) < 50, `at home: ${JSON.stringify(at)}`);
    assert.equal(state['charging.connected'], true, 'its cable in');
  });
});
