import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, freePort } from './support/baton.js';
import { hasChromium, launchChromium, openDemoTab, resultPath } from './support/browser.js';

// `npm run demo` as a person sees it, in headless Chromium: the demo script itself
// (the same file the npm script runs) with short lifetimes on free ports, two tabs of
// one browser profile, and what appears on screen at each step of the token flow.

const DEMO = fileURLToPath(new URL('../../packages/server/scripts/demo.mjs', import.meta.url));

interface DemoWindow {
  batonDemo: {
    client: {
      getSession(): { expiresAt: number } | null;
      getAccessToken(): Promise<string | null>;
    };
  };
}

describe.skipIf(!hasChromium)('npm run demo in Chromium', () => {
  let demo: ChildProcess;
  let output = '';
  let exited: Promise<number | null>;
  let url: string;
  let apiPort: number;
  let browser: Browser;
  let context: BrowserContext;
  const pageErrors: string[] = [];
  let tab1: Page;
  let tab2: Page;

  beforeAll(async () => {
    expect(CLI).toBeTruthy(); // the demo runs the build, as `npm run demo` does after `npm ci`
    const port = await freePort();
    apiPort = await freePort();
    url = `http://localhost:${port}`;
    demo = spawn(
      process.execPath,
      [
        DEMO,
        '--port',
        String(port),
        '--api-port',
        String(apiPort),
        // Short enough that the test waits seconds: the client refreshes 2 s before expiry.
        '--access-ttl',
        '4s',
        '--grace',
        '2s',
        '--data',
        mkdtempSync(join(tmpdir(), 'baton-demo-')),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    demo.stdout?.on('data', (d: Buffer) => {
      output += d.toString();
    });
    demo.stderr?.on('data', (d: Buffer) => {
      output += d.toString();
    });
    exited = new Promise((resolve) => demo.once('exit', (code) => resolve(code)));
    const deadline = Date.now() + 20_000;
    while (!output.includes('Ctrl-C stops it.')) {
      if (demo.exitCode !== null) throw new Error(`the demo exited with ${demo.exitCode}:\n${output}`);
      if (Date.now() > deadline) throw new Error(`the demo did not start within 20 s:\n${output}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
  });

  afterAll(async () => {
    await browser?.close();
    if (demo && demo.exitCode === null && demo.signalCode === null) demo.kill('SIGKILL');
  });

  // HTTP error statuses are expected here (the thief's 401, the revoked session's).
  const openTab = () => openDemoTab(context, url, pageErrors);

  const chainStates = (page: Page) =>
    page.locator('#chain tbody tr').evaluateAll((rows) => rows.map((r) => (r as HTMLElement).dataset.state));

  it('prints both URLs and the demo lifetimes, and no warning', () => {
    expect(output).toContain(`Baton demo: ${url}/`);
    expect(output).toContain(`notes API: http://localhost:${apiPort}/demo-api/notes`);
    expect(output).toContain('demo lifetimes: access token 4 s, reuse grace 2 s');
    expect(output).not.toMatch(/warning/i);
  });

  it('after login, shows the decoded claims, a chain of one current token, and the demo lifetimes', async () => {
    tab1 = await openTab();
    await expect.poll(() => tab1.locator('#demo-banner').textContent()).toContain('access token 4 s');
    expect(await tab1.locator('#mode-token').isChecked()).toBe(true);
    await tab1.fill('#email', `flow-${Date.now()}@example.com`);
    await tab1.fill('#password', 'a long enough password');
    await tab1.click('#register');
    await tab1.waitForSelector('#status[data-state="signed-in"]');
    await expect.poll(() => tab1.locator('#claims-payload').textContent()).toMatch(/"sub": "usr_/);
    expect(await tab1.locator('#claims-header').textContent()).toContain('"typ": "at+jwt"');
    expect(await tab1.locator('#claims-times').textContent()).toContain('expires (exp)');
    await expect.poll(() => chainStates(tab1)).toEqual(['current']);
    await tab1.locator('#log li', { hasText: 'login:' }).first().waitFor();
    await tab1.screenshot({ path: resultPath('browser-demo-flow-1-login.png'), fullPage: true });

    // A second tab of the same browser joins the session and the chain without logging in.
    tab2 = await openTab();
    await tab2.waitForSelector('#status[data-state="signed-in"]');
    await expect.poll(() => chainStates(tab2)).toEqual(['current']);
    expect(pageErrors).toEqual([]);
  });

  it('the notes API verifies offline; once the token is due the client refreshes and the chain grows', async () => {
    await tab1.click('#call-api');
    await tab1.waitForSelector('#api-result[data-status="200"]');
    expect(await tab1.locator('#api-result').textContent()).toContain('verified offline');

    // Let the access token come within the client's refresh margin (2 s of a 4 s token).
    await tab1.waitForFunction(
      () => {
        const session = (window as unknown as DemoWindow).batonDemo.client.getSession();
        return session !== null && session.expiresAt - Date.now() < 1500;
      },
      undefined,
      { timeout: 10_000, polling: 100 },
    );
    await tab1.click('#call-api');
    await expect.poll(() => chainStates(tab1)).toEqual(['spent', 'current']);
    await tab1.locator('#log li', { hasText: 'expiry check:' }).first().waitFor();
    await tab1.locator('#log li', { hasText: 'rotation:' }).first().waitFor();
    expect(await tab1.locator('#chain tbody tr').first().textContent()).toContain('spent');
    await tab1.waitForSelector('#api-result[data-status="200"]');

    // The other tab saw the refresh done by this one, and has the same chain.
    await tab2.locator('#log li', { hasText: 'tokenRefreshed' }).filter({ hasText: 'another tab' }).waitFor();
    await expect.poll(() => chainStates(tab2)).toEqual(['spent', 'current']);

    // Fingerprints only: neither the refresh tokens nor the access token are on screen.
    const text = (await tab1.locator('body').textContent()) ?? '';
    const accessToken = await tab1.evaluate(() =>
      (window as unknown as DemoWindow).batonDemo.client.getAccessToken(),
    );
    expect(accessToken).toMatch(/^eyJ/);
    expect(text).toContain('"sub": "usr_');
    expect(text).not.toContain('brt_');
    expect(text).not.toContain(accessToken!);
    await tab1.screenshot({ path: resultPath('browser-demo-flow-2-rotated.png'), fullPage: true });
    expect(pageErrors).toEqual([]);
  });

  it('"Replay a stolen token" revokes the session, explains why, and every tab is signed out', async () => {
    // The button waits for the grace window to close (inside it the replay would be honoured).
    await tab1.waitForSelector('#replay:not([disabled])', { timeout: 10_000 });
    await tab1.click('#replay');
    await tab1.waitForSelector('#replay-result:not([hidden])');
    const explanation = await tab1.locator('#replay-result').textContent();
    expect(explanation).toContain('cannot tell which one is the thief');
    expect(explanation).toContain('revoked the whole session');
    expect(explanation).toContain('every tab was signed out');
    await tab1.waitForSelector('#status[data-state="signed-out"]');
    await expect.poll(() => chainStates(tab1)).toEqual(['revoked', 'revoked']);
    await tab1.screenshot({ path: resultPath('browser-demo-flow-3-replay.png'), fullPage: true });

    await tab2.waitForSelector('#status[data-state="signed-out"]');
    await tab2.locator('#log li', { hasText: 'signedOut: invalid_grant' }).first().waitFor();
    expect(await tab2.locator('#signed-out-why').textContent()).toContain('revoked the whole session');
    await tab2.screenshot({ path: resultPath('browser-demo-flow-4-second-tab.png'), fullPage: true });
    expect(pageErrors).toEqual([]);
  });

  it('Ctrl-C stops Baton, the notes API and the front origin', async () => {
    demo.kill('SIGINT');
    expect(await exited).toBe(0);
    await expect(fetch(`${url}/healthz`)).rejects.toThrow();
    await expect(fetch(`http://127.0.0.1:${apiPort}/demo-api/info`)).rejects.toThrow();
    expect(output).not.toContain('brt_');
  });
});
