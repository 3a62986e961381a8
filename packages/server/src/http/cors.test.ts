import type { LightMyRequestResponse } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { signUp, type TestApp, testApp } from '../../test/helpers.js';
import { createClient } from '../core/clients.js';
import { REFRESH_COOKIE } from './cookies.js';
import { CORS_ALLOWED_HEADERS, CORS_EXPOSED_HEADERS } from './cors.js';

// docs/http-api.md "CORS". The browser side of it (that Chromium really
// accepts these answers) is test/e2e/browser-cors.test.ts.

const APP = 'http://app.example.test';
const SPA = 'https://spa.example.test';
const EVIL = 'https://evil.example.test';
const EMAIL = 'ada@example.com';
const PASSWORD = 'correct horse battery';

const corsHeaders = (res: LightMyRequestResponse) =>
  Object.keys(res.headers).filter((name) => name.startsWith('access-control-'));

const preflight = (t: TestApp, url: string, origin: string, method = 'POST', headers = 'content-type') =>
  t.app.inject({
    method: 'OPTIONS',
    url,
    headers: {
      origin,
      'access-control-request-method': method,
      'access-control-request-headers': headers,
      'sec-fetch-site': 'same-site',
    },
  });

describe('CORS', () => {
  let t: TestApp;
  beforeEach(async () => {
    t = await testApp({ allowedOrigins: [APP] });
    await createClient(t.store, { id: 'spa', type: 'public', allowedOrigins: [SPA] }, t.clock());
    await signUp(t.app, EMAIL, PASSWORD);
  });
  afterEach(() => t.close());

  describe('preflight', () => {
    it('grants an allowed origin itself (never *), with credentials, the route’s methods and our four headers', async () => {
      const res = await preflight(t, '/auth/login', APP, 'POST', 'content-type, dpop, x-baton-csrf');
      expect(res.statusCode).toBe(204);
      expect(res.body).toBe('');
      expect(res.headers['access-control-allow-origin']).toBe(APP);
      expect(res.headers['access-control-allow-credentials']).toBe('true');
      expect(res.headers['access-control-allow-methods']).toBe('POST');
      expect(res.headers['access-control-allow-headers']).toBe(
        'content-type, authorization, dpop, x-baton-csrf',
      );
      expect(res.headers['access-control-max-age']).toBe('600');
      expect(res.headers.vary).toBe('Origin, Access-Control-Request-Method, Access-Control-Request-Headers');
      // A preflight is not an actual response: nothing to expose.
      expect(res.headers['access-control-expose-headers']).toBeUndefined();
    });

    it('lists each route’s own methods', async () => {
      expect((await preflight(t, '/auth/me', APP, 'GET')).headers['access-control-allow-methods']).toBe(
        'GET, HEAD',
      );
      const session = await preflight(t, '/auth/sessions/some-id', APP, 'DELETE');
      expect(session.statusCode).toBe(204);
      expect(session.headers['access-control-allow-methods']).toBe('DELETE');
      for (const url of ['/oauth/token', '/oauth/revoke']) {
        const res = await preflight(t, url, APP, 'POST', 'dpop');
        expect(res.statusCode).toBe(204);
        expect(res.headers['access-control-allow-origin']).toBe(APP);
      }
    });

    it('grants an origin that only a registered client allows', async () => {
      const res = await preflight(t, '/auth/refresh', SPA);
      expect(res.statusCode).toBe(204);
      expect(res.headers['access-control-allow-origin']).toBe(SPA);
    });

    it('grants a client’s origin at once after the client is created (no stale cache)', async () => {
      const NEW = 'https://new.example.test';
      expect((await preflight(t, '/auth/login', NEW)).statusCode).toBe(403);
      await t.app.baton.clients.create({ id: 'new', type: 'public', allowedOrigins: [NEW] });
      expect((await preflight(t, '/auth/login', NEW)).headers['access-control-allow-origin']).toBe(NEW);
    });

    it('refuses a foreign origin and Origin: null with a 403 JSON error and no CORS header', async () => {
      for (const origin of [EVIL, 'null', `${APP}.evil.test`, APP.toUpperCase()]) {
        const res = await preflight(t, '/auth/login', origin);
        expect(res.statusCode).toBe(403);
        expect(res.json().error).toBe('access_denied');
        expect(corsHeaders(res)).toEqual([]);
        expect(res.body).not.toContain(origin);
      }
    });

    it('introspection, the legacy route and the metrics get no CORS at all: 405 as before', async () => {
      for (const url of ['/oauth/introspect', '/api/v1/users/refresh-token', '/metrics', '/healthz']) {
        const res = await preflight(t, url, APP, url === '/metrics' || url === '/healthz' ? 'GET' : 'POST');
        expect(res.statusCode).toBe(405);
        expect(corsHeaders(res)).toEqual([]);
      }
    });

    it('an OPTIONS that is not a preflight is a 405 as before; an unknown path a 404', async () => {
      const plain = await t.app.inject({ method: 'OPTIONS', url: '/auth/login', headers: { origin: APP } });
      expect(plain.statusCode).toBe(405);
      // An actual request that failed: the page may read the error, but nothing is granted for later.
      expect(plain.headers['access-control-allow-methods']).toBeUndefined();
      expect(plain.headers['access-control-allow-headers']).toBeUndefined();
      expect(plain.headers['access-control-max-age']).toBeUndefined();
      const unknown = await preflight(t, '/auth/nothing-here', APP);
      expect(unknown.statusCode).toBe(404);
    });

    it('the public documents are granted to any origin, without credentials', async () => {
      for (const origin of [EVIL, 'null']) {
        const res = await preflight(t, '/.well-known/jwks.json', origin, 'GET');
        expect(res.statusCode).toBe(204);
        expect(res.headers['access-control-allow-origin']).toBe('*');
        expect(res.headers['access-control-allow-credentials']).toBeUndefined();
        expect(res.headers['access-control-allow-headers']).toBeUndefined();
      }
    });
  });

  describe('actual responses', () => {
    const login = (origin: string | undefined, password = PASSWORD) =>
      t.app.inject({
        method: 'POST',
        url: '/auth/login',
        headers: { ...(origin === undefined ? {} : { origin }), 'sec-fetch-site': 'same-site' },
        payload: { email: EMAIL, password },
      });

    it('an allowed origin gets itself, credentials and the headers the client reads, on success and on errors', async () => {
      const ok = await login(APP);
      expect(ok.statusCode).toBe(200);
      const failed = await login(APP, 'a wrong password!');
      expect(failed.statusCode).toBe(401);
      const wrongMethod = await t.app.inject({ method: 'GET', url: '/auth/login', headers: { origin: APP } });
      expect(wrongMethod.statusCode).toBe(405);
      for (const res of [ok, failed, wrongMethod]) {
        expect(res.headers['access-control-allow-origin']).toBe(APP);
        expect(res.headers['access-control-allow-credentials']).toBe('true');
        expect(res.headers['access-control-expose-headers']).toBe(CORS_EXPOSED_HEADERS);
        expect(res.headers.vary).toBe('Origin');
      }
      // Every response header the client SDK reads (packages/client/src) is exposed.
      for (const name of ['DPoP-Nonce', 'Date', 'Retry-After'])
        expect(CORS_EXPOSED_HEADERS.split(', ')).toContain(name);
      // DPoP routes really send the nonce that is exposed.
      expect(ok.headers['dpop-nonce']).toMatch(/\S/);
    });

    it('the 401 of /auth/me keeps its WWW-Authenticate, readable by the page', async () => {
      const res = await t.app.inject({
        method: 'GET',
        url: '/auth/me',
        headers: { origin: SPA, authorization: 'Bearer not-a-token' },
      });
      expect(res.statusCode).toBe(401);
      expect(res.headers['www-authenticate']).toMatch(/^Bearer /);
      expect(res.headers['access-control-allow-origin']).toBe(SPA);
      expect(res.headers['access-control-expose-headers']).toContain('WWW-Authenticate');
    });

    it('a foreign origin gets no CORS header, and the site guard still refuses it (403), changing nothing', async () => {
      const res = await login(EVIL);
      expect(res.statusCode).toBe(403);
      expect(res.json().error).toBe('access_denied');
      expect(corsHeaders(res)).toEqual([]);
      expect(res.headers.vary).toBe('Origin');
      expect(res.headers['set-cookie']).toBeUndefined();
      const nullOrigin = await login('null');
      expect(nullOrigin.statusCode).toBe(403);
      expect(corsHeaders(nullOrigin)).toEqual([]);
    });

    it('the per-client check stays on the actual request: a client’s origin cannot refresh another client’s session', async () => {
      const cookieLogin = await t.app.inject({
        method: 'POST',
        url: '/auth/login',
        headers: { origin: APP, 'sec-fetch-site': 'same-site', 'x-baton-csrf': '1' },
        payload: { email: EMAIL, password: PASSWORD, mode: 'cookie' },
      });
      const cookie = cookieLogin.cookies.find((c) => c.name === REFRESH_COOKIE)!.value;
      const res = await t.app.inject({
        method: 'POST',
        url: '/auth/refresh',
        headers: { origin: SPA, 'sec-fetch-site': 'same-site', 'x-baton-csrf': '1' },
        cookies: { [REFRESH_COOKIE]: cookie },
      });
      // The SPA's origin may read the answer (it is a registered origin), but the answer is a refusal.
      expect(res.statusCode).toBe(403);
      expect(res.headers['set-cookie']).toBeUndefined();
      const still = await t.app.inject({
        method: 'POST',
        url: '/auth/refresh',
        headers: { origin: APP, 'sec-fetch-site': 'same-site', 'x-baton-csrf': '1' },
        cookies: { [REFRESH_COOKIE]: cookie },
      });
      expect(still.statusCode).toBe(200);
    });

    it('without an Origin (Node, curl) nothing is granted; introspection never is', async () => {
      const res = await login(undefined);
      expect(res.statusCode).toBe(200);
      expect(corsHeaders(res)).toEqual([]);
      const introspect = await t.app.inject({
        method: 'POST',
        url: '/oauth/introspect',
        headers: { origin: APP, 'content-type': 'application/x-www-form-urlencoded' },
        payload: 'token=x',
      });
      expect(introspect.statusCode).toBe(401);
      expect(corsHeaders(introspect)).toEqual([]);
    });

    it('the public documents carry Access-Control-Allow-Origin: * and never credentials', async () => {
      for (const url of ['/.well-known/jwks.json', '/.well-known/oauth-authorization-server']) {
        const res = await t.app.inject({ method: 'GET', url, headers: { origin: EVIL } });
        expect(res.statusCode).toBe(200);
        expect(res.headers['access-control-allow-origin']).toBe('*');
        expect(res.headers['access-control-allow-credentials']).toBeUndefined();
      }
    });
  });

  it('allows exactly the request headers the client sends, no more', () => {
    expect(CORS_ALLOWED_HEADERS.split(', ').sort()).toEqual(
      ['authorization', 'content-type', 'dpop', 'x-baton-csrf'].sort(),
    );
  });
});
