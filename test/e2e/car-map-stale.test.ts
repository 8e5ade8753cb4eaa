import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser, Locator, Page } from 'playwright-core';
import type { Thing } from '../../web/src/api/types.ts';
import { browserMissing, launchChromium, type WatchedPage } from '../helpers/browser.ts';
import { signIn, startCarSimulator } from '../helpers/demo-dashboard.ts';
import { eventually, freePort, type HubProcess, startHubProcess } from '../helpers/hub-process.ts';
import { type Phone, type Place, postOwnTracksFix } from '../helpers/owntracks.ts';

/**
 * A person whose phone went silent, on the car's map, in Debian's Chromium against `triad start`
 * with a simulated car: their dot says they are last known, and how old the last report is, as the
 * Overview says it, and so does the map's name for screen readers; the next fix brings back their
 * name alone. Needs `npm run build` after web/src changes.
 */

const skip = browserMissing();
/** How old the first fix is when it is posted: old enough to read as whole minutes. */
const FIRST_FIX_AGE_MS = 3 * 60_000;
/** The household's `staleAfter` for the test, in seconds: far shorter than the first fix's age. */
const STALE_AFTER = 5;

/** A location fix as the OwnTracks app posts it, taken `at` (ms). */
const postFix = (hub: HubProcess, phone: Phone, place: Place, at: number) =>
  postOwnTracksFix(hub.url, phone, place, at);

describe('dashboard: a person whose phone went silent, on the car’s map', { skip: skip ?? false }, () => {
  let hub: HubProcess;
  let browser: Browser;
  let car: Awaited<ReturnType<typeof startCarSimulator>>;
  const watched: WatchedPage[] = [];

  before(async () => {
    hub = await startHubProcess({ args: ['--mqtt-port', String(await freePort()), '--log-level', 'warn'] });
    car = await startCarSimulator(['--at', 'home']);
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    car?.child.kill('SIGTERM');
    await hub?.stop();
  });

  async function call<T>(path: string, method: string, body: unknown): Promise<T> {
    const res = await hub.api(path, { method, body: JSON.stringify(body) });
    assert.ok(res.ok, `${method} ${path}: ${res.status} ${await res.clone().text()}`);
    return (await res.json()) as T;
  }

  const thing = async (id: string) => (await (await hub.api(`/api/things/${id}`)).json()) as Thing;

  /** The names by the people's dots on the car's map. */
  const personLabels = (map: Locator) => map.locator('g.map-marker.person text');

  test('their dot says last known, with the age of the last report, until a new fix', async () => {
    await call('/api/vehicles', 'POST', { name: 'Family car', viss: car.url });
    const parked = await eventually(
      async () => {
        const state = (await thing('family-car')).state;
        return typeof state['location.latitude'] === 'number' ? state : undefined;
      },
      { timeoutMs: 20_000, what: 'the simulated car to say where it is' },
    );
    // Robin is half a kilometre north of the car, so their dot has a label of its own.
    const robinAt = {
      latitude: Number(parked['location.latitude']) + 0.0045,
      longitude: Number(parked['location.longitude']),
    };
    const { id } = await call<{ id: string }>('/api/people', 'POST', { name: 'Robin' });
    const phone = await call<Phone>(`/api/people/${id}/trackers`, 'POST', { name: 'phone' });
    // One fix a few minutes old (the phone queued it), while staleAfter is the default 12 h.
    const first = Math.floor((Date.now() - FIRST_FIX_AGE_MS) / 1000) * 1000;
    const fix = await postFix(hub, phone, robinAt, first);
    assert.ok(fix.ok, `the fix: ${fix.status}`);
    await eventually(async () => (await thing(id)).state['location.latitude'] === robinAt.latitude, {
      timeoutMs: 15_000,
      what: "Robin's position",
    });

    const page: Page = await signIn(browser, hub, watched);
    await page.goto(`${hub.url}/#/car`);
    const map = page.getByRole('region', { name: 'Family car' }).locator('svg.map');
    const labels = personLabels(map);
    // Reporting normally: the name alone, on a dot drawn as current.
    await labels.getByText('Robin', { exact: true }).waitFor({ timeout: 15_000 });
    assert.equal(await map.locator('g.map-marker.person.last-known').count(), 0);

    // The household's staleAfter becomes a few seconds: Robin's only phone is stale at once, and Robin offline.
    await call('/api/household', 'PUT', { staleAfter: STALE_AFTER });
    await eventually(async () => (await thing(id)).online === false, {
      timeoutMs: 15_000,
      what: 'the hub to mark Robin offline',
    });

    // 3 minutes ago (4 on a machine slow enough to take a minute over the steps above).
    await labels.getByText(/^Robin · last known [34] min ago$/).waitFor({ timeout: 15_000 });
    // …on a dot drawn greyed, as where Robin was.
    assert.match((await map.locator('g.map-marker.person.last-known text').textContent()) ?? '', /^Robin · last known/);
    // The dots' labels are not read out: the map's name says it, units spelt out.
    const name = (await map.locator('title').textContent()) ?? '';
    assert.match(name, /^Map of Family car at .*; Robin when last known: the last report came [34] minutes ago$/);
    await page.getByRole('img', { name }).waitFor({ timeout: 5_000 });

    // A new fix: the name alone again. The fix is fresh for only STALE_AFTER seconds, so the label
    // is watched for by the browser itself (a locator, which Playwright polls in the page; a string
    // predicate was evaluated with eval, which the dashboard's CSP refuses).
    const back = page
      .locator('g.map-marker.person text')
      .filter({ hasText: /^Robin$/ })
      .first()
      .waitFor({ timeout: 30_000 });
    const again = await postFix(hub, phone, robinAt, Math.floor(Date.now() / 1000) * 1000);
    assert.ok(again.ok, `the new fix: ${again.status}`);
    await back;
    // It goes stale again after a few seconds, said the same way.
    await labels.getByText(/^Robin · last known less than a minute ago$/).waitFor({ timeout: 30_000 });
  });

  test('no page logged an error', () => {
    assert.deepEqual(
      watched.flatMap((w) => w.errors),
      [],
    );
  });
});
