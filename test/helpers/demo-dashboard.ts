import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { openPage, type WatchedPage } from './browser.ts';
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
