import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import type { Browser, Locator, Page } from 'playwright-core';
import type { Thing } from '../../web/src/api/types.ts';
import { browserMissing } from '../helpers/browser.ts';
import { signIn, withDemoDashboard } from '../helpers/demo-dashboard.ts';
import { eventually, type HubProcess } from '../helpers/hub-process.ts';

/**
 * What the dashboard says about the demo household, in Debian's Chromium against `triad start
 * --demo`: yes/no values in their properties' own words, the charger summed up on the Overview
 * and grouped with the meters on the Home view, counts with their plural right, a surplus that is
 * never negative, names on the car's map that are not drawn over each other, and the trip the
 * car is on while it drives. Needs `npm run build` after web/src changes.
 */

const skip = browserMissing();

interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}

const overlap = (a: Box, b: Box) =>
  // Half a pixel of antialiasing is not an overlap.
  a.x + a.width - 0.5 > b.x && b.x + b.width - 0.5 > a.x && a.y + a.height - 0.5 > b.y && b.y + b.height - 0.5 > a.y;

describe('the dashboard’s wording on the demo household', { skip: skip ?? false }, () => {
  const dashboard = withDemoDashboard();
  const { watched } = dashboard;
  let hub: HubProcess;
  let browser: Browser;
  let charger: Thing;

  before(async () => {
    ({ hub, browser } = dashboard);
    charger = await eventually(async () => (await things()).find((t) => t.kind === 'charger'), {
      timeoutMs: 15_000,
      what: 'the demo charger',
    });
  });

  async function things(): Promise<Thing[]> {
    return (await hub.api('/api/things')).json() as Promise<Thing[]>;
  }

  async function thing(id: string): Promise<Thing> {
    return (await hub.api(`/api/things/${encodeURIComponent(id)}`)).json() as Promise<Thing>;
  }

  const signedIn = () => signIn(browser, hub, watched);

  /** The value a card or list shows under `term`. */
  function reading(scope: Locator, term: string): Locator {
    return scope
      .locator('dl > div')
      .filter({
        has: scope
          .page()
          .getByRole('term')
          .filter({ hasText: new RegExp(`^${term}$`) }),
      })
      .getByRole('definition');
  }

  /** The History view's chart of `option` ("Family car · Moving") over the last day, and its summary line. */
  async function history(page: Page, option: string): Promise<{ summary: string; ticks: string[] }> {
    // From another view, so the History view starts afresh and shows no earlier choice's summary.
    await page.goto(`${hub.url}/#/home`);
    await page.getByRole('heading', { name: 'Home', level: 1 }).waitFor();
    await page.goto(`${hub.url}/#/history`);
    const select = page.getByLabel('Property');
    await select.locator('option', { hasText: option }).first().waitFor({ state: 'attached' });
    await select.selectOption({ label: option });
    await page.getByLabel('Range').selectOption('day');
    const chart = page.getByRole('region', { name: option.replace(' · ', ' '), exact: false });
    const summary = page.locator('section.card p.summary');
    await summary.waitFor();
    await chart.getByRole('img').waitFor();
    return {
      summary: (await summary.textContent()) ?? '',
      ticks: await chart.locator('.chart-grid text').allTextContents(),
    };
  }

  test('yes/no values read in their properties’ words on the charger’s card', async () => {
    const page = await signedIn();
    await page.goto(`${hub.url}/#/home`);
    const card = page.getByRole('article', { name: charger.name });
    for (const term of ['Plugged in', 'Charging']) {
      await reading(card, term).waitFor();
      const shown = await reading(card, term).textContent();
      assert.match(shown ?? '', /^(Yes|No)$/, `the charger's "${term}" reads Yes or No, not On/Off: "${shown}"`);
    }
  });

  test('yes/no values read in their properties’ words in History: its summary and its axis', async () => {
    const page = await signedIn();

    const trunk = await history(page, 'Family car · Trunk locked');
    assert.match(trunk.summary, / · last (Locked|Unlocked) at /, `the trunk is locked or not: "${trunk.summary}"`);
    assert.deepEqual(new Set(trunk.ticks), new Set(['Locked', 'Unlocked']), `the chart's axis: ${trunk.ticks}`);
    const moving = await history(page, 'Family car · Moving');
    assert.match(moving.summary, / · last (Yes|No) at /, `the car moves or not: "${moving.summary}"`);
    assert.deepEqual(new Set(moving.ticks), new Set(['Yes', 'No']), `the chart's axis: ${moving.ticks}`);
    const alex = await history(page, 'Alex · At home');
    assert.match(alex.summary, / · last (Home|Away) at /, `Alex is home or away: "${alex.summary}"`);
    const light = await history(page, 'Hall light · On');
    assert.match(light.summary, / · last (On|Off) at /, `a light is on or off: "${light.summary}"`);

    // Sensors the demo has none of read in their words too, from the same table every view uses.
    const labels = await import('../../web/src/labels.ts');
    const words = (labels as { booleanText?: (property: string, value: boolean) => string }).booleanText;
    assert.equal(typeof words, 'function', 'web/src/labels.ts has the words for yes/no values');
    if (!words) return;
    const said = (property: string) => `${words(property, true)}/${words(property, false)}`;
    // Zigbee2MQTT's contact is true when the contact is made: the door is closed.
    assert.equal(said('sensor.contact'), 'Closed/Open');
    assert.equal(said('sensor.motion'), 'Motion/Clear');
    assert.equal(said('switch.on'), 'On/Off');
    assert.equal(said('lock.locked'), 'Locked/Unlocked');
    assert.equal(said('presence.home'), 'Home/Away');
    assert.equal(said('charging.connected'), 'Yes/No');
    assert.equal(said('vehicle.door_rear_driver_locked'), 'Locked/Unlocked');
    assert.equal(said('vehicle.door_front_driver_open'), 'Open/Closed');
  });

  test('the overview sums up the charger: charging at N kW, plugged in, or idle', async () => {
    const page = await signedIn();
    const card = page
      .getByRole('region', { name: 'Rooms' })
      .getByRole('article', { name: charger.name })
      .locator('p.summary');
    await card.waitFor();
    // The demo car comes and goes: compare with what the hub says at the same moment.
    await eventually(
      async () => {
        const state = (await thing(charger.id)).state;
        const shown = (await card.textContent()) ?? '';
        const expected =
          state['charging.charging'] === true
            ? /^Charging at [\d.,]+ kW$/
            : state['charging.connected'] === true
              ? /^Plugged in$/
              : /^Idle$/;
        return expected.test(shown) ? shown : null;
      },
      { timeoutMs: 10_000, what: 'the charger summed up as the hub has it' },
    ).catch(async (error: Error) => {
      throw new Error(`${error.message}: the card says "${await card.textContent()}"`);
    });
  });

  test('History counts one value as "1 value"', async () => {
    const page = await signedIn();
    const from = new Date(Date.now() - 86_400_000).toISOString();
    const recorded = (await (
      await hub.api(`/api/things/family-car/history?property=battery.capacity&from=${from}`)
    ).json()) as { points: unknown[] };
    // The battery's capacity is reported once, at start, and never changes.
    assert.equal(recorded.points.length, 1, 'the demo car reported its capacity once');
    const { summary } = await history(page, 'Family car · Battery capacity');
    assert.match(summary, /^1 value · last 64 kWh at /, `one value, not "1 values": "${summary}"`);
  });

  test('the overview never shows a negative surplus: a shortfall reads as none', async (t) => {
    const energy = await import('../../web/src/energy.ts');
    const words = (energy as { surplusWords?: (watts: number | null) => string }).surplusWords;
    assert.equal(typeof words, 'function', 'web/src/energy.ts says what a surplus reads as');
    if (!words) return;
    assert.equal(words(-1800), 'None', 'importing for the house is no surplus');
    assert.equal(words(0), 'None');
    assert.match(words(2500), /^2[.,]5 kW$/);

    const site = (await things()).find((x) => x.kind === 'site');
    if (!site || typeof site.state['site.surplus_power'] !== 'number') {
      t.skip('the demo site reports no surplus');
      return;
    }
    const page = await signedIn();
    const surplus = reading(page.getByRole('region', { name: 'Energy now' }), 'Surplus');
    await surplus.waitFor({ timeout: 15_000 });
    await eventually(
      async () => {
        const watts = (await thing(site.id)).state['site.surplus_power'];
        const shown = (await surplus.textContent()) ?? '';
        assert.doesNotMatch(shown, /^[-−]/, `a surplus is never negative: "${shown}"`);
        return typeof watts === 'number' && (watts < 5 ? shown === 'None' : /^[\d.,]+ kW$/.test(shown));
      },
      { timeoutMs: 10_000, what: 'the surplus as the site has it' },
    );
  });

  test('the Home view groups the charger with the meters under "Energy", not "Other"', async () => {
    const page = await signedIn();
    await page.goto(`${hub.url}/#/home`);
    const energy = page.getByRole('region', { name: 'Energy', exact: true });
    await energy.getByRole('article', { name: charger.name }).waitFor({ timeout: 10_000 });
    for (const meter of ['Grid meter', 'Solar inverter', 'House load'])
      assert.equal(await energy.getByRole('article', { name: meter }).count(), 1, `${meter} is with the charger`);
    // Every room-less demo device is an energy one: nothing is left over.
    assert.equal(await page.getByRole('heading', { name: 'Other', exact: true }).count(), 0);
    const headings = await page.getByRole('heading', { level: 2 }).allTextContents();
    assert.equal(headings.at(-1), 'Energy', `rooms first, then the energy things: ${headings.join(', ')}`);
  });

  test('names on the car’s map are not drawn over each other, people at one place share one', async () => {
    // A zone far off zooms the map out, so home's circle is small and its name near the people's.
    const zone = await hub.api('/api/zones', {
      method: 'POST',
      body: JSON.stringify({ name: 'Far field', latitude: 51.95, longitude: 5.1214, radius: 200 }),
    });
    assert.equal(zone.status, 201, await zone.clone().text());
    const page = await signedIn();
    await page.goto(`${hub.url}/#/car`);
    const map = page.locator('svg.map');
    await map.locator('.map-zone text', { hasText: 'Far field' }).waitFor({ timeout: 10_000 });
    await page.waitForTimeout(500);
    const names = map.locator('text');
    const texts = await names.allTextContents();
    const boxes: Box[] = [];
    for (let i = 0; i < texts.length; i++) {
      const box = await names.nth(i).boundingBox();
      assert.ok(box, `"${texts[i]}" is drawn`);
      boxes.push(box);
    }
    for (let i = 0; i < boxes.length; i++)
      for (let j = i + 1; j < boxes.length; j++)
        assert.ok(!overlap(boxes[i], boxes[j]), `"${texts[i]}" and "${texts[j]}" are drawn over each other`);
    for (const name of ['Alex', 'Sam', 'Home', 'Family car'])
      assert.ok(
        texts.some((text) => text.split(', ').includes(name)),
        `${name} is on the map: ${texts.join(' | ')}`,
      );
  });

  test('while the car drives, "Today’s trips" shows the trip under way, not "No trips today"', async () => {
    // The demo car sets off within seconds of the start and drives for a good while.
    await eventually(async () => (await thing('family-car')).state['vehicle.moving'] === true, {
      timeoutMs: 60_000,
      what: 'the demo car to drive',
    });
    const page = await signedIn();
    await page.goto(`${hub.url}/#/car`);
    const trips = page.getByRole('region', { name: "Today's trips" });
    await trips.getByText(/^Under way now/).waitFor({ timeout: 10_000 });
    assert.equal(await trips.getByText('No trips today.').count(), 0);
  });

  test('no console errors on any page of the run', () => {
    assert.deepEqual(
      watched.flatMap((w) => w.errors),
      [],
    );
  });
});
