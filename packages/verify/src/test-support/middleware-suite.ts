// One behaviour suite for both adapters: each framework test file starts a real app
// (listening on 127.0.0.1) with these routes and runs the same RFC 6750 checks over HTTP.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Verifier } from '../index.js';
import { createVerifier } from '../index.js';
import { startLocalServer, startTestIssuer, type TestIssuer } from './issuer.js';

/** A running app with the suite's routes, protected by `verifier`. */
export interface RunningApp {
  readonly url: string;
  /** How many times a protected route handler ran. */
  handled(): number;
  close(): Promise<void>;
}

/**
 * Builds an app with:
 * - `GET /me`: `requireAuth()`, answers `{ sub, scope }` from the attached claims;
 * - `GET /read`: `requireAuth({ scopes: ['read'] })`; `GET /admin`: `requireAuth({ scopes: ['admin'] })`;
 * - `GET /fresh`: `requireAuth({ checkSession: true })`;
 * - `GET /public`: no auth, answers `{ auth }` (must be absent/null).
 */
export type AppFactory = (verifier: Verifier, realm?: string) => Promise<RunningApp>;

export function middlewareSuite(framework: string, startApp: AppFactory): void {
  describe(`${framework}: requireAuth over HTTP (RFC 6750 §3.1)`, () => {
    let issuer: TestIssuer;
    let app: RunningApp;
    const revoked = new Set<string>();
    const get = (path: string, authorization?: string) =>
      fetch(`${app.url}${path}`, { headers: authorization === undefined ? {} : { authorization } });

    beforeAll(async () => {
      issuer = await startTestIssuer();
      issuer.introspect = (token) => ({ status: 200, body: { active: !revoked.has(token) } });
      const verifier = createVerifier({
        issuer: issuer.url,
        audience: issuer.audience,
        now: () => issuer.now,
        introspection: { clientId: 'api', clientSecret: 'secret' },
      });
      app = await startApp(verifier);
    });
    afterAll(async () => {
      await app.close();
      await issuer.close();
    });

    it('no Authorization header → 401 with a bare Bearer challenge, no error code', async () => {
      const before = app.handled();
      const res = await get('/me');
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('Bearer');
      expect(await res.json()).toEqual({
        error: 'unauthorized',
        error_description: 'An access token is required',
      });
      expect(app.handled()).toBe(before);
    });

    it('another scheme (Basic) counts as no token → 401 without error code', async () => {
      const res = await get('/me', `Basic ${Buffer.from('a:b').toString('base64')}`);
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('Bearer');
    });

    it('"Bearer" with no token → 400 invalid_request', async () => {
      const res = await get('/me', 'Bearer ');
      expect(res.status).toBe(400);
      expect(res.headers.get('www-authenticate')).toBe(
        'Bearer error="invalid_request", error_description="The Authorization header has no token"',
      );
    });

    it('a valid token → 200 with the claims attached to the request', async () => {
      const res = await get('/me', `Bearer ${issuer.mint({ claims: { sub: 'usr_7' } })}`);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ sub: 'usr_7', scope: 'read write' });
    });

    it('the scheme is case-insensitive', async () => {
      expect((await get('/me', `bEaReR ${issuer.mint()}`)).status).toBe(200);
    });

    it('an expired token → 401 invalid_token with a description', async () => {
      const now = Math.floor(issuer.now / 1000);
      const before = app.handled();
      const res = await get('/me', `Bearer ${issuer.mint({ claims: { iat: now - 1000, exp: now - 60 } })}`);
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe(
        'Bearer error="invalid_token", error_description="The access token expired"',
      );
      expect(await res.json()).toEqual({
        error: 'invalid_token',
        error_description: 'The access token expired',
      });
      expect(app.handled()).toBe(before);
    });

    it.each([
      ['alg none', () => issuer.mint({ header: { alg: 'none' } }).replace(/[^.]+$/, '')],
      ['typ JWT', () => issuer.mint({ header: { typ: 'JWT' } })],
      ['foreign aud', () => issuer.mint({ claims: { aud: 'https://other.test' } })],
      ['a space inside', () => issuer.mint().replace('.', '. ')],
    ])('%s → 401 invalid_token', async (_name, token) => {
      const res = await get('/me', `Bearer ${token()}`);
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toMatch(
        /^Bearer error="invalid_token", error_description="[^"]+"$/,
      );
    });

    it('a 10 KB token → 401 invalid_token, refused by size', async () => {
      const res = await get('/me', `Bearer ${issuer.mint({ claims: { pad: 'x'.repeat(10_000) } })}`);
      expect(res.status).toBe(401);
      expect((await res.json()).error_description).toBe('The token is longer than allowed');
    });

    it('a token without the required scope → 403 insufficient_scope naming it', async () => {
      const before = app.handled();
      const res = await get('/admin', `Bearer ${issuer.mint()}`);
      expect(res.status).toBe(403);
      expect(res.headers.get('www-authenticate')).toBe(
        'Bearer error="insufficient_scope", error_description="The access token lacks a required scope", scope="admin"',
      );
      expect((await res.json()).error).toBe('insufficient_scope');
      expect(app.handled()).toBe(before);
    });

    it('a token with the required scope → 200', async () => {
      expect((await get('/read', `Bearer ${issuer.mint()}`)).status).toBe(200);
      expect((await get('/admin', `Bearer ${issuer.mint({ claims: { scope: 'admin' } })}`)).status).toBe(200);
    });

    it('checkSession on one route: a revoked session is refused there, still accepted offline elsewhere', async () => {
      const token = issuer.mint();
      revoked.add(token);
      const fresh = await get('/fresh', `Bearer ${token}`);
      expect(fresh.status).toBe(401);
      expect(fresh.headers.get('www-authenticate')).toBe(
        'Bearer error="invalid_token", error_description="The session behind the access token has ended"',
      );
      expect((await get('/me', `Bearer ${token}`)).status).toBe(200);
      expect((await get('/fresh', `Bearer ${issuer.mint()}`)).status).toBe(200);
    });

    it('claims never leak into an unprotected route', async () => {
      await get('/me', `Bearer ${issuer.mint()}`);
      const res = await get('/public', `Bearer ${issuer.mint()}`);
      expect(await res.json()).toEqual({ auth: null });
    });

    it('a realm goes first in every challenge', async () => {
      const withRealm = await startApp(
        createVerifier({ issuer: issuer.url, audience: issuer.audience, now: () => issuer.now }),
        'orders',
      );
      try {
        const none = await fetch(`${withRealm.url}/me`);
        expect(none.headers.get('www-authenticate')).toBe('Bearer realm="orders"');
        const bad = await fetch(`${withRealm.url}/me`, { headers: { authorization: 'Bearer a.b.c' } });
        expect(bad.headers.get('www-authenticate')).toMatch(
          /^Bearer realm="orders", error="invalid_token", /,
        );
      } finally {
        await withRealm.close();
      }
    });

    it('the issuer unreachable → 503 temporarily_unavailable, no Bearer challenge', async () => {
      const gone = await startLocalServer(() => {});
      await gone.close();
      const down = await startApp(
        createVerifier({ issuer: gone.url, audience: issuer.audience, now: () => issuer.now }),
      );
      try {
        const res = await fetch(`${down.url}/me`, { headers: { authorization: `Bearer ${issuer.mint()}` } });
        expect(res.status).toBe(503);
        expect(res.headers.get('www-authenticate')).toBeNull();
        expect((await res.json()).error).toBe('temporarily_unavailable');
      } finally {
        await down.close();
      }
    });
  });
}
