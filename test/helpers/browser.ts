import { existsSync } from 'node:fs';
import { type Browser, type ConsoleMessage, chromium, type Page } from 'playwright-core';

/** Debian's Chromium; the dashboard's browser tests drive it rather than a downloaded browser. */
export const CHROMIUM_PATH = process.env.TRIAD_TEST_CHROMIUM ?? '/usr/bin/chromium';

/**
 * Why browser tests cannot run here, or null when they can. With CI=true a missing browser is a
 * failure, not a skip (CI installs it), so the caller throws instead of skipping.
 */
export function browserMissing(): string | null {
  if (existsSync(CHROMIUM_PATH)) return null;
  const reason = `chromium is not installed at ${CHROMIUM_PATH} (apt-get install chromium)`;
  if (process.env.CI === 'true') throw new Error(`${reason}; CI must run the dashboard's browser tests`);
  return reason;
}

/** Flags for a quiet headless run: no sandbox (containers), no calls home, no GPU. */
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

export async function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: ARGS, headless: true });
}

export interface WatchedPage {
  page: Page;
  /** Console errors and uncaught page errors seen so far, as text, less those expected. */
  errors: string[];
  /** Expects a console error (Chromium logs every 4xx answer, even one the test provokes on purpose). */
  expect(pattern: RegExp): void;
}

/** A new page at the given size whose console errors and uncaught exceptions are collected. */
export async function openPage(browser: Browser, viewport: { width: number; height: number }): Promise<WatchedPage> {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  const errors: string[] = [];
  const expected: RegExp[] = [];
  page.on('console', (message: ConsoleMessage) => {
    if (message.type() !== 'error') return;
    const text = `console: ${message.text()} (${message.location().url})`;
    if (!expected.some((pattern) => pattern.test(text))) errors.push(text);
  });
  page.on('pageerror', (error) => errors.push(`page error: ${error.message}`));
  return { page, errors, expect: (pattern) => expected.push(pattern) };
}

/** The page's width beyond the viewport, in CSS pixels: 0 means nothing scrolls sideways. */
export async function horizontalOverflow(page: Page): Promise<number> {
  // Browser code as text: the tests' TypeScript has no DOM types.
  return page.evaluate<number>('document.documentElement.scrollWidth - document.documentElement.clientWidth');
}
