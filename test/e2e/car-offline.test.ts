import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import type { Thing } from '../../web/src/api/types.ts';
import { browserMissing } from '../helpers/browser.ts';
import { signIn, startCarSimulator, withDemoDashboard } from '../helpers/demo-dashboard.ts';
import { eventually, freePort, type HubProcess } from '../helpers/hub-process.ts';
import { postOwnTracksFix } from '../helpers/owntracks.ts';

/**
 * A car that drops out of reach while it drives, in Debian's Chromium against `triad start
 * --demo`: the dashboard shows what it last knew as last known (when it was seen, the position as
 * the last known one, greyed facts) and nothing that is only true of a moment, such as its speed or
 * "Under way now". And what a first look at the demo found: its places read by their names (a trip
 * from home says "from Home", a person at a zone is "At" the zone's name, not its id), a car with no
 * cable in offers no "Start charging" that must fail, and with two cars each map has its own name.
 * Needs `npm run build` after web/src changes.
 */

const skip = browserMissing();
const LAPTOP = { width: 1280, height: 860 };

describe('dashboard: a car that is offline, and places by name', { skip: skip ?? false }, () => {
  const dashboard = withDemoDashboard();
  const { watched } = dashboard;
  let hub: HubProcess;
  let browser: Browser;
  before(() => {
    ({ hub, browser } = dashboard);
  });

  const things = async () => (await hub.api('/api/things')).json() as Promise<Thing[]>;
  const signedIn = (page?: Page) => signIn(browser, hub, watched, { page, viewport: LAPTOP });

  test('a car that went offline mid-drive shows its last known state, and no speed as if it were now', async () => {
    // The demo car sets off on an errand 15 s after the start.
    const car = async () => (await things()).find((t) => t.id === 'family-car')!;
    await eventually(
      async () => (await car()).state['vehicle.moving'] === true && Number((await car()).state['location.speed']) >= 10,
      {
        timeoutMs: 60_000,
        what: 'the demo car to drive',
      },
    );
    const page = await signedIn();
    await page.goto(`${hub.url}/#/car`);
    const panel = page.getByRole('region', { name: 'Family car' });
    const position = panel.locator('p.position');
    const trips = panel.getByRole('region', { name: "Today's trips" });
    // Online and driving: its speed, and the trip under way, from home.
    await position.getByText(/km\/h/).waitFor({ timeout: 10_000 });
    // It is listed once it has gone 100 m, and the list is read again every few seconds till then.
    await trips.getByText(/^Under way now.* · from Home/).waitFor({ timeout: 30_000 });
    // "Today's trips" need no date: since when is the time alone.
    const listed = (await trips.textContent()) ?? '';
    assert.doesNotMatch(listed, /\b20\d\d\b/, `no year in today's trips: "${listed}"`);

    // On the road it has no cable in: "Start charging" waits for one, and says why.
    const start = panel.getByRole('button', { name: 'Start charging Family car' });
    assert.equal(await start.isDisabled(), true, 'no charging without a cable');
    assert.equal(await start.getAttribute('aria-describedby'), 'unplugged-family-car');
    await panel.getByText('Family car is not plugged in: plug it in to charge.').waitFor({ timeout: 5_000 });

    // The hub loses its car mid-drive, as when the car is out of reach: pointed at an address where
    // nothing answers, through the vehicles API.
    const gone = await hub.api('/api/vehicles/family-car', {
      method: 'PATCH',
      body: JSON.stringify({ viss: `ws://127.0.0.1:${await freePort()}/` }),
    });
    assert.ok(gone.ok, `re-pointing the car: ${gone.status}`);
    await eventually(async () => (await car()).online === false, {
      timeoutMs: 15_000,
      what: 'the hub to mark the car offline',
    });
    await panel.getByText('Offline', { exact: true }).waitFor({ timeout: 10_000 });
    assert.ok(Number((await car()).state['location.speed']) > 0, 'the hub still holds the last speed it heard');

    await position.getByText(/^Last known position/).waitFor({ timeout: 5_000 });
    const said = ((await panel.textContent()) ?? '').replace(/\s+/g, ' ');
    assert.doesNotMatch(said, /km\/h/, `no speed is shown for a car that is offline: "${said}"`);
    assert.doesNotMatch(said, /Under way now/, `nor is it said to be under way now: "${said}"`);
    assert.match(said, /Last seen \d/, `it says when it was last seen: "${said}"`);
    assert.match((await trips.textContent()) ?? '', /Under way when last seen/);
    assert.match((await panel.locator('dl.facts').getAttribute('class')) ?? '', /\bstale\b/, 'its facts are greyed');
    // The map's name for screen readers says the same.
    await panel.getByRole('img', { name: /^Map of Family car last seen at / }).waitFor({ timeout: 5_000 });

    // The Overview's card of the car says it too, next to the figures.
    await page.getByRole('link', { name: 'Overview' }).click();
    const card = page.locator('li.card').filter({ has: page.getByRole('heading', { name: 'Family car' }) });
    await card.getByText('Offline', { exact: true }).waitFor({ timeout: 5_000 });
    assert.match((await card.textContent()) ?? '', /Last seen \d/);
    assert.match((await card.locator('dl.facts').getAttribute('class')) ?? '', /\bstale\b/);
  });

  test('"Energy now" does not count a car that went offline while charging, and says what it last drew', async () => {
    // A second car charging at a wallbox Triad does not run: its own report is the car's figure.
    const car = await startCarSimulator(['--at', 'home']);
    try {
      const attached = await hub.api('/api/vehicles', {
        method: 'POST',
        body: JSON.stringify({ name: 'Garage car', viss: car.url }),
      });
      assert.ok(attached.ok, `attaching the simulated car: ${attached.status}`);
      const garage = async () => (await things()).find((t) => t.id === 'garage-car');
      await eventually(
        async () => {
          const t = await garage();
          return t?.online === true && t.state['charging.charging'] === true && Number(t.state['charging.power']) > 5;
        },
        { timeoutMs: 20_000, what: 'the garage car to charge' },
      );
      const lastKw = Number((await garage())!.state['charging.power']);
      const page = await signedIn();
      const energy = page.getByRole('region', { name: 'Energy now' });
      const carFigure = energy
        .getByLabel('Power now')
        .locator('div')
        .filter({ has: page.locator('dt', { hasText: /^Car$/ }) })
        .locator('dd');
      const kw = (n: number) => `${new Intl.NumberFormat('en-US', { maximumFractionDigits: 2 }).format(n)} kW`;
      const sitePower = async () =>
        Number((await things()).find((t) => t.kind === 'site')?.state['site.charge_power'] ?? 0) / 1000;
      // Online, its charging power counts (more than the demo's wallbox draws, its own car being on the road).
      assert.ok((await sitePower()) < lastKw, `the wallbox draws ${await sitePower()} kW`);
      await eventually(async () => (await carFigure.textContent()) === kw(lastKw), {
        timeoutMs: 10_000,
        what: `the car figure to read ${kw(lastKw)}: "${await carFigure.textContent()}"`,
      });

      // The hub loses the car: it still holds the charging power it last heard.
      const gone = await hub.api('/api/vehicles/garage-car', {
        method: 'PATCH',
        body: JSON.stringify({ viss: `ws://127.0.0.1:${await freePort()}/` }),
      });
      assert.ok(gone.ok, `re-pointing the car: ${gone.status}`);
      await eventually(async () => (await garage())?.online === false, {
        timeoutMs: 15_000,
        what: 'the hub to mark the garage car offline',
      });
      assert.equal((await garage())!.state['charging.charging'], true, 'the hub still holds "charging"');
      // Not in the car's figure: only what the wallbox draws now.
      await eventually(async () => (await carFigure.textContent()) === kw(await sitePower()), {
        timeoutMs: 10_000,
        what: `the car figure without the offline car (${kw(await sitePower())}): "${await carFigure.textContent()}"`,
      });
      const note = energy.locator('p.energy-last-known').filter({ hasText: 'Garage car' });
      await note.waitFor({ timeout: 10_000 });
      const said = ((await note.textContent()) ?? '').replace(/\s+/g, ' ');
      assert.match(said, /Offline/);
      assert.match(
        said,
        new RegExp(
          `Garage car was charging at ${kw(lastKw).replace('.', '\\.')} when last heard from \\(last seen \\d`,
        ),
      );
      assert.match(said, /not counted/);
    } finally {
      car.child.kill('SIGTERM');
    }
  });

  test('someone in a zone is "At" the zone by its name', async () => {
    const zones = (await (await hub.api('/api/zones')).json()) as Array<{
      id: string;
      name: string;
      latitude: number;
      longitude: number;
    }>;
    const samsWork = zones.find((z) => z.name === "Sam's work");
    assert.ok(samsWork, `the demo household has a zone at Sam's work: ${JSON.stringify(zones.map((z) => z.name))}`);
    assert.notEqual(samsWork.id, samsWork.name, 'its id is not its name');
    const robin = (await (
      await hub.api('/api/people', { method: 'POST', body: JSON.stringify({ name: 'Robin' }) })
    ).json()) as { id: string };
    const tracker = (await (
      await hub.api(`/api/people/${robin.id}/trackers`, { method: 'POST', body: JSON.stringify({ name: 'phone' }) })
    ).json()) as { username: string; password: string };
    const fix = await postOwnTracksFix(hub.url, tracker, samsWork);
    assert.ok(fix.ok, `the fix: ${fix.status}`);
    await eventually(
      async () => (await things()).find((t) => t.id === robin.id)?.state['presence.zone'] === samsWork.id,
      {
        timeoutMs: 10_000,
        what: 'Robin at the zone',
      },
    );
    const page = await signedIn();
    const person = page.locator('li.person').filter({ hasText: 'Robin' });
    await person.getByText("At Sam's work", { exact: true }).waitFor({ timeout: 10_000 });
  });

  test('with a second car, each map is named after its own car', async () => {
    const car = await startCarSimulator(['--at', 'home']);
    try {
      const attached = await hub.api('/api/vehicles', {
        method: 'POST',
        body: JSON.stringify({ name: 'Commuter', viss: car.url }),
      });
      assert.ok(attached.ok, `attaching the simulated car: ${attached.status}`);
      await eventually(async () => (await things()).find((t) => t.id === 'commuter')?.online === true, {
        timeoutMs: 15_000,
        what: 'the second car to connect',
      });
      const page = await signedIn();
      await page.goto(`${hub.url}/#/car`);
      for (const name of ['Family car', 'Commuter']) {
        const panel = page.getByRole('region', { name });
        await panel.locator('svg.map').waitFor({ timeout: 15_000 });
        assert.equal(await panel.getByRole('img', { name: new RegExp(`^Map of ${name}\\b`) }).count(), 1, name);
      }
    } finally {
      car.child.kill('SIGTERM');
    }
  });

  test('no page logged an error', () => {
    assert.deepEqual(
      watched.flatMap((w) => w.errors),
      [],
    );
  });
});
