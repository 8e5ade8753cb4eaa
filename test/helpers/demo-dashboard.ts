import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import type { Browser, Locator, Page } from 'playwright-core';
import { launchChromium, openPage, type WatchedPage } from './browser.ts';
import { eventually, freePort, type HubProcess, startHubProcess } from './hub-process.ts';

/** `triad start --demo` on free ports, once the demo car has joined (the dashboard's tests start from there). */
export async function startDemoHub(): Promise<HubProcess> {
  const hub = await startHubProcess({
    args: ['--demo', '--mqtt-port', String(await freePort()), '--log-level', 'warn'],
  });
  await eventually(async () => (await hub.api('/api/things/family-car')).ok, {
    timeoutMs: 15_000,
    what: 'the demo car',
  });
  return hub;
}

/** What the browser tests of one `describe` share: the demo hub, one Chromium, and every page opened. */
export interface DemoDashboard {
  hub: HubProcess;
  browser: Browser;
  /** Pages opened so far, with the console errors each has seen. */
  watched: WatchedPage[];
}

/**
 * Starts the demo hub and Chromium before the tests of the `describe` it is called in, and closes
 * both after them. The fields are there once the tests run.
 */
export function withDemoDashboard(): DemoDashboard {
  const dashboard = { watched: [] as WatchedPage[] } as unknown as DemoDashboard;
  before(async () => {
    dashboard.hub = await startDemoHub();
    dashboard.browser = await launchChromium();
  });
  after(async () => {
    await dashboard.browser?.close();
    await dashboard.hub?.stop();
  });
  return dashboard;
}

/**
 * Signs in with the owner token on a page (a new one, watched for console errors, unless one is
 * given) and waits for the Overview.
 */
export async function signIn(
  browser: Browser,
  hub: HubProcess,
  watched: WatchedPage[],
  options: { page?: Page; viewport?: { width: number; height: number } } = {},
): Promise<Page> {
  let page = options.page;
  if (!page) {
    const opened = await openPage(browser, options.viewport ?? { width: 1280, height: 860 });
    watched.push(opened);
    page = opened.page;
  }
  await page.goto(`${hub.url}/`);
  await page.getByLabel('Token', { exact: true }).fill(hub.token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Overview', level: 1 }).waitFor();
  return page;
}

/** `triad sim car` as its own process, with extra flags: a VISS server the hub attaches to like a car gateway. */
export async function startCarSimulator(args: string[] = []): Promise<{ child: ChildProcess; url: string }> {
  const port = await freePort();
  // A new car every time: the simulator keeps its car between runs, in a file it is told here.
  const state = await mkdtemp(join(tmpdir(), 'triad-sim-car-'));
  const child = spawn(
    process.execPath,
    ['bin/triad.js', 'sim', 'car', '--viss-port', String(port), '--state', join(state, 'car.json'), ...args],
    { cwd: new URL('../../', import.meta.url).pathname, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  child.once('exit', () => void rm(state, { recursive: true, force: true }));
  let out = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const url = await eventually(() => /VISS at (\S+)/.exec(out)?.[1], {
    timeoutMs: 20_000,
    what: `the car simulator:\n${out}`,
  });
  return { child, url };
}

/** The Car view's charge-plan card (the view must be open). */
export function planCard(page: Page): Locator {
  return page
    .locator('section.car section.card')
    .filter({ has: page.getByRole('heading', { name: 'Charge plan' }) })
    .first();
}

/**
 * Plans a charge of the demo car from its card in the Car view, "to `targetSoc` % by `by`" as a
 * person types it, and answers the sentence the card then says the plan in ("Charge to 90 % by …").
 */
export async function planCharge(page: Page, targetSoc: number, by: string): Promise<string> {
  const plan = planCard(page);
  const form = plan.getByRole('form', { name: /^Plan a charge of / });
  await form.waitFor({ timeout: 15_000 });
  await form.getByLabel('Charge to (%)').fill(String(targetSoc));
  await form.getByLabel('By').fill(by);
  await form.getByRole('button', { name: 'Plan charge' }).click();
  const said = plan.getByText(new RegExp(`^Charge to ${targetSoc} % by `));
  await said.waitFor({ timeout: 15_000 });
  return (await said.textContent()) ?? '';
}
