import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import type { Thing } from '../../web/src/api/types.ts';
import { propertyLabels } from '../../web/src/labels.ts';
import { browserMissing, launchChromium, type WatchedPage } from '../helpers/browser.ts';
import { signIn, startDemoHub } from '../helpers/demo-dashboard.ts';
import { eventually, type HubProcess } from '../helpers/hub-process.ts';

/**
 * What the dashboard calls a thing's properties, on `triad start --demo` in Debian's Chromium: the
 * demo charger's meter and the energy of its charge under way read apart in the History view as
 * on its Home card, and no two properties of any demo thing (car, house, people) share a name.
 * Needs `npm run build` after web/src changes.
 */

const skip = browserMissing();

describe('property labels in the dashboard', { skip: skip ?? false }, () => {
  let hub: HubProcess;
  let browser: Browser;
  let charger: Thing;
  const watched: WatchedPage[] = [];

  before(async () => {
    hub = await startDemoHub();
    charger = await eventually(
      async () => ((await (await hub.api('/api/things')).json()) as Thing[]).find((t) => t.kind === 'charger'),
      { timeoutMs: 15_000, what: 'the demo charger' },
    );
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    await hub?.stop();
  });

  const signedIn = () => signIn(browser, hub, watched);

  /** The History view's property choices, by thing name: "Driveway charger · Meter reading". */
  async function historyLabels(page: Page): Promise<Map<string, string[]>> {
    await page.goto(`${hub.url}/#/history`);
    const select = page.getByLabel('Property');
    await select
      .locator('option', { hasText: `${charger.name} · ` })
      .first()
      .waitFor({ state: 'attached' });
    const byThing = new Map<string, string[]>();
    for (const option of await select.locator('option').allTextContents()) {
      const at = option.indexOf(' · ');
      assert.ok(at > 0, `an option names its thing and its property: "${option}"`);
      const thing = option.slice(0, at);
      byThing.set(thing, [...(byThing.get(thing) ?? []), option.slice(at + 3)]);
    }
    return byThing;
  }

  test("the History view names the charger's meter reading and the energy of this charge apart", async () => {
    const page = await signedIn();
    const labels = (await historyLabels(page)).get(charger.name) ?? [];
    assert.ok(labels.includes('Meter reading'), `the meter's running total: ${labels.join(', ')}`);
    assert.ok(labels.includes('Energy this charge'), `the energy of the charge under way: ${labels.join(', ')}`);
    assert.ok(!labels.includes('Energy'), `no property is just "Energy": ${labels.join(', ')}`);
    assert.equal(new Set(labels).size, labels.length, `every property has a name of its own: ${labels.join(', ')}`);

    // The chart says which energy it draws.
    await page.getByLabel('Property').selectOption({ label: `${charger.name} · Meter reading` });
    await page.getByRole('heading', { level: 2, name: `${charger.name} meter reading`, exact: true }).waitFor();

    // The charger's Home card calls them the same.
    await page.goto(`${hub.url}/#/home`);
    const card = page.getByRole('article', { name: charger.name });
    await card.getByRole('term').first().waitFor();
    const terms = await card.getByRole('term').allTextContents();
    for (const label of labels)
      assert.ok(terms.includes(label), `"${label}" reads the same on the Home card: ${terms}`);
  });

  test('no demo thing has two properties of one name, in History or anywhere the labels are used', async () => {
    const things = (await (await hub.api('/api/things')).json()) as Thing[];
    for (const thing of things) {
      const labels = [...propertyLabels(thing).values()];
      const twice = labels.filter((label, i) => labels.indexOf(label) !== i);
      assert.deepEqual(twice, [], `${thing.name} (${thing.kind}): ${labels.join(', ')}`);
    }

    const page = await signedIn();
    const shown = await historyLabels(page);
    assert.ok(shown.size >= 10, `the demo's things are all there: ${[...shown.keys()].join(', ')}`);
    for (const [thing, labels] of shown) {
      const twice = labels.filter((label, i) => labels.indexOf(label) !== i);
      assert.deepEqual(twice, [], `${thing} in History: ${labels.join(', ')}`);
    }
    // Names that said too little: a battery's "Level", a car's "Energy" beside its lifetime figures.
    const car = shown.get('Family car') ?? [];
    for (const label of ['Battery level', 'Energy this charge', 'Lifetime energy charged', 'Cabin temperature'])
      assert.ok(car.includes(label), `the car's "${label}": ${car.join(', ')}`);
    for (const vague of ['Level', 'Energy', 'Locked', 'Current temperature'])
      assert.ok(!car.includes(vague), `the car has no bare "${vague}": ${car.join(', ')}`);

    // The car's facts on the overview use the names History gives the same properties.
    await page.goto(`${hub.url}/`);
    const facts = page.getByRole('listitem').filter({ has: page.getByRole('heading', { name: 'Family car' }) });
    await facts.getByRole('term').first().waitFor();
    for (const term of await facts.getByRole('term').allTextContents())
      assert.ok(car.includes(term), `the overview's "${term}" is what History calls it: ${car.join(', ')}`);
  });

  test('no console errors on any page of the run', () => {
    assert.deepEqual(
      watched.flatMap((w) => w.errors),
      [],
    );
  });
});
