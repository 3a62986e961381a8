import type { LightMyRequestResponse } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ISSUER, refresh, signUp, type TestApp, testApp } from '../../test/helpers.js';
import { createClient } from '../core/clients.js';
import { REFRESH_COOKIE } from './cookies.js';

const EMAIL = 'ada@example.com';
const PASSWORD = 'correct horse battery';
const NEW_PASSWORD = 'a brand new secret';

/** What a page on another site can make a browser send: the three signs of a cross-site request. */
const CROSS_SITE: [string, Record<string, string>][] = [
  ['a foreign Origin', { origin: 'https://evil.example' }],
  ['Origin: null', { origin: 'null' }],
  ['Sec-Fetch-Site: cross-site', { 'sec-fetch-site': 'cross-site' }],
];

/**
 * Issue 9 item 3: every state-changing `/auth/*` request refuses a cross-site
 * browser context (login CSRF planted a device cookie, logout CSRF cleared
 * the cookie) and takes JSON only, so an HTML form cannot reach it at all.
 */
describe('cross-site requests to /auth/*', () => {
  let t: TestApp;
  let tokens: Awaited<ReturnType<typeof signUp>>;
  beforeEach(async () => {
    t = await testApp({ limits: { loginFailuresPerAccount: 3, requestsPerIpPerMinute: null } });
    tokens = await signUp(t.app, EMAIL, PASSWORD);
  });
  afterEach(() => t.close());

  const bearer = () => ({ authorization: `Bearer ${tokens.access_token}` });
  const routes: {
    name: string;
    send(headers: Record<string, string>): Promise<LightMyRequestResponse>;
    /** Throws when the request changed anything. */
    unchanged(): Promise<void>;
  }[] = [
    {
      name: 'POST /auth/register',
      send: (headers) =>
        t.app.inject({
          method: 'POST',
          url: '/auth/register',
          headers,
          payload: { email: 'eve@example.com', password: PASSWORD },
        }),
      async unchanged() {
        const res = await t.app.inject({
          method: 'POST',
          url: '/auth/register',
          payload: { email: 'eve@example.com', password: PASSWORD },
        });
        expect(res.statusCode).toBe(201);
      },
    },
    {
      name: 'POST /auth/login',
      // A wrong password: were it counted, three of them would lock the account.
      send: (headers) =>
        t.app.inject({
          method: 'POST',
          url: '/auth/login',
          headers,
          payload: { email: EMAIL, password: 'wrong password!' },
        }),
      async unchanged() {
        const res = await t.app.inject({
          method: 'POST',
          url: '/auth/login',
          payload: { email: EMAIL, password: PASSWORD },
        });
        expect(res.statusCode).toBe(200);
      },
    },
    {
      name: 'POST /auth/refresh',
      send: (headers) =>
        t.app.inject({
          method: 'POST',
          url: '/auth/refresh',
          headers,
          payload: { refresh_token: tokens.refresh_token },
        }),
      async unchanged() {
        // Not rotated: the token is still the current one.
        expect((await refresh(t.app, tokens.refresh_token)).statusCode).toBe(200);
      },
    },
    {
      name: 'POST /auth/logout (refresh token)',
      send: (headers) =>
        t.app.inject({
          method: 'POST',
          url: '/auth/logout',
          headers,
          payload: { refresh_token: tokens.refresh_token },
        }),
      async unchanged() {
        expect((await refresh(t.app, tokens.refresh_token)).statusCode).toBe(200);
      },
    },
    {
      name: 'POST /auth/logout (access token)',
      send: (headers) =>
        t.app.inject({ method: 'POST', url: '/auth/logout', headers: { ...bearer(), ...headers } }),
      async unchanged() {
        expect((await refresh(t.app, tokens.refresh_token)).statusCode).toBe(200);
      },
    },
    {
      name: 'POST /auth/logout-all',
      send: (headers) =>
        t.app.inject({ method: 'POST', url: '/auth/logout-all', headers: { ...bearer(), ...headers } }),
      async unchanged() {
        expect((await refresh(t.app, tokens.refresh_token)).statusCode).toBe(200);
      },
    },
    {
      name: 'POST /auth/password',
      send: (headers) =>
        t.app.inject({
          method: 'POST',
          url: '/auth/password',
          headers: { ...bearer(), ...headers },
          payload: { current_password: PASSWORD, new_password: NEW_PASSWORD },
        }),
      async unchanged() {
        const res = await t.app.inject({
          method: 'POST',
          url: '/auth/login',
          payload: { email: EMAIL, password: PASSWORD },
        });
        expect(res.statusCode).toBe(200);
      },
    },
    {
      name: 'DELETE /auth/sessions/:id',
      send: (headers) =>
        t.app.inject({
          method: 'DELETE',
          url: `/auth/sessions/${tokens.session_id}`,
          headers: { ...bearer(), ...headers },
        }),
      async unchanged() {
        expect((await refresh(t.app, tokens.refresh_token)).statusCode).toBe(200);
      },
    },
  ];

  for (const route of routes) {
    for (const [sign, headers] of CROSS_SITE) {
      it(`${route.name} with ${sign} → 403, no Set-Cookie, nothing changed`, async () => {
        for (let i = 0; i < 4; i++) {
          const res = await route.send(headers);
          expect(res.statusCode).toBe(403);
          expect(res.json().error).toBe('access_denied');
          expect(res.headers['set-cookie']).toBeUndefined();
        }
        await route.unchanged();
      });
    }
    it(`${route.name} from the server's own origin is not refused (non-browser calls: see unchanged())`, async () => {
      const same = await route.send({ origin: ISSUER, 'sec-fetch-site': 'same-origin' });
      // The login sends a wrong password on purpose: 401, not 403; everything else succeeds.
      if (route.name === 'POST /auth/login') expect(same.statusCode).toBe(401);
      else expect(same.statusCode).toBeLessThan(300);
    });
  }

  it.each([
    [
      'an urlencoded form',
      'application/x-www-form-urlencoded',
      `email=${encodeURIComponent(EMAIL)}&password=x`,
    ],
    ['text/plain', 'text/plain', `{"email":"${EMAIL}","password":"x"}`],
    [
      'multipart',
      'multipart/form-data; boundary=x',
      `--x\r\nContent-Disposition: form-data; name="email"\r\n\r\n${EMAIL}\r\n--x--`,
    ],
  ])(
    'a body as %s is refused with 415 on every /auth/* POST, before anything is counted',
    async (_n, type, body) => {
      for (const url of [
        '/auth/register',
        '/auth/login',
        '/auth/refresh',
        '/auth/logout',
        '/auth/logout-all',
        '/auth/password',
      ]) {
        for (let i = 0; i < 4; i++) {
          const res = await t.app.inject({
            method: 'POST',
            url,
            headers: { 'content-type': type, ...bearer() },
            payload: body,
          });
          expect(res.statusCode, url).toBe(415);
          expect(res.headers['set-cookie']).toBeUndefined();
        }
      }
      expect((await refresh(t.app, tokens.refresh_token)).statusCode).toBe(200);
      const login = await t.app.inject({
        method: 'POST',
        url: '/auth/login',
        payload: { email: EMAIL, password: PASSWORD },
      });
      expect(login.statusCode).toBe(200);
    },
  );

  it('/oauth/* stays form-encoded (RFC 6749) and the legacy route keeps its contract', async () => {
    const oauth = await t.app.inject({
      method: 'POST',
      url: '/oauth/token',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({
        grant_type: 'refresh_token',
        refresh_token: tokens.refresh_token,
        client_id: 'app',
      }).toString(),
    });
    expect(oauth.statusCode).toBe(200);
    const legacy = await t.app.inject({
      method: 'POST',
      url: '/api/v1/users/refresh-token',
      payload: { refreshToken: oauth.json().refresh_token },
    });
    expect(legacy.statusCode).toBe(200);
  });
});

