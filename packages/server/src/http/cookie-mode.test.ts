import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ISSUER, signUp, type TestApp, testApp } from '../../test/helpers.js';
import { REFRESH_COOKIE } from './cookies.js';

/** docs/security.md items 28–30 and docs/http-api.md "Modes". */
describe('cookie mode and CSRF', () => {
  let t: TestApp;
  beforeEach(async () => {
    t = await testApp();
    await signUp(t.app);
  });
  afterEach(() => t.close());

  const browser = { origin: ISSUER, 'sec-fetch-site': 'same-origin', 'x-baton-csrf': '1' };

  async function cookieLogin() {
    const res = await t.app.inject({
      method: 'POST',
      url: '/auth/login',
      headers: browser,
      payload: { email: 'ada@example.com', password: 'correct horse battery', mode: 'cookie' },
    });
    expect(res.statusCode).toBe(200);
    const cookie = res.cookies.find((c) => c.name === REFRESH_COOKIE)!;
    return { res, cookie };
  }

  it('login sets an HttpOnly, Secure, SameSite=Strict cookie on /auth and keeps the token out of the body', async () => {
    const { res, cookie } = await cookieLogin();
    expect(res.json()).not.toHaveProperty('refresh_token');
    expect(res.body).not.toContain(cookie.value);
    const header = String(res.headers['set-cookie']);
    expect(header).toMatch(/^__Secure-baton_rt=brt_/);
    expect(header).toMatch(/; HttpOnly/);
    expect(header).toMatch(/; Secure/);
    expect(header).toMatch(/; SameSite=Strict/);
    expect(header).toMatch(/; Path=\/auth/);
    expect(header).not.toMatch(/Domain=/i);
    expect(cookie.maxAge).toBe(30 * 86_400);
  });

  it('refresh by cookie with the CSRF proof rotates the cookie', async () => {
    const { cookie } = await cookieLogin();
    const res = await t.app.inject({
      method: 'POST',
      url: '/auth/refresh',
      headers: browser,
      cookies: { [REFRESH_COOKIE]: cookie.value },
    });
    expect(res.statusCode).toBe(200);
    expect(res.json()).not.toHaveProperty('refresh_token');
    const next = res.cookies.find((c) => c.name === REFRESH_COOKIE)!;
    expect(next.value).toMatch(/^brt_/);
    expect(next.value).not.toBe(cookie.value);
  });

  const refusals: [string, Record<string, string>][] = [
    ['a foreign Origin', { ...browser, origin: 'https://evil.example' }],
    ['Origin null', { ...browser, origin: 'null' }],
    ['Sec-Fetch-Site: cross-site', { ...browser, 'sec-fetch-site': 'cross-site' }],
    ['no custom header', { origin: ISSUER, 'sec-fetch-site': 'same-origin' }],
  ];
  for (const [name, headers] of refusals) {
    it(`refresh by cookie with ${name} is 403 and does not rotate`, async () => {
      const { cookie } = await cookieLogin();
      const res = await t.app.inject({
        method: 'POST',
        url: '/auth/refresh',
        headers,
        cookies: { [REFRESH_COOKIE]: cookie.value },
      });
      expect(res.statusCode).toBe(403);
      expect(res.json().error).toBe('access_denied');
      expect(res.headers['set-cookie']).toBeUndefined();
      // Not rotated: the same cookie still refreshes as a *rotation*, not a grace replay.
      const ok = await t.app.inject({
        method: 'POST',
        url: '/auth/refresh',
        headers: browser,
        cookies: { [REFRESH_COOKIE]: cookie.value },
      });
      expect(ok.statusCode).toBe(200);
      const metrics = (await t.app.inject({ url: '/metrics' })).body;
      expect(metrics).toMatch(/baton_refresh_total\{outcome="rotated"\} 1/);
      expect(metrics).toMatch(/baton_refresh_total\{outcome="grace_replay"\} 0/);
    });
  }

  it('login in cookie mode from a foreign origin is refused', async () => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/auth/login',
      headers: { ...browser, origin: 'https://evil.example' },
      payload: { email: 'ada@example.com', password: 'correct horse battery', mode: 'cookie' },
    });
    expect(res.statusCode).toBe(403);
    expect(res.headers['set-cookie']).toBeUndefined();
  });

  it('logout clears the cookie (Max-Age=0) and the old value then fails server-side', async () => {
    const { cookie } = await cookieLogin();
    const out = await t.app.inject({
      method: 'POST',
      url: '/auth/logout',
      headers: browser,
      cookies: { [REFRESH_COOKIE]: cookie.value },
    });
    expect(out.statusCode).toBe(204);
    expect(String(out.headers['set-cookie'])).toMatch(
      /^__Secure-baton_rt=; Max-Age=0; Path=\/auth; HttpOnly; Secure; SameSite=Strict/,
    );
    const again = await t.app.inject({
      method: 'POST',
      url: '/auth/refresh',
      headers: browser,
      cookies: { [REFRESH_COOKIE]: cookie.value },
    });
    expect(again.statusCode).toBe(401);
    expect(again.json().error).toBe('invalid_grant');
  });

  it('logout by cookie without the CSRF proof is refused and the session lives', async () => {
    const { cookie } = await cookieLogin();
    const out = await t.app.inject({
      method: 'POST',
      url: '/auth/logout',
      headers: { origin: 'https://evil.example' },
      cookies: { [REFRESH_COOKIE]: cookie.value },
    });
    expect(out.statusCode).toBe(403);
    const ok = await t.app.inject({
      method: 'POST',
      url: '/auth/refresh',
      headers: browser,
      cookies: { [REFRESH_COOKIE]: cookie.value },
    });
    expect(ok.statusCode).toBe(200);
  });

  it('on a localhost issuer, 127.0.0.1 and [::1] on the same port are allowed too; another port is not', async () => {
    const attempt = (origin: string) =>
      t.app.inject({
        method: 'POST',
        url: '/auth/login',
        headers: { ...browser, origin },
        payload: { email: 'ada@example.com', password: 'correct horse battery', mode: 'cookie' },
      });
    expect((await attempt('http://127.0.0.1:3000')).statusCode).toBe(200);
    expect((await attempt('http://[::1]:3000')).statusCode).toBe(200);
    expect((await attempt('http://127.0.0.1:3001')).statusCode).toBe(403);
    expect((await attempt('https://localhost:3000')).statusCode).toBe(403);
  });

  it('extra allowed origins from BATON_ALLOWED_ORIGINS are accepted', async () => {
    await t.close();
    t = await testApp({ allowedOrigins: [ISSUER, 'https://app.example.com'] });
    await signUp(t.app);
    const res = await t.app.inject({
      method: 'POST',
      url: '/auth/login',
      headers: { ...browser, origin: 'https://app.example.com', 'sec-fetch-site': 'same-site' },
      payload: { email: 'ada@example.com', password: 'correct horse battery', mode: 'cookie' },
    });
    expect(res.statusCode).toBe(200);
  });
});
