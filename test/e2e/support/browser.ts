import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';

/** Debian's Chromium (CI runs `apt-get install -y chromium`); override with CHROMIUM_PATH. */
export const CHROMIUM_PATH = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';

/**
 * Whether browser suites can run. Missing Chromium skips them locally with a
 * one-line note; under CI=true the suite runs and fails loudly instead.
 */
export const hasChromium = existsSync(CHROMIUM_PATH) || process.env['CI'] === 'true';
if (!hasChromium) console.warn(`browser tests skipped: no Chromium at ${CHROMIUM_PATH} (set CHROMIUM_PATH)`);

/** Headless Chromium with the flags that work in containers and CI. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      // Background tabs must not be throttled or frozen: the tests drive five of them at once.
      '--disable-background-timer-throttling',
      '--disable-renderer-backgrounding',
      '--disable-backgrounding-occluded-windows',
    ],
  });
}

/** `test-results/<name>` at the repository root (kept by CI as an artifact), creating the folder. */
export function resultPath(name: string): string {
  const path = join(fileURLToPath(new URL('../../../test-results/', import.meta.url)), name);
  mkdirSync(dirname(path), { recursive: true });
  return path;
}

/**
 * Opens the demo page at `url` in a new tab of `context` and waits until it
 * says it is ready. Uncaught errors and console errors (CSP violations,
 * failed module imports) go to `errors`; failed HTTP statuses do not, since
 * the flows under test expect some (a refused probe, a thief's 401).
 */
export async function openDemoTab(context: BrowserContext, url: string, errors: string[]): Promise<Page> {
  const page = await context.newPage();
  page.on('pageerror', (error) => errors.push(`pageerror: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) {
      errors.push(`console: ${message.text()}`);
    }
  });
  await page.goto(url);
  await page.waitForSelector('html[data-ready="true"]');
  return page;
}