/** Issue 9 item 7: a client's own allowed origin works for the whole cookie-mode life of a session. */
describe('cookie mode from a client’s allowed origin', () => {
  let t: TestApp;
  const APP = 'https://app.example';
  const browser = { origin: APP, 'sec-fetch-site': 'cross-site', 'x-baton-csrf': '1' };
  beforeEach(async () => {
    t = await testApp();
    await createClient(t.store, { id: 'spa', type: 'public', allowedOrigins: [APP] }, t.clock());
    await signUp(t.app, EMAIL, PASSWORD);
  });
  afterEach(() => t.close());

  it('logs in, refreshes and logs out from that origin; the session then is over', async () => {
    // A real browser says same-site or cross-site depending on the sites; the origin is what was allowed.
    const headers = { ...browser, 'sec-fetch-site': 'same-site' };
    const login = await t.app.inject({
      method: 'POST',
      url: '/auth/login',
      headers,
      payload: { email: EMAIL, password: PASSWORD, mode: 'cookie', client_id: 'spa' },
    });
    expect(login.statusCode).toBe(200);
    const first = login.cookies.find((c) => c.name === REFRESH_COOKIE)!.value;
    const refreshed = await t.app.inject({
      method: 'POST',
      url: '/auth/refresh',
      headers,
      cookies: { [REFRESH_COOKIE]: first },
    });
    expect(refreshed.statusCode).toBe(200);
    const second = refreshed.cookies.find((c) => c.name === REFRESH_COOKIE)!.value;
    const out = await t.app.inject({
      method: 'POST',
      url: '/auth/logout',
      headers,
      cookies: { [REFRESH_COOKIE]: second },
    });
    expect(out.statusCode).toBe(204);
    const after = await t.app.inject({
      method: 'POST',
      url: '/auth/refresh',
      headers,
      cookies: { [REFRESH_COOKIE]: second },
    });
    expect(after.statusCode).toBe(401);
  });

  it('another client’s session is not refreshed from that origin', async () => {
    const headers = { origin: ISSUER, 'sec-fetch-site': 'same-origin', 'x-baton-csrf': '1' };
    const login = await t.app.inject({
      method: 'POST',
      url: '/auth/login',
      headers,
      payload: { email: EMAIL, password: PASSWORD, mode: 'cookie' },
    });
    const cookie = login.cookies.find((c) => c.name === REFRESH_COOKIE)!.value;
    const res = await t.app.inject({
      method: 'POST',
      url: '/auth/refresh',
      headers: { ...browser, 'sec-fetch-site': 'same-site' },
      cookies: { [REFRESH_COOKIE]: cookie },
    });
    expect(res.statusCode).toBe(403);
  });
});
