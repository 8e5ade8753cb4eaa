import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import type { Automation, Trace } from '../../web/src/api/types.ts';
import { browserMissing, launchChromium, type WatchedPage } from '../helpers/browser.ts';
import { signIn } from '../helpers/demo-dashboard.ts';
import { eventually, freePort, type HubProcess, startHubProcess, tempDir } from '../helpers/hub-process.ts';

/**
 * What the Automations view says beyond a rule's name and switch, in Debian's Chromium against a
 * real `triad start`: settings the hub ignored as it loaded a rule (a `max` on a restart rule, as
 * an older version accepted), a file's rule switched from the dashboard (the switch overrides the
 * file's `enabled:`, and the user can go back to the file's setting), and a queued rule's run that
 * waited its turn. Needs `npm run build` after web/src changes.
 */

const skip = browserMissing();

const WEBHOOK = 'queued-test-hook-4b7d2e';

describe('the Automations view’s notes on rules and runs', { skip: skip ?? false }, () => {
  let hub: HubProcess;
  let browser: Browser;
  const watched: WatchedPage[] = [];

  before(async () => {
    const dataDir = await tempDir('triad-e2e-auto-notes-');
    await mkdir(join(dataDir, 'automations'), { recursive: true });
    // Written when a restart rule's `max` was accepted: it loads, with the `max` ignored.
    await writeFile(
      join(dataDir, 'automations', 'legacy.yaml'),
      `id: old-restart
name: Hall reminder
mode: restart
max: 4
triggers:
  - trigger: webhook
    webhook_id: legacy-hall-hook-9c2a71
actions:
  - action: notify
    message: hall
`,
    );
    await writeFile(
      join(dataDir, 'automations', 'porch.yaml'),
      `id: porch-light
name: Porch reminder
enabled: true
triggers:
  - trigger: webhook
    webhook_id: porch-hook-5e8f10
actions:
  - action: notify
    message: porch
`,
    );
    hub = await startHubProcess({
      dataDir,
      args: ['--mqtt-port', String(await freePort()), '--log-level', 'warn'],
    });
    const created = await hub.api('/api/automations', {
      method: 'POST',
      body: JSON.stringify({
        id: 'doorbell-queue',
        name: 'Doorbell chime',
        mode: 'queued',
        triggers: [{ trigger: 'webhook', webhook_id: WEBHOOK }],
        actions: [{ delay: '2s' }, { action: 'notify', message: 'ding' }],
      }),
    });
    assert.equal(created.status, 201, await created.clone().text());
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    await hub?.stop();
  });

  async function rules(): Promise<Automation[]> {
    return (await hub.api('/api/automations')).json() as Promise<Automation[]>;
  }

  async function automations(): Promise<Page> {
    const page = await signIn(browser, hub, watched);
    await page.goto(`${hub.url}/#/automations`);
    await page.getByRole('heading', { name: 'Automations', level: 1 }).waitFor();
    return page;
  }

  const card = (page: Page, name: string) => page.locator('li.rule').filter({ hasText: name });

  test('a rule that loaded with settings it ignores lists them, and says how to clear them', async () => {
    const legacy = await eventually(async () => (await rules()).find((r) => r.id === 'old-restart'), {
      what: 'the rule from legacy.yaml',
      timeoutMs: 10_000,
    });
    assert.equal(legacy.warnings?.length, 1, JSON.stringify(legacy));
    const page = await automations();
    const note = card(page, 'Hall reminder').getByRole('note', { name: 'Notes on Hall reminder' });
    await note.waitFor();
    const text = (await note.textContent()) ?? '';
    assert.match(text, /Part of this rule is ignored; it runs without it/);
    assert.ok(text.includes(legacy.warnings?.[0] ?? '?'), `the warning itself: "${text}"`);
    assert.match(text, /Edit legacy\.yaml to remove or correct this/);
    // A rule without warnings, or without an override, shows no note.
    assert.equal(await card(page, 'Porch reminder').getByRole('note').count(), 0);
    assert.equal(await card(page, 'Doorbell chime').getByRole('note').count(), 0);
  });

  test('a file’s rule switched from the dashboard says it overrides the file, and can go back to it', async () => {
    const page = await automations();
    const porch = card(page, 'Porch reminder');
    await porch.getByRole('switch', { name: 'Porch reminder enabled' }).click();
    const note = porch.getByRole('note', { name: 'How Porch reminder is switched' });
    await note.waitFor();
    const text = (await note.textContent()) ?? '';
    assert.match(text, /Disabled here, which overrides enabled: true in porch\.yaml/);
    assert.match(text, /changing enabled: in the file has no effect until you use the file’s setting again/);
    const viewed = (await (await hub.api('/api/automations/porch-light')).json()) as Automation;
    assert.equal(viewed.override, false);

    await porch.getByRole('button', { name: 'Use the file’s setting for Porch reminder' }).click();
    await note.waitFor({ state: 'detached' });
    assert.equal(
      await porch.getByRole('switch', { name: 'Porch reminder enabled' }).getAttribute('aria-checked'),
      'true',
    );
    const back = (await (await hub.api('/api/automations/porch-light')).json()) as Automation;
    assert.equal(back.override, null, 'the switch is gone: the file’s enabled: holds again');
    assert.equal(back.enabled, true);
  });

  test('a queued rule’s run that waited its turn says when it was queued and how long it waited', async () => {
    for (let i = 0; i < 2; i++) {
      const fired = await hub.api(`/api/automations/webhooks/${WEBHOOK}`, { method: 'POST', body: '{}' });
      assert.equal(fired.status, 200, await fired.clone().text());
    }
    const traces = await eventually(
      async () => {
        const list = (await (await hub.api('/api/automations/doorbell-queue/traces')).json()) as Trace[];
        return list.length === 2 && list.every((t) => t.status === 'finished') && list;
      },
      { what: 'both runs finished', timeoutMs: 15_000 },
    );
    const waited = traces.find((t) => t.queuedAt !== undefined);
    assert.ok(waited, `a run that waited: ${JSON.stringify(traces)}`);
    const waitedMs = Number(waited.startedAt) - Number(waited.queuedAt);
    assert.ok(waitedMs >= 1500, `it waited for the first run's 2 s delay: ${waitedMs} ms`);

    const page = await automations();
    await page.getByRole('button', { name: 'Traces of Doorbell chime' }).click();
    const runs = page.locator('details.trace');
    await eventually(async () => (await runs.count()) === 2, { what: 'two runs in the list' });
    const queued = runs.filter({ hasText: 'waited' });
    assert.equal(await queued.count(), 1, 'only the run that waited says so');
    const summary = (await queued.locator('summary').textContent()) ?? '';
    assert.match(summary, /· queued \d{1,2}:\d{2}:\d{2}( [AP]M)?, waited [12] s to start$/, summary);
    await queued.locator('summary').click();
    const step = queued.locator('ol.timeline > li').filter({ hasText: /Queued behind/ });
    await step.waitFor();
    assert.match(
      (await step.textContent()) ?? '',
      /Queued behind the rule's earlier runs; waited [12] s for its turn, until \d{1,2}:\d{2}:\d{2}/,
    );
  });

  test('no console errors', () => {
    for (const { errors } of watched) assert.deepEqual(errors, []);
  });
});
