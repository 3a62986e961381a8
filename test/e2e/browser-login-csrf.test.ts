import { createServer, type Server } from 'node:http';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, type RunningBaton, startBaton } from './support/baton.js';
import { hasChromium, launchChromium } from './support/browser.js';

// Issue 9 item 3, in real Chromium: a page on another site (http://127.0.0.1:<port2>
// against the server at http://localhost:<port>) auto-submits HTML forms to
// /auth/login and /auth/logout. Before the fix the login form replaced the
// victim's __Host-baton_device with the attacker's, and the logout form (any
// refresh_token will do: an unknown one is no error) cleared the victim's
// refresh cookie while the session lived on.

const DEVICE = '__Host-baton_device';
const REFRESH = '__Secure-baton_rt';

describe.skipIf(!hasChromium)('login and logout CSRF from another site, in Chromium', () => {
  let baton: RunningBaton;
  let attacker: Server;
  let attackerUrl: string;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  const victim = { email: `victim-${Date.now()}@example.com`, password: 'the victim password' };
  const eve = { email: `eve-${Date.now()}@example.com`, password: 'the attacker password' };

  beforeAll(async () => {
    baton = await startBaton({ env: { BATON_LIMIT_IP_PER_MIN: 'off' } });
    const target = baton.url;
    // The attacker's site: pages that post a form to Baton as soon as they load.
    const forms: Record<string, string> = {
      '/login': `<form method="post" action="${target}/auth/login">
        <input name="email" value="${eve.email}"><input name="password" value="${eve.password}"></form>`,
      '/logout': `<form method="post" action="${target}/auth/logout"><input name="refresh_token" value="brt_anything"></form>`,
    };
    attacker = createServer((req, res) => {
      const form = forms[req.url ?? ''];
      res.writeHead(form ? 200 : 404, { 'content-type': 'text/html; charset=utf-8' });
      res.end(form ? `<!doctype html><body>${form}<script>document.forms[0].submit()</script></body>` : '');
    });
    const port = await freePort();
    await new Promise<void>((resolve) => attacker.listen(port, '127.0.0.1', resolve));
    attackerUrl = `http://127.0.0.1:${port}`;

    const register = (who: { email: string; password: string }) =>
      fetch(`http://127.0.0.1:${baton.port}/auth/register`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(who),
      });
    expect((await register(victim)).status).toBe(201);
    expect((await register(eve)).status).toBe(201);

    browser = await launchChromium();
    context = await browser.newContext();
    page = await context.newPage();
    await page.goto(baton.url);
    // The page's own start-up check of the cookie is over before the login: had it come after,
    // it would rotate the victim's cookie in the middle of a test that compares it.
    await page.waitForSelector('html[data-ready="true"]');
    // The victim logs in in cookie mode from Baton's own origin, as the demo page does.
    const status = await page.evaluate(async (who) => {
      const res = await fetch('/auth/login', {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-baton-csrf': '1' },
        body: JSON.stringify({ ...who, mode: 'cookie' }),
      });
      return res.status;
    }, victim);
    expect(status).toBe(200);
  });

  afterAll(async () => {
    await browser?.close();
    await new Promise((resolve) => attacker?.close(resolve));
    await baton?.stop();
  });

  const cookie = async (name: string) =>
    (await context.cookies(`${baton.url}/auth/`)).find((c) => c.name === name)?.value;

  /** Opens the attacker's page and waits for Baton's answer to the form it posts. */
  const visitAttacker = async (path: string) => {
    // A tab of its own, as when the victim follows a link: same profile, same cookies.
    const tab = await context.newPage();
    const answered = tab.waitForResponse(
      (r) => r.url().startsWith(`${baton.url}/auth/`) && r.request().method() === 'POST',
      { timeout: 15_000 },
    );
    await tab.goto(`${attackerUrl}${path}`, { waitUntil: 'commit' });
    const response = await answered;
    await tab.waitForLoadState('load');
    return response.status();
  };

  it('a cross-site login form does not replace the device cookie', async () => {
    const before = await cookie(DEVICE);
    expect(before).toMatch(/^bdv_/);
    // Refused either way: the form's urlencoded body (415) or its cross-site context (403).
    expect([403, 415]).toContain(await visitAttacker('/login'));
    expect(await cookie(DEVICE)).toBe(before);
  });

  it('a cross-site logout form neither clears the refresh cookie nor ends the session', async () => {
    const before = await cookie(REFRESH);
    expect(before).toMatch(/^brt_/);
    expect([403, 415]).toContain(await visitAttacker('/logout'));
    expect(await cookie(REFRESH)).toBe(before);
    await page.goto(baton.url);
    await page.waitForSelector('html[data-ready="true"]');
    const status = await page.evaluate(async () => {
      const res = await fetch('/auth/refresh', { method: 'POST', headers: { 'x-baton-csrf': '1' } });
      return res.status;
    });
    expect(status).toBe(200);
  });
});
