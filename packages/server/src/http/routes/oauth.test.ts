import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { decodeJwt } from 'jose';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ISSUER, refresh, signUp, type TestApp, testApp } from '../../../test/helpers.js';
import { createClient } from '../../core/clients.js';

const EMAIL = 'ada@example.com';
const PASSWORD = 'correct horse battery';

/** Basic credentials as RFC 6749 §2.3.1 builds them. */
const basic = (id: string, secret: string) =>
  `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

/** A form-encoded POST, as every standard OAuth client sends. */
function form(
  app: FastifyInstance,
  url: string,
  params: Record<string, string> | string,
  headers: Record<string, string> = {},
) {
  return app.inject({
    method: 'POST',
    url,
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    payload: typeof params === 'string' ? params : new URLSearchParams(params).toString(),
  });
}

/** RFC 6749 §5.1/§5.2: JSON, and never cached, whatever the outcome. */
function expectOAuthHeaders(res: LightMyRequestResponse) {
  expect(res.headers['cache-control']).toBe('no-store');
  expect(res.headers.pragma).toBe('no-cache');
}

function expectError(res: LightMyRequestResponse, status: number, error: string) {
  expect({ status: res.statusCode, error: res.json().error }).toEqual({ status, error });
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  expect(typeof res.json().error_description).toBe('string');
  expectOAuthHeaders(res);
  if (error === 'invalid_client') expect(res.headers['www-authenticate']).toMatch(/^Basic /);
}

describe('OAuth 2.0 endpoints', () => {
  let t: TestApp;
  let backendSecret: string;
  let rsSecret: string;

  beforeEach(async () => {
    t = await testApp({ limits: { loginFailuresPerAccount: null, requestsPerIpPerMinute: null } });
    // A trusted backend that logs users in and refreshes their sessions.
    backendSecret = (await createClient(t.store, { id: 'backend', type: 'confidential' }, t.clock())).secret!;
    // A resource server that only introspects.
    rsSecret = (await createClient(t.store, { id: 'rs', type: 'confidential' }, t.clock())).secret!;
    // A public app with scopes and its own audience.
    await createClient(
      t.store,
      { id: 'mobile', type: 'public', allowedScopes: ['read', 'write'], audience: 'https://api.example' },
      t.clock(),
    );
  });
  afterEach(() => t.close());

  const login = async (payload: Record<string, unknown>, headers: Record<string, string> = {}) =>
    t.app.inject({
      method: 'POST',
      url: '/auth/login',
      payload: { email: EMAIL, password: PASSWORD, ...payload },
      headers,
    });

  describe('POST /oauth/token (RFC 6749 §6)', () => {
    it('refreshes a public client’s session by client_id, rotating the token', async () => {
      const { refresh_token } = await signUp(t.app, EMAIL, PASSWORD);
      const res = await form(t.app, '/oauth/token', {
        grant_type: 'refresh_token',
        refresh_token,
        client_id: 'app',
      });
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      expectOAuthHeaders(res);
      const body = res.json();
      expect(body).toMatchObject({ token_type: 'Bearer', expires_in: 900 });
      expect(body.access_token).toEqual(expect.any(String));
      expect(body.refresh_token).toMatch(/^brt_/);
      expect(body.refresh_token).not.toBe(refresh_token);
      expect(decodeJwt(body.access_token)).toMatchObject({ client_id: 'app', iss: ISSUER });

      // The same rotation as /auth/refresh: the new token works there, and the old one is spent.
      expect((await refresh(t.app, body.refresh_token)).statusCode).toBe(200);
      t.clock.advance(11_000);
      const replay = await form(t.app, '/oauth/token', {
        grant_type: 'refresh_token',
        refresh_token,
        client_id: 'app',
      });
      expectError(replay, 400, 'invalid_grant');
    });

    it('ignores unknown extra parameters (§3.2)', async () => {
      const { refresh_token } = await signUp(t.app, EMAIL, PASSWORD);
      const res = await form(t.app, '/oauth/token', {
        grant_type: 'refresh_token',
        refresh_token,
        client_id: 'app',
        resource_hint: 'whatever',
      });
      expect(res.statusCode).toBe(200);
    });

    it('answers malformed requests per §5.2 with no-store', async () => {
      const { refresh_token } = await signUp(t.app, EMAIL, PASSWORD);
      const ok = { grant_type: 'refresh_token', refresh_token, client_id: 'app' };
      const json = await t.app.inject({ method: 'POST', url: '/oauth/token', payload: ok });
      expectError(json, 400, 'invalid_request');
      const text = await t.app.inject({
        method: 'POST',
        url: '/oauth/token',
        headers: { 'content-type': 'text/plain' },
        payload: new URLSearchParams(ok).toString(),
      });
      expectError(text, 400, 'invalid_request');
      const empty = await t.app.inject({ method: 'POST', url: '/oauth/token' });
      expectError(empty, 400, 'invalid_request');
      expectError(
        await form(t.app, '/oauth/token', { refresh_token, client_id: 'app' }),
        400,
        'invalid_request',
      );
      expectError(await form(t.app, '/oauth/token', { ...ok, grant_type: '' }), 400, 'invalid_request');
      expectError(await form(t.app, '/oauth/token', { ...ok, refresh_token: '' }), 400, 'invalid_request');
      const twice = `${new URLSearchParams(ok)}&refresh_token=${encodeURIComponent(refresh_token)}`;
      expectError(await form(t.app, '/oauth/token', twice), 400, 'invalid_request');
      const twiceGrant = `${new URLSearchParams(ok)}&grant_type=refresh_token`;
      expectError(await form(t.app, '/oauth/token', twiceGrant), 400, 'invalid_request');
      const get = await t.app.inject({ method: 'GET', url: '/oauth/token' });
      expect(get.statusCode).toBe(405);
      expectOAuthHeaders(get);
      // None of that spent the token.
      expect((await form(t.app, '/oauth/token', ok)).statusCode).toBe(200);
    });

    it('has no password grant, nor any other (RFC 9700 §2.4)', async () => {
      await signUp(t.app, EMAIL, PASSWORD);
      for (const grant_type of ['password', 'authorization_code', 'client_credentials', 'urn:x:custom']) {
        const res = await form(t.app, '/oauth/token', {
          grant_type,
          username: EMAIL,
          password: PASSWORD,
          client_id: 'app',
        });
        expectError(res, 400, 'unsupported_grant_type');
        expect(res.body).not.toContain(grant_type === 'urn:x:custom' ? 'urn:x:custom' : PASSWORD);
      }
      // Without a client, too: no grant but refresh_token exists for anyone.
      expectError(
        await form(t.app, '/oauth/token', { grant_type: 'password', username: EMAIL, password: PASSWORD }),
        400,
        'unsupported_grant_type',
      );
    });

    it('needs the client identified, and confidential clients authenticated (401 + WWW-Authenticate: Basic)', async () => {
      const { refresh_token } = await signUp(t.app, EMAIL, PASSWORD);
      const grant = { grant_type: 'refresh_token', refresh_token };
      expectError(await form(t.app, '/oauth/token', grant), 401, 'invalid_client');
      expectError(
        await form(t.app, '/oauth/token', { ...grant, client_id: 'nobody' }),
        401,
        'invalid_client',
      );
      expectError(
        await form(t.app, '/oauth/token', { ...grant, client_id: 'backend' }),
        401,
        'invalid_client',
      );
      expectError(
        await form(t.app, '/oauth/token', grant, { authorization: basic('backend', `${backendSecret}x`) }),
        401,
        'invalid_client',
      );
      expectError(
        await form(t.app, '/oauth/token', grant, { authorization: basic('nobody', backendSecret) }),
        401,
        'invalid_client',
      );
      expectError(
        await form(t.app, '/oauth/token', { ...grant, client_id: 'backend', client_secret: 'wrong' }),
        401,
        'invalid_client',
      );
      expectError(
        await form(t.app, '/oauth/token', { ...grant, client_id: 'app', client_secret: 'anything' }),
        401,
        'invalid_client',
      );
      expectError(
        await form(t.app, '/oauth/token', grant, { authorization: 'Bearer abc' }),
        401,
        'invalid_client',
      );
      const both = await form(
        t.app,
        '/oauth/token',
        { ...grant, client_secret: backendSecret },
        { authorization: basic('backend', backendSecret) },
      );
      expectError(both, 400, 'invalid_request');
      // Still unspent.
      expect((await form(t.app, '/oauth/token', { ...grant, client_id: 'app' })).statusCode).toBe(200);
    });

    it('a refresh token issued to client A is invalid_grant for client B, and stays valid for A', async () => {
      const { refresh_token } = await signUp(t.app, EMAIL, PASSWORD);
      const grant = { grant_type: 'refresh_token', refresh_token };
      expectError(await form(t.app, '/oauth/token', { ...grant, client_id: 'mobile' }), 400, 'invalid_grant');
      expectError(
        await form(t.app, '/oauth/token', grant, { authorization: basic('backend', backendSecret) }),
        400,
        'invalid_grant',
      );
      expect((await form(t.app, '/oauth/token', { ...grant, client_id: 'app' })).statusCode).toBe(200);
    });

    it('narrows the scope on request; widening it is invalid_scope', async () => {
      await signUp(t.app, EMAIL, PASSWORD);
      const start = await login({ client_id: 'mobile', scope: 'read write' });
      expect(start.json().scope).toBe('read write');
      const narrow = await form(t.app, '/oauth/token', {
        grant_type: 'refresh_token',
        refresh_token: start.json().refresh_token,
        client_id: 'mobile',
        scope: 'read',
      });
      expect(narrow.statusCode).toBe(200);
      expect(narrow.json().scope).toBe('read');
      expect(decodeJwt(narrow.json().access_token)).toMatchObject({
        scope: 'read',
        aud: 'https://api.example',
      });
      const wide = await form(t.app, '/oauth/token', {
        grant_type: 'refresh_token',
        refresh_token: narrow.json().refresh_token,
        client_id: 'mobile',
        scope: 'read write admin',
      });
      expectError(wide, 400, 'invalid_scope');
    });
  });

  describe('confidential clients: sessions started by a trusted backend', () => {
    it('log users in only with their credentials, by Basic or client_secret', async () => {
      await signUp(t.app, EMAIL, PASSWORD);
      const unauthenticated = await login({ client_id: 'backend' });
      expect(unauthenticated.statusCode).toBe(400);
      expect(unauthenticated.json().error).toBe('unauthorized_client');
      const wrong = await login({}, { authorization: basic('backend', 'nope') });
      expect(wrong.statusCode).toBe(401);
      expect(wrong.json().error).toBe('invalid_client');
      expect(wrong.headers['www-authenticate']).toMatch(/^Basic /);
      const publicWithSecret = await login({ client_id: 'app', client_secret: backendSecret });
      expect(publicWithSecret.json().error).toBe('invalid_client');
      const cookie = await login(
        { mode: 'cookie' },
        { authorization: basic('backend', backendSecret), origin: ISSUER, 'x-baton-csrf': '1' },
      );
      expect(cookie.json().error).toBe('invalid_request');

      const byBasic = await login({}, { authorization: basic('backend', backendSecret) });
      expect(byBasic.statusCode).toBe(200);
      expect(decodeJwt(byBasic.json().access_token).client_id).toBe('backend');
      const byPost = await login({ client_id: 'backend', client_secret: backendSecret });
      expect(byPost.statusCode).toBe(200);
      expect(decodeJwt(byPost.json().access_token).client_id).toBe('backend');
    });

    it('refresh only at /oauth/token with client authentication', async () => {
      await signUp(t.app, EMAIL, PASSWORD);
      const { refresh_token } = (await login({}, { authorization: basic('backend', backendSecret) })).json();
      const grant = { grant_type: 'refresh_token', refresh_token };

      // /auth/refresh and the seed route carry no client authentication: refused, nothing rotated.
      const viaAuth = await refresh(t.app, refresh_token);
      expect(viaAuth.statusCode).toBe(400);
      expect(viaAuth.json().error).toBe('unauthorized_client');
      const viaSeed = await t.app.inject({
        method: 'POST',
        url: '/api/v1/users/refresh-token',
        payload: { refreshToken: refresh_token },
      });
      expect(viaSeed.json().error).toBe('unauthorized_client');
      expectError(
        await form(t.app, '/oauth/token', { ...grant, client_id: 'backend' }),
        401,
        'invalid_client',
      );
      expectError(await form(t.app, '/oauth/token', { ...grant, client_id: 'app' }), 400, 'invalid_grant');

      const basicRes = await form(t.app, '/oauth/token', grant, {
        authorization: basic('backend', backendSecret),
      });
      expect(basicRes.statusCode).toBe(200);
      const postRes = await form(t.app, '/oauth/token', {
        grant_type: 'refresh_token',
        refresh_token: basicRes.json().refresh_token,
        client_id: 'backend',
        client_secret: backendSecret,
      });
      expect(postRes.statusCode).toBe(200);
      expect(decodeJwt(postRes.json().access_token).client_id).toBe('backend');
    });
  });

  describe('POST /oauth/revoke (RFC 7009)', () => {
    const revoke = (
      token: string,
      extra: Record<string, string> = {},
      headers: Record<string, string> = {},
    ) => form(t.app, '/oauth/revoke', { token, client_id: 'app', ...extra }, headers);

    it('revoking a refresh token ends its session', async () => {
      const { refresh_token, access_token } = await signUp(t.app, EMAIL, PASSWORD);
      const res = await revoke(refresh_token);
      expect(res.statusCode).toBe(200);
      expect(res.body).toBe('');
      expectOAuthHeaders(res);
      expect((await refresh(t.app, refresh_token)).statusCode).toBe(401);
      const me = await t.app.inject({
        url: '/auth/me',
        headers: { authorization: `Bearer ${access_token}` },
      });
      expect(me.statusCode).toBe(401);
      // Revoking again is fine.
      expect((await revoke(refresh_token)).statusCode).toBe(200);
    });

    it('revoking an access token ends its session too', async () => {
      const { refresh_token, access_token } = await signUp(t.app, EMAIL, PASSWORD);
      expect((await revoke(access_token)).statusCode).toBe(200);
      expect((await refresh(t.app, refresh_token)).statusCode).toBe(401);
      const me = await t.app.inject({
        url: '/auth/me',
        headers: { authorization: `Bearer ${access_token}` },
      });
      expect(me.statusCode).toBe(401);
    });

    it('treats token_type_hint as a hint only', async () => {
      const a = await signUp(t.app, EMAIL, PASSWORD);
      expect((await revoke(a.refresh_token, { token_type_hint: 'access_token' })).statusCode).toBe(200);
      expect((await refresh(t.app, a.refresh_token)).statusCode).toBe(401);
      const b = await signUp(t.app, EMAIL, PASSWORD);
      expect((await revoke(b.access_token, { token_type_hint: 'refresh_token' })).statusCode).toBe(200);
      expect((await refresh(t.app, b.refresh_token)).statusCode).toBe(401);
      const c = await signUp(t.app, EMAIL, PASSWORD);
      expect((await revoke(c.refresh_token, { token_type_hint: 'id_token' })).statusCode).toBe(200);
      expect((await refresh(t.app, c.refresh_token)).statusCode).toBe(401);
    });

    it('answers 200 for unknown, garbage and expired tokens', async () => {
      const { refresh_token, access_token } = await signUp(t.app, EMAIL, PASSWORD);
      for (const token of ['garbage', `brt_${'A'.repeat(22)}.${'B'.repeat(43)}`, 'a.b.c', `${access_token}x`])
        expect((await revoke(token)).statusCode).toBe(200);
      // One flipped character of a real token is just another unknown token.
      const flipped =
        refresh_token.slice(0, -2) + (refresh_token.at(-2) === 'A' ? 'B' : 'A') + refresh_token.at(-1);
      expect((await revoke(flipped)).statusCode).toBe(200);
      expect((await refresh(t.app, refresh_token)).statusCode).toBe(200);
    });

    it('refuses to revoke another client’s token, which stays valid', async () => {
      const { refresh_token } = await signUp(t.app, EMAIL, PASSWORD);
      expectError(await revoke(refresh_token, { client_id: 'mobile' }), 400, 'unauthorized_client');
      expect((await refresh(t.app, refresh_token)).statusCode).toBe(200);
    });

    it('needs the token and the client; confidential clients authenticate', async () => {
      await signUp(t.app, EMAIL, PASSWORD);
      const { refresh_token } = (await login({}, { authorization: basic('backend', backendSecret) })).json();
      expectError(await form(t.app, '/oauth/revoke', { client_id: 'app' }), 400, 'invalid_request');
      expectError(await form(t.app, '/oauth/revoke', { token: refresh_token }), 401, 'invalid_client');
      expectError(
        await form(t.app, '/oauth/revoke', { token: refresh_token, client_id: 'backend' }),
        401,
        'invalid_client',
      );
      const ok = await form(
        t.app,
        '/oauth/revoke',
        { token: refresh_token },
        { authorization: basic('backend', backendSecret) },
      );
      expect(ok.statusCode).toBe(200);
      const after = await form(
        t.app,
        '/oauth/token',
        { grant_type: 'refresh_token', refresh_token },
        { authorization: basic('backend', backendSecret) },
      );
      expectError(after, 400, 'invalid_grant');
    });
  });

  describe('POST /oauth/introspect (RFC 7662)', () => {
    const introspect = (
      token: string,
      headers: Record<string, string> = { authorization: basic('rs', rsSecret) },
    ) => form(t.app, '/oauth/introspect', { token }, headers);

    it('needs a confidential client’s credentials: 401 otherwise', async () => {
      const { access_token } = await signUp(t.app, EMAIL, PASSWORD);
      expectError(await introspect(access_token, {}), 401, 'invalid_client');
      expectError(
        await form(t.app, '/oauth/introspect', { token: access_token, client_id: 'app' }),
        401,
        'invalid_client',
      );
      expectError(
        await form(t.app, '/oauth/introspect', { token: access_token, client_id: 'rs' }),
        401,
        'invalid_client',
      );
      expectError(
        await introspect(access_token, { authorization: basic('rs', 'wrong') }),
        401,
        'invalid_client',
      );
      expectError(
        await introspect(access_token, { authorization: basic('app', 'x') }),
        401,
        'invalid_client',
      );
      const post = await form(t.app, '/oauth/introspect', {
        token: access_token,
        client_id: 'rs',
        client_secret: rsSecret,
      });
      expect(post.json().active).toBe(true);
      expectError(
        await form(t.app, '/oauth/introspect', {}, { authorization: basic('rs', rsSecret) }),
        400,
        'invalid_request',
      );
    });

    it('describes an active access token with its claims', async () => {
      const { access_token, session_id } = await signUp(t.app, EMAIL, PASSWORD);
      const res = await introspect(access_token);
      expect(res.statusCode).toBe(200);
      expectOAuthHeaders(res);
      const claims = decodeJwt(access_token);
      expect(res.json()).toEqual({
        active: true,
        token_type: 'Bearer',
        client_id: 'app',
        sub: claims.sub,
        exp: claims.exp,
        iat: claims.iat,
        iss: ISSUER,
        aud: ISSUER,
        jti: claims.jti,
        sid: session_id,
      });
    });

    it('accepts every audience the server issues, with scope', async () => {
      await signUp(t.app, EMAIL, PASSWORD);
      const { access_token } = (await login({ client_id: 'mobile', scope: 'read' })).json();
      expect((await introspect(access_token)).json()).toMatchObject({
        active: true,
        aud: 'https://api.example',
        scope: 'read',
        client_id: 'mobile',
      });
    });

    it('describes an active refresh token; a rotated one is inactive', async () => {
      const { refresh_token, session_id } = await signUp(t.app, EMAIL, PASSWORD);
      const res = (await introspect(refresh_token)).json();
      expect(res).toMatchObject({ active: true, client_id: 'app', sid: session_id, iss: ISSUER });
      expect(res.exp).toBeGreaterThan(res.iat);
      expect(res).not.toHaveProperty('token_type');
      expect((await refresh(t.app, refresh_token)).statusCode).toBe(200);
      expect((await introspect(refresh_token)).body).toBe('{"active":false}');
    });

    it('answers exactly {"active": false} for revoked-session, expired and bad tokens', async () => {
      const { access_token, refresh_token } = await signUp(t.app, EMAIL, PASSWORD);
      const flipped =
        refresh_token.slice(0, -2) + (refresh_token.at(-2) === 'A' ? 'B' : 'A') + refresh_token.at(-1);
      for (const token of ['garbage', 'a.b.c', flipped, `${access_token.slice(0, -4)}AAAA`]) {
        const res = await introspect(token);
        expect(res.statusCode).toBe(200);
        expect(res.body).toBe('{"active":false}');
      }
      // Logout revokes the session: its unexpired access token is inactive at once.
      await t.app.inject({ method: 'POST', url: '/auth/logout', payload: { refresh_token } });
      expect((await introspect(access_token)).body).toBe('{"active":false}');
      expect((await introspect(refresh_token)).body).toBe('{"active":false}');

      const fresh = await signUp(t.app, EMAIL, PASSWORD);
      expect((await introspect(fresh.access_token)).json().active).toBe(true);
      t.clock.advance(16 * 60_000);
      expect((await introspect(fresh.access_token)).body).toBe('{"active":false}');
    });
  });

  describe('GET /.well-known/oauth-authorization-server (RFC 8414)', () => {
    it('lists the endpoints with the issuer byte for byte and no empty arrays', async () => {
      const res = await t.app.inject({ url: '/.well-known/oauth-authorization-server' });
      expect(res.statusCode).toBe(200);
      expect(res.headers['cache-control']).toMatch(/max-age=\d+/);
      const meta = res.json();
      expect(meta).toMatchObject({
        issuer: ISSUER,
        token_endpoint: `${ISSUER}/oauth/token`,
        revocation_endpoint: `${ISSUER}/oauth/revoke`,
        introspection_endpoint: `${ISSUER}/oauth/introspect`,
        jwks_uri: `${ISSUER}/.well-known/jwks.json`,
        grant_types_supported: ['refresh_token'],
        token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'none'],
        revocation_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'none'],
        introspection_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
        scopes_supported: ['read', 'write'],
      });
      for (const value of Object.values(meta))
        if (Array.isArray(value)) expect(value.length).toBeGreaterThan(0);
    });

    it('leaves scopes_supported out when no client has scopes, and keeps a trailing-slash issuer exact', async () => {
      const other = await testApp({ issuer: `${ISSUER}/` });
      try {
        const meta = (await other.app.inject({ url: '/.well-known/oauth-authorization-server' })).json();
        expect(meta.issuer).toBe(`${ISSUER}/`);
        expect(meta.token_endpoint).toBe(`${ISSUER}/oauth/token`);
        expect(meta).not.toHaveProperty('scopes_supported');
        for (const value of Object.values(meta))
          if (Array.isArray(value)) expect(value.length).toBeGreaterThan(0);
      } finally {
        await other.close();
      }
    });
  });

  it('hostile input on every /oauth route: never a 5xx, never an echo, always no-store', async () => {
    const MARKER = 'zq9MARKERzq9';
    const { refresh_token } = await signUp(t.app, EMAIL, PASSWORD);
    const bodies: { type: string; body: string | Buffer }[] = [
      { type: 'application/json', body: `{"__proto__": {"x": 1}, "token": "${MARKER}"}` },
      { type: 'application/json', body: `${'['.repeat(5000)}${']'.repeat(5000)}` },
      { type: 'application/x-www-form-urlencoded', body: `__proto__=${MARKER}&token=${MARKER}` },
      {
        type: 'application/x-www-form-urlencoded',
        body: Buffer.from([0x74, 0x6f, 0x6b, 0x65, 0x6e, 0x3d, 0xff, 0xfe]),
      },
      { type: 'application/x-www-form-urlencoded', body: `token=%E0%A4%A${MARKER}&grant_type=%ZZ` },
      { type: 'application/x-www-form-urlencoded', body: `token=${'A'.repeat(70_000)}` },
      { type: 'application/x-www-form-urlencoded; charset=utf-16', body: `token=${MARKER}` },
      { type: 'multipart/form-data; boundary=x', body: `--x\r\n${MARKER}\r\n--x--` },
    ];
    for (const url of ['/oauth/token', '/oauth/revoke', '/oauth/introspect']) {
      for (const { type, body } of bodies) {
        const res = await t.app.inject({
          method: 'POST',
          url,
          headers: { 'content-type': type, authorization: basic('rs', rsSecret) },
          payload: body,
        });
        // Revocation and introspection answer a well-formed request about a garbage token with 200.
        if (url === '/oauth/token' || res.statusCode !== 200) {
          expect(res.statusCode, `${url} ${type}`).toBeGreaterThanOrEqual(400);
          expect(res.statusCode, `${url} ${type}`).toBeLessThan(500);
          expect(res.json().error).toEqual(expect.any(String));
        } else if (url === '/oauth/introspect') expect(res.body).toBe('{"active":false}');
        expect(res.body).not.toContain(MARKER);
        expectOAuthHeaders(res);
      }
    }
    // Nothing above touched the session.
    expect((await refresh(t.app, refresh_token)).statusCode).toBe(200);
  });

  it('JWKS: public members only, unique kids, one alg each, use sig, cacheable', async () => {
    const res = await t.app.inject({ url: '/.well-known/jwks.json' });
    expect(res.headers['cache-control']).toBe('public, max-age=300');
    const { keys } = res.json();
    expect(keys.length).toBeGreaterThan(0);
    expect(new Set(keys.map((k: { kid: string }) => k.kid)).size).toBe(keys.length);
    for (const k of keys) {
      expect(Object.keys(k).sort()).toEqual(['alg', 'crv', 'kid', 'kty', 'use', 'x', 'y']);
      expect(k).toMatchObject({ use: 'sig', alg: 'ES256' });
    }
  });
});
