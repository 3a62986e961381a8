import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { freePort, type RunningBaton, startBaton } from './support/baton.js';
import { hasChromium, launchChromium } from './support/browser.js';

// The documented cross-origin deployment (docs/client.md), in real Chromium:
// a page on one origin (http://localhost:<A>) uses the built client against
// Baton on another origin of the same site (http://localhost:<B>). The
// browser preflights every call (JSON bodies, Authorization, DPoP, the CSRF
// header), so nothing here works unless Baton answers with CORS grants. A
// third origin (http://localhost:<C>, same site, not allowed) must get none.

const CLIENT_DIST = fileURLToPath(new URL('../../packages/client/dist/', import.meta.url));
const REFRESH = '__Secure-baton_rt';

/** The page every origin serves: it loads the built client and says when it is ready. */
const PAGE = `<!doctype html><meta charset="utf-8"><title>cross-origin app</title>
<script type="module">
  import * as baton from '/client/index.js';
  window.baton = baton;
  document.documentElement.dataset.ready = 'true';
</script>`;

/** A tiny static server: the page at `/`, the built client under `/client/`. */
function appServer(): Server {
  return createServer(async (req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    if (path === '/') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(PAGE);
      return;
    }
    const relative = normalize(path.slice('/client/'.length));
    if (!path.startsWith('/client/') || relative.startsWith('..') || extname(relative) !== '.js') {
      res.writeHead(404).end();
      return;
    }
    try {
      const body = await readFile(join(CLIENT_DIST, relative));
      res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8' });
      res.end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
}

/** What the page sees of the client module and the client the test made there. */
interface CorsWindow {
  baton: typeof import('@baton/client');
  client: import('@baton/client').AuthClient;
  /** Added to Date.now() by the client's clock: moving it forward makes the token due. */
  skew: number;
  refreshed: unknown[];
  failures: string[];
}

/** The sum of a counter over all its label sets. */
function counterTotal(text: string, name: string): number {
  return text
    .split('\n')
    .filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `))
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
}

describe.skipIf(!hasChromium)('the client from another origin of the same site, in Chromium', () => {
  let baton: RunningBaton;
  let browser: Browser;
  let app: Server;
  let other: Server;
  let appOrigin: string;
  let otherOrigin: string;
  let context: BrowserContext;
  const user = { email: `cors-${Date.now()}@example.com`, password: 'a long enough password' };

  beforeAll(async () => {
    const [appPort, otherPort] = [await freePort(), await freePort()];
    appOrigin = `http://localhost:${appPort}`;
    otherOrigin = `http://localhost:${otherPort}`;
    app = appServer();
    other = appServer();
    await new Promise<void>((resolve) => app.listen(appPort, '127.0.0.1', resolve));
    await new Promise<void>((resolve) => other.listen(otherPort, '127.0.0.1', resolve));
    baton = await startBaton({ env: { BATON_ALLOWED_ORIGINS: appOrigin, BATON_LIMIT_IP_PER_MIN: 'off' } });
    const res = await fetch(`http://127.0.0.1:${baton.port}/auth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(user),
    });
    expect(res.status).toBe(201);
    browser = await launchChromium();
  });

  afterEach(async () => {
    await context?.close();
  });

  afterAll(async () => {
    await browser?.close();
    await new Promise((resolve) => app?.close(resolve));
    await new Promise((resolve) => other?.close(resolve));
    await baton?.stop();
  });

  /** A fresh profile (no cookies, no IndexedDB) with a page on `origin` and a client in it. */
  async function openClient(
    origin: string,
    options: { mode: 'token' | 'cookie'; dpop: boolean; skew?: number },
  ): Promise<Page> {
    context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(origin);
    await page.waitForSelector('html[data-ready="true"]');
    await page.evaluate(
      ({ baseUrl, mode, dpop, skew }) => {
        const w = window as unknown as CorsWindow;
        w.skew = skew;
        w.refreshed = [];
        w.failures = [];
        w.client = w.baton.createAuthClient({
          baseUrl,
          mode,
          dpop,
          now: () => Date.now() + w.skew,
          // A refresh failure must surface here, not be retried for seconds.
          refreshRetryBudgetMs: 0,
        });
        w.client.on('tokenRefreshed', (e) => w.refreshed.push(e));
        w.client.on('refreshFailed', (e) => w.failures.push(e.error.code));
      },
      { baseUrl: baton.url, mode: options.mode, dpop: options.dpop, skew: options.skew ?? 0 },
    );
    return page;
  }

  const login = (page: Page) =>
    page.evaluate(async (who) => {
      const { client } = window as unknown as CorsWindow;
      const session = await client.login(who);
      return { sessionId: session.sessionId, dpop: client.dpop.bound };
    }, user);

  /** `/auth/me` through the client: 200 and the user's email. */
  const me = (page: Page) =>
    page.evaluate(async () => {
      const res = await (window as unknown as CorsWindow).client.fetch('/auth/me');
      return { status: res.status, email: ((await res.json()) as { user?: { email: string } }).user?.email };
    });

  /** Moves the client's clock past the token's expiry and makes a call: the client must refresh first. */
  const refresh = (page: Page) =>
    page.evaluate(async () => {
      const w = window as unknown as CorsWindow;
      w.skew += 20 * 60_000;
      const before = w.refreshed.length;
      const res = await w.client.fetch('/auth/me');
      return { status: res.status, refreshes: w.refreshed.length - before, failures: w.failures };
    });

  const refreshCookie = async () =>
    (await context.cookies(`${baton.url}/auth/`)).find((c) => c.name === REFRESH)?.value;

  it('token mode: login, /auth/me and a refresh, all across origins', async () => {
    const page = await openClient(appOrigin, { mode: 'token', dpop: false });
    expect((await login(page)).sessionId).toMatch(/\S/);
    expect(await me(page)).toEqual({ status: 200, email: user.email });
    expect(await refresh(page)).toEqual({ status: 200, refreshes: 1, failures: [] });
  });

  it('cookie mode: the SameSite=Strict cookie rides along with credentials: include; login, refresh, logout', async () => {
    const page = await openClient(appOrigin, { mode: 'cookie', dpop: false });
    await login(page);
    const first = await refreshCookie();
    expect(first).toMatch(/^brt_/);
    expect(await me(page)).toEqual({ status: 200, email: user.email });
    expect(await refresh(page)).toEqual({ status: 200, refreshes: 1, failures: [] });
    const second = await refreshCookie();
    expect(second).toMatch(/^brt_/);
    expect(second).not.toBe(first);

    const out = await page.evaluate(() => (window as unknown as CorsWindow).client.logout());
    expect(out).toEqual({ revoked: true });
    expect(await refreshCookie()).toBeUndefined();
    // The ended session's token fails server-side too.
    const replay = await fetch(`http://127.0.0.1:${baton.port}/auth/refresh`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ refresh_token: second }),
    });
    expect(replay.status).toBe(401);
  });

  it('DPoP: the DPoP header crosses in, DPoP-Nonce and Date cross out (a client clock 2 minutes slow needs the nonce)', async () => {
    // A proof whose iat is 2 minutes behind is refused with use_dpop_nonce; the
    // client can only recover if it can read DPoP-Nonce (and Date) from the answer.
    const page = await openClient(appOrigin, { mode: 'cookie', dpop: true, skew: -120_000 });
    expect((await login(page)).dpop).toBe(true);
    expect(await me(page)).toEqual({ status: 200, email: user.email });
    // Twenty minutes ahead now: again only the nonce makes the refresh's proof fresh.
    expect(await refresh(page)).toEqual({ status: 200, refreshes: 1, failures: [] });
    // The page itself reads both headers on an error answer of a DPoP route.
    const headers = await page.evaluate(async (baseUrl) => {
      const res = await fetch(`${baseUrl}/auth/refresh`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{}',
      });
      return { status: res.status, nonce: res.headers.get('dpop-nonce'), date: res.headers.get('date') };
    }, baton.url);
    expect(headers.status).toBe(401);
    expect(headers.nonce).toMatch(/\S/);
    expect(Number.isFinite(Date.parse(headers.date ?? ''))).toBe(true);
    expect(await page.evaluate(() => (window as unknown as CorsWindow).client.logout())).toEqual({
      revoked: true,
    });
  });

  it('a page on an origin that is not allowed gets no grant: the client sees a network error, the server changes nothing', async () => {
    const before = counterTotal(await baton.metrics(), 'baton_login_total');
    const page = await openClient(otherOrigin, { mode: 'token', dpop: false });
    const failed = await page.evaluate(async (who) => {
      try {
        await (window as unknown as CorsWindow).client.login(who);
        return 'logged in';
      } catch (error) {
        return (error as { code?: string }).code;
      }
    }, user);
    expect(failed).toBe('network_error');
    // The preflight was refused, so the login itself was never sent.
    expect(counterTotal(await baton.metrics(), 'baton_login_total')).toBe(before);
    // Public documents stay readable from anywhere (no credentials involved).
    const jwks = await page.evaluate(async (baseUrl) => {
      const res = await fetch(`${baseUrl}/.well-known/jwks.json`);
      return ((await res.json()) as { keys: unknown[] }).keys.length;
    }, baton.url);
    expect(jwks).toBeGreaterThan(0);
  });
});
