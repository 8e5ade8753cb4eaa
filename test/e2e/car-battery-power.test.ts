import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { browserMissing } from '../helpers/browser.ts';
import { signIn, withDemoDashboard } from '../helpers/demo-dashboard.ts';

/**
 * The car's battery power (kW, into the battery, negative out of it) under a short name of its own
 * in the History view, beside its charging power, on `triad start --demo` in Debian's Chromium.
 * Needs `npm run build` after web/src changes.
 */

const skip = browserMissing();

describe("the car's battery power in the dashboard", { skip: skip ?? false }, () => {
  const dashboard = withDemoDashboard();

  test('History offers it as "Battery power" and charts it under that name', async () => {
    const { browser, hub, watched } = dashboard;
    const page = await signIn(browser, hub, watched);
    await page.goto(`${hub.url}/#/history`);
    const select = page.getByLabel('Property');
    await select.locator('option', { hasText: 'Family car · ' }).first().waitFor({ state: 'attached' });
    const car = (await select.locator('option').allTextContents()).filter((o) => o.startsWith('Family car · '));
    assert.ok(car.includes('Family car · Battery power'), car.join(', '));
    assert.ok(car.includes('Family car · Charging power'), car.join(', '));
    await select.selectOption({ label: 'Family car · Battery power' });
    await page.getByRole('heading', { level: 2, name: 'Family car battery power', exact: true }).waitFor();
    assert.deepEqual(
      watched.flatMap((w) => w.errors),
      [],
    );
  });
});
