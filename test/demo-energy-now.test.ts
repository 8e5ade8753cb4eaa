import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { isDeepStrictEqual } from 'node:util';
import { VirtualClock } from '../src/core/clock.ts';
import type { Hub } from '../src/core/hub.ts';
import { startDemoTriad } from './helpers/demo-hub.ts';
import { eventually } from './helpers/hub-process.ts';

/**
 * The site's figures ("Energy now" on the dashboard) in the demo household, from the first
 * reading on: the site's grid power is the grid meter's reading of the moment, not one of up to a
 * control step ago, and the figures add up (grid = house + chargers − solar) as the car starts
 * and stops charging.
 */

/** 21:00 UTC: the car is home and plugged in, at night (no sun). */
const START = Date.parse('2026-01-05T21:00:00Z');

describe('demo energy site: the figures of "Energy now" agree with the meters', () => {
  const clock = new VirtualClock(START);
  let hub: Hub;

  const state = async (thing: string) => {
    const res = await fetch(`${hub.httpUrl}/api/things/${thing}`, {
      headers: { authorization: `Bearer ${hub.ownerToken}` },
    });
    assert.ok(res.ok, `${thing}: ${res.status}`);
    return ((await res.json()) as { state: Record<string, unknown> }).state;
  };
  /** The site's figures next to the meters' own readings, read together. */
  const read = async () => {
    const [site, grid, solar, house] = await Promise.all(
      ['site', 'grid-meter', 'solar-inverter', 'house-load'].map(state),
    );
    return {
      at: new Date(clock.now()).toISOString(),
      siteGrid: site['site.grid_power'],
      meterGrid: grid['sensor.power'],
      siteSolar: site['site.solar_power'],
      meterSolar: solar['sensor.power'],
      siteHouse: site['site.house_power'],
      meterHouse: house['sensor.power'],
      charge: site['site.charge_power'],
    };
  };
  /**
   * A look whose figures were read at one moment: four reads are four requests, and a meter's
   * report that lands between them (on a busy machine it may come later than the 15 ms after a
   * step) would pair a new meter reading with the site's figure of the moment before. So it is
   * read again until two reads in a row agree. Simulated time stands still meanwhile: a site
   * figure that trails its meter until a control step trails it in both, and is still caught.
   */
  const look = async () => {
    let last = await read();
    for (let i = 0; i < 20; i++) {
      const again = await read();
      if (isDeepStrictEqual(again, last)) return again;
      last = again;
    }
    return last;
  };
  const looks: Array<Awaited<ReturnType<typeof look>>> = [];

  /** Simulated time in 1 s steps, real time between them for the sockets, a look after each. */
  const run = async (ms: number) => {
    for (let t = 0; t < ms; t += 1_000) {
      await clock.advance(1_000);
      await delay(15);
      looks.push(await look());
    }
  };

  before(async () => {
    hub = await startDemoTriad({ clock });
    // The hub and the demo set up; then from the moment the site has a grid figure, the first
    // the dashboard can show (simulated time moving, as it would).
    await eventually(async () => (await state('grid-meter')) !== undefined, { what: 'the grid meter' });
    for (let i = 0; i < 30 && typeof (await state('site'))['site.grid_power'] !== 'number'; i++) {
      await clock.advance(1_000);
      await delay(15);
    }
    looks.push(await look());
    // The charger starts in its default mode; then charging now, and off again.
    await run(30_000);
    const chargers = (await (
      await fetch(`${hub.httpUrl}/api/chargers`, { headers: { authorization: `Bearer ${hub.ownerToken}` } })
    ).json()) as Array<{ id: string }>;
    const setMode = async (mode: string) => {
      const res = await fetch(`${hub.httpUrl}/api/chargers/${chargers[0].id}/mode`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${hub.ownerToken}`, 'content-type': 'application/json' },
        body: JSON.stringify({ mode }),
      });
      assert.ok(res.ok, `mode ${mode}: ${res.status}`);
    };
    await setMode('now');
    await run(40_000);
    await setMode('off');
    await run(40_000);
  });

  after(async () => {
    await hub?.stop();
  });

  it('saw the car charge and stop', () => {
    assert.ok(
      looks.some((l) => Number(l.charge) > 5_000),
      'the car charged at some point',
    );
    assert.ok(Number(looks.at(-1)!.charge) < 10, 'and stopped');
  });

  it("shows each meter's reading of the moment, from the first figure on", () => {
    const off = looks.filter(
      (l) => l.siteGrid !== l.meterGrid || l.siteSolar !== l.meterSolar || l.siteHouse !== l.meterHouse,
    );
    assert.deepEqual(off, [], `the site's figures differ from the meters' ${off.length} of ${looks.length} times`);
  });

  it('adds up: grid = house + chargers − solar, within a second of a change', () => {
    const wrong = looks.filter((l, i) => {
      const sum = Number(l.siteHouse) + Number(l.charge) - Number(l.siteSolar);
      // The meters report each second at most: a look right after the charger changed may see it first.
      const settled = i > 0 && looks[i - 1].charge === l.charge;
      return settled && Math.abs(sum - Number(l.siteGrid)) > 50;
    });
    assert.deepEqual(wrong, [], `${wrong.length} of ${looks.length} looks did not add up`);
  });
});
