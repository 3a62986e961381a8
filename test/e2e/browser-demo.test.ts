import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { metricValue, type RunningBaton, startBaton } from './support/baton.js';
import { hasChromium, launchChromium, openDemoTab, resultPath } from './support/browser.js';

// The demo page in real headless Chromium against the real server: five tabs
// of one browser profile share cookies, Web Locks and BroadcastChannel, as a
// user's tabs do.

const OUTCOMES = ['rotated', 'grace_replay', 'reuse_detected', 'invalid'] as const;

async function refreshCounts(
  baton: RunningBaton,
): Promise<Record<(typeof OUTCOMES)[number] | 'total', number>> {
  const text = await baton.metrics();
  const counts = Object.fromEntries(
    OUTCOMES.map((o) => [o, metricValue(text, 'baton_refresh_total', { outcome: o })]),
  );
  return { ...counts, total: Object.values(counts).reduce((a, b) => a + b, 0) } as never;
}

interface DemoWindow {
  batonDemo: {
    client: {
      fetch(input: string): Promise<Response>;
      getSession(): { sessionId?: string; expiresAt: number } | null;
      getAccessToken(): Promise<string | null>;
      readonly dpop: { bound: boolean; reason?: string };
    };
  };
}

/** What the page's IndexedDB holds of DPoP keys (the client's `baton-dpop` database), read in the page. */
function storedKeys(page: Page) {
  return page.evaluate(
    () =>
      new Promise<
        { name: string; extractable: boolean; algorithm: string; curve: string; usages: string[] }[]
      >((resolve, reject) => {
        const open = indexedDB.open('baton-dpop');
        open.onerror = () => reject(open.error);
        open.onsuccess = () => {
          const db = open.result;
          if (!db.objectStoreNames.contains('keys')) {
            db.close();
            resolve([]);
            return;
          }
          const store = db.transaction('keys', 'readonly').objectStore('keys');
          const names = store.getAllKeys();
          const values = store.getAll();
          values.onsuccess = () => {
            db.close();
            resolve(
              (values.result as CryptoKeyPair[]).map((pair, i) => ({
                name: String(names.result[i]),
                extractable: pair.privateKey.extractable,
                algorithm: pair.privateKey.algorithm.name,
                curve: (pair.privateKey.algorithm as EcKeyAlgorithm).namedCurve,
                usages: pair.privateKey.usages,
              })),
            );
          };
          values.onerror = () => reject(values.error);
        };
      }),
  );
}

