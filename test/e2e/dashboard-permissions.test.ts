import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser, Locator, Page } from 'playwright-core';
import { browserMissing, launchChromium, openPage, type WatchedPage } from '../helpers/browser.ts';
import { startDemoHub } from '../helpers/demo-dashboard.ts';
import { eventually, type HubProcess } from '../helpers/hub-process.ts';

/**
 * The dashboard offers a person only the controls the hub lets them use (it asks the hub, GET
 * /api/session), and tells a guest what was not shared with them rather than that the hub lacks
 * it: a child granted one light, and a guest pass for the car with actions `*` (which never covers
 * a car), in Debian's Chromium against `triad start --demo`. Needs `npm run build` after web/src changes.
 */

const skip = browserMissing();
const LAPTOP = { width: 1280, height: 860 };
const HOUR = 3_600_000;

describe('dashboard: controls a role may not use are not offered', { skip: skip ?? false }, () => {
  let hub: HubProcess;
  let browser: Browser;
  const watched: WatchedPage[] = [];

  before(async () => {
    hub = await startDemoHub();
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    await hub?.stop();
  });

  async function owner(path: string, body: unknown): Promise<Record<string, unknown>> {
    const answer = await hub.api(path, { method: 'POST', body: JSON.stringify(body) });
    assert.ok(answer.ok, `${path}: ${answer.status} ${await answer.clone().text()}`);
    return (await answer.json()) as Record<string, unknown>;
  }

  async function opened(): Promise<Page> {
    const page = await openPage(browser, LAPTOP);
    watched.push(page);
    return page.page;
  }

  async function live(page: Page): Promise<void> {
    await page.getByRole('heading', { name: 'Overview', level: 1 }).waitFor();
    await page.getByRole('status', { name: 'Connection: Live' }).waitFor();
  }

  /** The controls in a part of the page that can be used now (enabled buttons, switches, fields). */
  const usable = (part: Locator) => part.locator('button:enabled, select:enabled, input:enabled');

  async function carPage(page: Page): Promise<Locator> {
    await page.goto(`${hub.url}/#/car`);
    const car = page.locator('section.car');
    await car.getByRole('heading', { level: 2 }).first().waitFor();
    // What the controls may do is known when the page shows them; let the car's cards all render.
    await car.getByRole('heading', { name: 'Charge plan' }).waitFor();
    return car;
  }

  test('a child granted one light may switch it, and is offered neither Unlock on the front door nor the car', async () => {
    await owner('/api/users', { name: 'kid', role: 'child', password: 'the kid’s long password' });
    await owner('/api/grants', { user: 'kid', things: ['hall-light'], actions: ['*'] });
    // The door locked, so its control is the one the review found offered: Unlock.
    await owner('/api/things/front-door/actions/lock', {});
    await eventually(
      async () =>
        ((await (await hub.api('/api/things/front-door')).json()) as { state: Record<string, unknown> }).state[
          'lock.locked'
        ] === true,
      { timeoutMs: 10_000, what: 'the front door to lock' },
    );

    const page = await opened();
    await page.goto(`${hub.url}/`);
    await page.getByLabel('User name').fill('kid');
    await page.getByLabel('Password', { exact: true }).fill('the kid’s long password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await live(page);

    await page.goto(`${hub.url}/#/home`);
    const light = page.getByRole('switch', { name: 'Hall light' });
    await light.waitFor();
    assert.equal(await light.isEnabled(), true, 'the granted light can be switched');
    const was = await light.getAttribute('aria-checked');
    await light.click();
    await eventually(async () => (await light.getAttribute('aria-checked')) !== was, {
      timeoutMs: 10_000,
      what: 'the hall light to switch',
    });

    const unlock = page.getByRole('button', { name: 'Unlock Front door' });
    await unlock.waitFor();
    assert.equal(await unlock.isEnabled(), false, 'Unlock is not offered');
    const door = page.locator('article.device').filter({ has: unlock });
    assert.match(
      (await door.locator('.command-note').textContent()) ?? '',
      /Not available to you: unlock on front-door needs a grant that names it/,
      'the card says why',
    );
    assert.match((await unlock.getAttribute('title')) ?? '', /needs a grant that names it/, 'and so does its tooltip');

    const car = await carPage(page);
    assert.deepEqual(
      await usable(car).evaluateAll((controls) => controls.map((c) => c.getAttribute('aria-label'))),
      [],
      'no usable control of the car',
    );
    assert.ok((await car.getByText('Not available to you:').count()) > 0, 'the car’s cards say why');
    assert.deepEqual(watched.at(-1)?.errors, [], 'nothing the hub refused was asked for');
  });

  test('a guest pass for the car with actions `*` is offered none of its controls, and told what is not shared', async () => {
    const now = Date.now();
    const pass = await owner('/api/guest-passes', {
      name: 'Valet',
      things: ['family-car'],
      actions: ['*'],
      from: new Date(now - 60_000).toISOString(),
      to: new Date(now + HOUR).toISOString(),
    });

    const page = await opened();
    await page.goto(`${hub.url}/`);
    await page.getByLabel('Token', { exact: true }).fill(String(pass.token));
    await page.getByRole('button', { name: 'Sign in' }).click();
    await live(page);
    await page.getByText('No devices are shared with you.').waitFor();
    assert.equal(await page.getByText('No devices yet', { exact: false }).count(), 0, 'not that the hub has none');

    const car = await carPage(page);
    assert.deepEqual(
      await usable(car).evaluateAll((controls) => controls.map((c) => c.getAttribute('aria-label'))),
      [],
      'no usable control of the car',
    );
    assert.ok((await car.getByText('needs a guest pass that names it').count()) > 0, 'the cards say why');
    await car.getByText('Charge planning is not shared with you.').waitFor();
    await car.getByText('Trips are not shared with you.').waitFor();
    for (const missing of ['Charge planning is not available on this hub', 'Trips are not recorded on this hub']) {
      assert.equal(await page.getByText(missing).count(), 0, `not "${missing}"`);
    }
    assert.deepEqual(watched.at(-1)?.errors, [], 'nothing the hub refused was asked for');
  });
});
