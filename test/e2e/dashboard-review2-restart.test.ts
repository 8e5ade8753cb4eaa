import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import mqtt from 'mqtt';
import type { Browser, Page } from 'playwright-core';
import { browserMissing, launchChromium, openPage, type WatchedPage } from '../helpers/browser.ts';
import {
  deviceLogin,
  eventually,
  freePort,
  type HubProcess,
  restartableHub,
  startHubProcess,
  tempDir,
} from '../helpers/hub-process.ts';

/**
 * A second review of the dashboard on a hub with nothing in it yet, signed in as an adult with a
 * password (a cookie session): every view says it is empty rather than loading for ever or
 * failing, and when the hub is stopped and started again on the same port and data the page
 * comes back live by itself and follows what happens after. Needs `npm run build` after web/src
 * changes.
 */

const skip = browserMissing();
const LAPTOP = { width: 1280, height: 860 };
const PASSWORD = 'a long enough adult password';

describe('dashboard review 2: an empty hub that restarts', { skip: skip ?? false }, () => {
  let hub: HubProcess;
  let browser: Browser;
  let dataDir: string;
  let httpPort: number;
  let args: string[];
  let mqttUrl: string;
  const watched: WatchedPage[] = [];

  before(async () => {
    dataDir = await tempDir('triad-review2-');
    httpPort = await freePort();
    ({ args, mqttUrl } = await restartableHub(dataDir, {}));
    hub = await startHubProcess({ dataDir, httpPort, args: [...args, '--log-level', 'warn'] });
    const made = await hub.api('/api/users', {
      method: 'POST',
      body: JSON.stringify({ name: 'alex', role: 'adult', password: PASSWORD }),
    });
    assert.equal(made.status, 201, await made.clone().text());
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    await hub?.stop();
  });

  const badge = (page: Page) => page.getByRole('status', { name: /^Connection:/ });

  async function signedIn(): Promise<Page> {
    const opened = await openPage(browser, LAPTOP);
    watched.push(opened);
    const { page } = opened;
    await page.goto(`${hub.url}/`);
    await page.getByLabel('User name').fill('alex');
    await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Overview', level: 1 }).waitFor();
    await badge(page).getByText('Live').waitFor({ timeout: 15_000 });
    return page;
  }

  async function announceLight(id: string, name: string): Promise<void> {
    const login = await deviceLogin(hub, `E2E ${id}`, {
      publish: ['homeassistant/#', `e2e/${id}`, `e2e/${id}/#`],
      subscribe: [`e2e/${id}/#`],
    });
    const client = await mqtt.connectAsync(mqttUrl, login);
    // The plain (default schema) light: ON and OFF as its whole state.
    const config = { name, unique_id: id, state_topic: `e2e/${id}`, command_topic: `e2e/${id}/set` };
    try {
      await client.publishAsync(`homeassistant/light/${id}/config`, JSON.stringify(config), { retain: true });
      await client.publishAsync(`e2e/${id}`, 'OFF', { retain: true });
    } finally {
      await client.endAsync();
    }
  }

  test('every view of an empty household says it is empty, and none keeps loading', async () => {
    const page = await signedIn();
    for (const view of ['', 'home', 'car', 'automations', 'history']) {
      await page.goto(`${hub.url}/#/${view}`);
      await page.locator('main h1').first().waitFor();
      await eventually(async () => (await page.getByText(/^Loading/).count()) === 0 || null, {
        timeoutMs: 15_000,
        what: `#/${view} to finish loading: ${await page.locator('main').textContent()}`,
      });
      const text = (await page.locator('main').textContent()) ?? '';
      assert.doesNotMatch(text, /Could not|error|undefined|NaN|\{"/i, `#/${view} reads plainly: ${text}`);
    }
  });

  test('after the hub stops and starts again on the same port and data, the page is live again and follows changes', async () => {
    const page = await signedIn();
    // Chromium logs each refused connection while the hub is away, on every page still open.
    for (const opened of watched) opened.expect(/ERR_CONNECTION_REFUSED|WebSocket connection to .* failed/);
    await page.goto(`${hub.url}/#/home`);
    await page.locator('main h1').first().waitFor();

    await hub.stop();
    await badge(page).getByText('Reconnecting…').waitFor({ timeout: 15_000 });
    hub = await startHubProcess({ dataDir, httpPort, args: [...args, '--log-level', 'warn'] });
    // Back within the longest pause between attempts, still signed in (the session is kept).
    await badge(page).getByText('Live').waitFor({ timeout: 30_000 });
    assert.equal(await page.getByRole('heading', { name: 'Home', level: 1 }).count(), 1, 'still signed in');

    // What happens now reaches the page: a light that joins, and its switch works.
    await announceLight('e2e_after_restart', 'Porch light');
    const light = page.getByRole('switch', { name: 'Porch light' });
    await light.waitFor({ timeout: 15_000 });
    assert.equal(await light.getAttribute('aria-checked'), 'false');
  });

  test('no console errors on any page of the run', () => {
    for (const { errors } of watched) assert.deepEqual(errors, []);
  });
});