describe.skipIf(!hasChromium)('demo page in Chromium', () => {
  let baton: RunningBaton;
  let browser: Browser;
  let context: BrowserContext;
  const pages: Page[] = [];
  const pageErrors: string[] = [];
  const email = `tabs-${Date.now()}@example.com`;
  const password = 'a long enough password';

  beforeAll(async () => {
    // A short access-token lifetime lets the test force expiry by waiting seconds, not minutes.
    baton = await startBaton({ env: { BATON_ACCESS_TTL: '6s', BATON_LIMIT_IP_PER_MIN: 'off' } });
    browser = await launchChromium();
    context = await browser.newContext();
  });

  afterAll(async () => {
    await browser?.close();
    await baton?.stop();
  });

  // HTTP error statuses are expected here (the start-up cookie probe's 401).
  async function openTab(): Promise<Page> {
    const page = await openDemoTab(context, baton.url, pageErrors);
    pages.push(page);
    return page;
  }

  const status = (page: Page) => page.locator('#status').getAttribute('data-state');

  it('registers and logs in, then opens four more tabs that share the session without refreshing', async () => {
    const tab1 = await openTab();
    expect(await status(tab1)).toBe('signed-out');
    await tab1.fill('#email', email);
    await tab1.fill('#password', password);
    await tab1.click('#register');
    await tab1.waitForSelector('#status[data-state="signed-in"]');
    await tab1.waitForSelector('#sessions tbody tr.current');

    const before = await refreshCounts(baton);
    for (let i = 2; i <= 5; i++) {
      const tab = await openTab();
      await tab.waitForSelector('#status[data-state="signed-in"]');
    }
    const sessionIds = await Promise.all(pages.map((p) => p.locator('#status').textContent()));
    expect(new Set(sessionIds).size).toBe(1);
    // The new tabs got the session from tab 1 over BroadcastChannel, not by
    // refreshing through the cookie (unless the token fell due meanwhile).
    expect((await refreshCounts(baton)).total - before.total).toBeLessThanOrEqual(1);
    expect(pageErrors).toEqual([]);
  });

  it('with the token expired in every tab, requests fired in all five at once cause exactly one refresh', async () => {
    // Force expiry: wait until every tab's token has expired on its own clock.
    for (const page of pages) {
      await page.waitForFunction(
        () => {
          const session = (window as unknown as DemoWindow).batonDemo.client.getSession();
          return session !== null && session.expiresAt < Date.now();
        },
        undefined,
        { timeout: 30_000, polling: 100 },
      );
    }
    const before = await refreshCounts(baton);

    // Five requests per tab, all tabs at once.
    const statuses = await Promise.all(
      pages.map((page) =>
        page.evaluate(async () => {
          const { client } = (window as unknown as DemoWindow).batonDemo;
          const responses = await Promise.all(Array.from({ length: 5 }, () => client.fetch('/auth/me')));
          return responses.map((r) => r.status);
        }),
      ),
    );
    expect(statuses.flat()).toEqual(Array(25).fill(200));

    const after = await refreshCounts(baton);
    expect(after.total - before.total).toBe(1);
    expect(after.rotated - before.rotated).toBe(1);
    expect(after.reuse_detected).toBe(0);

    // Nobody was signed out, and every tab now holds the one new token.
    for (const page of pages) expect(await status(page)).toBe('signed-in');
    const tokens = await Promise.all(
      pages.map((page) =>
        page.evaluate(() => (window as unknown as DemoWindow).batonDemo.client.getAccessToken()),
      ),
    );
    expect(new Set(tokens).size).toBe(1);

    // The demo, as a user sees it: the /auth/me result, the countdown, the event log.
    const tab1 = pages[0]!;
    await tab1.click('#call-me');
    await tab1.waitForSelector('#me-result[data-status="200"]');
    await tab1.locator('#log li', { hasText: 'tokenRefreshed' }).first().waitFor();
    await tab1.screenshot({ path: resultPath('browser-demo.png'), fullPage: true });
    expect(pageErrors).toEqual([]);
  });

  it('the session is DPoP-bound: one non-extractable key in IndexedDB, shared by the five tabs', async () => {
    // Every tab sees one key, the same one (IndexedDB is per origin), and it cannot be exported.
    for (const page of pages) {
      expect(await storedKeys(page)).toEqual([
        {
          name: `baton:cookie:${baton.url}:`,
          extractable: false,
          algorithm: 'ECDSA',
          curve: 'P-256',
          usages: ['sign'],
        },
      ]);
      expect(await page.evaluate(() => (window as unknown as DemoWindow).batonDemo.client.dpop)).toEqual({
        bound: true,
      });
      expect(await page.locator('#status').getAttribute('data-dpop')).toBe('bound');
    }
    // The page's own script can use the key but not take it away.
    const exported = await pages[0]!.evaluate(async () => {
      const db = await new Promise<IDBDatabase>((resolve, reject) => {
        const open = indexedDB.open('baton-dpop');
        open.onsuccess = () => resolve(open.result);
        open.onerror = () => reject(open.error);
      });
      const pair = await new Promise<CryptoKeyPair>((resolve, reject) => {
        const get = db.transaction('keys', 'readonly').objectStore('keys').getAll();
        get.onsuccess = () => resolve((get.result as CryptoKeyPair[])[0]!);
        get.onerror = () => reject(get.error);
      });
      db.close();
      return crypto.subtle.exportKey('jwk', pair.privateKey).then(
        () => 'exported',
        (error: Error) => error.name,
      );
    });
    expect(exported).toBe('InvalidAccessError');
    // The server agrees: the session (refreshed once by the five tabs above, with that key) is bound.
    const sessions = await pages[1]!.evaluate(async () => {
      const response = await (window as unknown as DemoWindow).batonDemo.client.fetch('/auth/sessions');
      return ((await response.json()) as { sessions: { current: boolean; dpop_bound: boolean }[] }).sessions;
    });
    expect(sessions.find((s) => s.current)?.dpop_bound).toBe(true);
    expect((await refreshCounts(baton)).invalid).toBe(0);
    expect(pageErrors).toEqual([]);
  });

  it('a tab without the key (dpop: false) gets its expired call answered by the tabs with the key, in the same call', async () => {
    // Same origin and profile as the demo tabs (BroadcastChannel, Web Locks,
    // cookies), but this tab's client cannot sign: it must not refresh the
    // bound session itself (the server would refuse it), and asks the others.
    const keyless = await context.newPage();
    await keyless.goto(`${baton.url}/healthz`);
    // A string, so that the test's transform leaves the page's import() alone.
    await keyless.evaluate(`import('${baton.url}/web/client/index.js').then(({ createAuthClient }) => {
      window.keyless = createAuthClient({ baseUrl: '${baton.url}', mode: 'cookie', dpop: false });
    })`);
    type Keyless = { keyless: DemoWindow['batonDemo']['client'] };
    await keyless.waitForFunction(() => (window as unknown as Keyless).keyless.getSession() !== null);
    await keyless.waitForFunction(
      () => {
        const session = (window as unknown as Keyless).keyless.getSession();
        return session !== null && session.expiresAt < Date.now();
      },
      undefined,
      { timeout: 30_000, polling: 100 },
    );
    const before = await refreshCounts(baton);
    const result = await keyless.evaluate(async () => {
      const client = (window as unknown as Keyless).keyless;
      const response = await client.fetch('/auth/me');
      return { status: response.status, dpop: client.dpop, token: await client.getAccessToken() };
    });
    expect(result.status).toBe(200);
    expect(result.dpop).toEqual({ bound: true, reason: 'disabled' });
    const after = await refreshCounts(baton);
    // One refresh, by a tab with the key; no refusal of a proof-less refresh.
    expect(after.rotated - before.rotated).toBe(1);
    expect(after.invalid - before.invalid).toBe(0);
    expect(after.reuse_detected).toBe(0);
    const demoToken = await pages[0]!.evaluate(() =>
      (window as unknown as DemoWindow).batonDemo.client.getAccessToken(),
    );
    expect(result.token).toBe(demoToken);
    await keyless.close();
    expect(pageErrors).toEqual([]);
  });

  it('signing out in one tab signs out all of them, and the cookie no longer works', async () => {
    const before = await refreshCounts(baton);
    await pages[2]!.click('#logout');
    for (const page of pages) {
      await page.waitForSelector('#status[data-state="signed-out"]');
      await page.locator('#log li', { hasText: 'signedOut: logout' }).first().waitFor();
    }
    // The key went with the session.
    expect(await storedKeys(pages[0]!)).toEqual([]);
    // A fresh tab finds no session: its one cookie attempt is refused.
    const fresh = await openTab();
    expect(await status(fresh)).toBe('signed-out');
    const after = await refreshCounts(baton);
    expect(after.rotated - before.rotated).toBe(0);
    expect(after.reuse_detected - before.reuse_detected).toBe(0);
    expect(pageErrors).toEqual([]);
  });

  it('revoking another device from the sessions list signs that device out at its next refresh', async () => {
    const tab = pages[0]!;
    await tab.fill('#email', email);
    await tab.fill('#password', password);
    await tab.click('#login');
    await tab.waitForSelector('#status[data-state="signed-in"]');

    // Another device: a separate browser profile with its own cookie jar.
    const otherContext = await browser.newContext();
    const other = await otherContext.newPage();
    await other.goto(baton.url);
    await other.waitForSelector('html[data-ready="true"]');
    await other.fill('#email', email);
    await other.fill('#password', password);
    await other.click('#login');
    await other.waitForSelector('#status[data-state="signed-in"]');

    await tab.click('#reload-sessions');
    await tab.waitForFunction(() => document.querySelectorAll('#sessions tbody tr').length === 2);
    await tab.click('#sessions tbody tr:not(.current) button');
    await tab.waitForFunction(() => document.querySelectorAll('#sessions tbody tr').length === 1);

    // Its access token lives on until it expires; the refresh after that is refused.
    await other.waitForFunction(
      () => {
        const session = (window as unknown as DemoWindow).batonDemo.client.getSession();
        return session !== null && session.expiresAt < Date.now();
      },
      undefined,
      { timeout: 30_000, polling: 100 },
    );
    await other.click('#call-me');
    await other.waitForSelector('#status[data-state="signed-out"]');
    await other.locator('#log li', { hasText: 'signedOut: invalid_grant' }).first().waitFor();
    // This browser is unaffected.
    expect(await status(tab)).toBe('signed-in');
    await otherContext.close();
    expect(pageErrors).toEqual([]);
  });

  it('runs in a Web Worker (no DOM, no localStorage) in token mode', async () => {
    const workerContext = await browser.newContext();
    const page = await workerContext.newPage();
    // /healthz carries no CSP, so the page may start a worker from a blob URL.
    await page.goto(`${baton.url}/healthz`);
    const result = await page.evaluate(
      async ({ base, email, password }) => {
        const code = `
          const { createAuthClient } = await import('${base}/web/client/index.js');
          const client = createAuthClient({ baseUrl: '${base}', mode: 'token' });
          try {
            await client.login({ email: ${JSON.stringify(email)}, password: ${JSON.stringify(password)} });
            const response = await client.fetch('/auth/me');
            postMessage({ status: response.status, hasDocument: typeof document !== 'undefined', locks: !!navigator.locks });
          } catch (error) {
            postMessage({ error: String(error) });
          }`;
        const url = URL.createObjectURL(new Blob([code], { type: 'text/javascript' }));
        const worker = new Worker(url, { type: 'module' });
        return new Promise((resolve) => {
          worker.onmessage = (event) => resolve(event.data);
          worker.onerror = (event) => resolve({ error: event.message });
        });
      },
      { base: baton.url, email, password },
    );
    expect(result).toEqual({ status: 200, hasDocument: false, locks: true });
    await workerContext.close();
  });
});
