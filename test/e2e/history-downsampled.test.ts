import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser } from 'playwright-core';
import type { StateChanged } from '../../src/core/events.ts';
import { openStore } from '../../src/store/index.ts';
import { browserMissing, launchChromium, openPage } from '../helpers/browser.ts';
import { eventually, freePort, type HubProcess, startHubProcess, tempDir } from '../helpers/hub-process.ts';

/**
 * A week of a busy property (a reading a second: 604,800 values) charted in the History view, in
 * Debian's Chromium against `triad start --demo`: the view asks for about its width in points and
 * the chart covers the whole week, not its first hours. Needs `npm run build` after web/src changes.
 */

const skip = browserMissing();
const WEEK_MS = 7 * 86_400_000;
const THING = 'living-room-sensor';
const PROPERTY = 'sensor.temperature';

describe('History charts a whole busy week', { skip: skip ?? false }, () => {
  let hub: HubProcess;
  let browser: Browser;
  let written = 0;
  let wroteAt = 0;

  before(async () => {
    const dataDir = await tempDir();
    const args = ['--demo', '--mqtt-port', String(await freePort()), '--log-level', 'warn'];
    // A first start makes the demo's things; the week is then written while the hub is stopped.
    const first = await startHubProcess({ dataDir, args });
    await eventually(async () => (await first.api(`/api/things/${THING}`)).ok, { what: 'the demo sensor' });
    await first.stop();
    const store = await openStore({ kind: 'sqlite', file: join(dataDir, 'triad.db') });
    try {
      const sensor = (await store.listThings()).find((t) => t.id === THING);
      assert.ok(sensor, 'the demo sensor is in the store');
      const householdId = sensor.householdId;
      const end = Date.now();
      wroteAt = end;
      const start = end - WEEK_MS + 1000;
      // Added before the week: a thing's history begins when it was added.
      await store.saveThing({ ...sensor, createdAt: new Date(start).toISOString() });
      for (let ts = start; ts <= end; ) {
        const batch: StateChanged[] = [];
        for (; ts <= end && batch.length < 20_000; ts += 1000) {
          batch.push({
            type: 'state',
            id: `evt_week_${ts}`,
            householdId,
            ts,
            cause: null,
            thing: THING,
            property: PROPERTY,
            from: null,
            to: Math.round((21 + 3 * Math.sin(ts / 3_600_000)) * 100) / 100,
            source: 'test',
          });
        }
        written += batch.length;
        await store.appendHistory(batch);
      }
      await store.settled?.();
    } finally {
      await store.close();
    }
    hub = await startHubProcess({ dataDir, args });
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    await hub?.stop();
  });

  test('the chart spans the week from its first bucket to its last, and says how many values it held', async () => {
    const { page } = await openPage(browser, { width: 1280, height: 860 });
    await page.goto(`${hub.url}/`);
    await page.getByLabel('Token', { exact: true }).fill(hub.token);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Overview', level: 1 }).waitFor();
    await page.goto(`${hub.url}/#/history`);
    const select = page.getByLabel('Property');
    const option = select.locator('option', { hasText: 'Living room sensor · Temperature' });
    await option.first().waitFor({ state: 'attached' });
    await select.selectOption({ label: (await option.first().textContent()) ?? '' });
    // The week's answer, not the day's the view may still be loading.
    const answered = page.waitForResponse(
      (res) => {
        const url = new URL(res.url());
        const span = Date.parse(url.searchParams.get('to') ?? '') - Date.parse(url.searchParams.get('from') ?? '');
        return url.pathname === `/api/things/${THING}/history` && url.searchParams.has('points') && span > WEEK_MS / 2;
      },
      { timeout: 30_000 },
    );
    await page.getByLabel('Range').selectOption('week');
    const response = await answered;
    const asked = Number(new URL(response.url()).searchParams.get('points'));
    assert.ok(asked >= 240 && asked <= 5000, `the view asks for about its width in points: ${asked}`);
    const body = (await response.json()) as { points: unknown[]; downsampled: { count: number; bucketMs: number } };
    assert.ok(body.points.length <= asked, `${body.points.length} points for ${asked} asked`);
    // The view's week ends now, a little after the written one did: its first seconds fall out.
    const held = written - Math.ceil((Date.now() - wroteAt) / 1000) - 60;
    assert.ok(body.downsampled.count >= held, `the range held the week: ${body.downsampled.count} of ${written}`);

    const chart = page.locator('section.card svg.chart');
    await eventually(async () => Number(await chart.getAttribute('data-points')) > 100, {
      timeoutMs: 20_000,
      what: 'the week charted',
    });
    const now = Date.now();
    const first = Date.parse((await chart.getAttribute('data-first')) ?? '');
    const last = Date.parse((await chart.getAttribute('data-last')) ?? '');
    const slack = 2 * body.downsampled.bucketMs + 60_000;
    assert.ok(
      Math.abs(first - (now - WEEK_MS)) < slack,
      `the first bucket is near from: ${new Date(first).toISOString()}`,
    );
    assert.ok(now - last < slack, `the last bucket is near to: ${new Date(last).toISOString()}`);
    assert.ok(await chart.locator('path.chart-band').count(), 'a min–max band behind the mean');

    const summary = (await page.locator('section.card p.summary').textContent()) ?? '';
    const count = Number.parseInt(summary.replace(/[,.\s\u00a0\u202f]/g, ''), 10);
    assert.ok(count >= held, `the summary counts every recorded value: "${summary}"`);
    const title = (await chart.locator('title').textContent()) ?? '';
    assert.match(title, /^Living room sensor temperature: [\d.,\s\u00a0\u202f]+ recorded values from /, title);
    await page.close();
  });
});
