import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import type { Browser, Locator, Page } from 'playwright-core';
import { browserMissing, openPage } from '../helpers/browser.ts';
import { withDemoDashboard } from '../helpers/demo-dashboard.ts';
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
  const dashboard = withDemoDashboard();
  const { watched } = dashboard;
  let hub: HubProcess;
  let browser: Browser;
  before(() => {
    ({ hub, browser } = dashboard);
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

  /** The car page's charge-plan card. */
  const planCard = (car: Locator) =>
    car.locator('section.card').filter({ has: car.page().getByRole('heading', { name: 'Charge plan' }) });

  /** Signs in with a name and password and waits for the live Overview. */
  async function signedIn(name: string, password: string): Promise<Page> {
    const page = await opened();
    await page.goto(`${hub.url}/`);
    await page.getByLabel('User name').fill(name);
    await page.getByLabel('Password', { exact: true }).fill(password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await live(page);
    return page;
  }

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

    const page = await signedIn('kid', 'the kid’s long password');

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

    // A child may read the plan and the trips (the hub says so), but not plan a charge: told so
    // plainly, with no API route to try.
    const plan = planCard(car);
    await plan.getByText('Planning a charge needs an adult or owner.').waitFor();
    assert.doesNotMatch((await plan.textContent()) ?? '', /\/api\/|POST/, 'no API hint');
    assert.equal(await plan.getByRole('button', { name: 'Plan charge' }).count(), 0, 'no planning control');
    assert.equal(await car.getByText('not shared with you').count(), 0, 'the car’s records are shared with a child');
    assert.deepEqual(watched.at(-1)?.errors, [], 'nothing the hub refused was asked for');
  });

  test('an adult is offered planning a charge, and the plan the hub makes is shown', async () => {
    await owner('/api/users', { name: 'sam', role: 'adult', password: 'sam’s long password' });
    const page = await signedIn('sam', 'sam’s long password');
    const car = await carPage(page);
    const plan = planCard(car);
    const form = plan.getByRole('form', { name: /^Plan a charge of / });
    await form.waitFor();
    assert.equal(await plan.getByText('needs an adult or owner').count(), 0, 'no refusal for an adult');
    await form.getByLabel('Charge to (%)').fill('90');
    await form.getByLabel('By').fill('06:30');
    await form.getByRole('button', { name: 'Plan charge' }).click();
    // The hub's plan, as any plan is shown (or the hub's reason it could not plan, said as such).
    await plan
      .getByText(/Charge to 90 % by|Could not plan the charge:/)
      .first()
      .waitFor({ timeout: 15_000 });
    assert.equal(await plan.getByRole('alert').count(), 0, `the hub planned it: ${await plan.textContent()}`);
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
    assert.doesNotMatch((await planCard(car).textContent()) ?? '', /\/api\/|POST/, 'no API hint');
    assert.equal(await planCard(car).getByRole('button', { name: 'Plan charge' }).count(), 0, 'no planning control');
    await car.getByText('Trips are not shared with you.').waitFor();
    for (const missing of ['Charge planning is not available on this hub', 'Trips are not recorded on this hub']) {
      assert.equal(await page.getByText(missing).count(), 0, `not "${missing}"`);
    }
    assert.deepEqual(watched.at(-1)?.errors, [], 'nothing the hub refused was asked for');
  });
});
