// @baton/verify against a running Baton: a real Express app and a real Fastify app,
// each protecting routes with the package's middleware, driven with tokens Baton issued.
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, randomUUID, sign } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { createVerifier, type Verifier, type VerifierOptions, VerifyError } from '@baton/verify';
// By source path: vitest.config.ts aliases "@baton/verify" to src/index.ts, and Vite's alias
// prefix-matches, so "@baton/verify/express" would become ".../index.ts/express".
import { batonAuth as expressAuth } from '@baton/verify/express';
import { batonAuth as fastifyAuth } from '@baton/verify/fastify';
import express from 'express';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, metricValue, type RunningBaton, startBaton } from './support/baton.js';

const ORDERS_AUDIENCE = 'https://orders.example.test';

interface ResourceServer {
  readonly name: string;
  readonly url: string;
  close(): Promise<void>;
}

/**
 * An Express API: `/me` (any valid token), `/orders` (scope orders:read), `/admin` (scope admin),
 * `/fresh` (checkSession: asks Baton's introspection).
 */
async function startExpressApi(verifier: Verifier): Promise<ResourceServer> {
  const { requireAuth } = expressAuth({ verifier });
  const app = express();
  app.get('/me', requireAuth(), (req, res) => {
    res.json({ sub: req.auth?.sub, sid: req.auth?.sid });
  });
  app.get('/orders', requireAuth({ scopes: ['orders:read'] }), (req, res) => {
    res.json({ scope: req.auth?.scope });
  });
  app.get('/admin', requireAuth({ scopes: ['admin'] }), (_req, res) => {
    res.json({ ok: true });
  });
  app.get('/fresh', requireAuth({ checkSession: true }), (req, res) => {
    res.json({ sub: req.auth?.sub });
  });
  const server = app.listen(0, '127.0.0.1');
  await new Promise<void>((resolve) => server.once('listening', resolve));
  return {
    name: 'Express',
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The same API on Fastify. */
async function startFastifyApi(verifier: Verifier): Promise<ResourceServer> {
  const app = Fastify();
  await app.register(fastifyAuth, { verifier });
  app.get('/me', { onRequest: app.requireAuth() }, async (req) => ({
    sub: req.auth?.sub,
    sid: req.auth?.sid,
  }));
  app.get('/orders', { onRequest: app.requireAuth({ scopes: ['orders:read'] }) }, async (req) => ({
    scope: req.auth?.scope,
  }));
  app.get('/admin', { onRequest: app.requireAuth({ scopes: ['admin'] }) }, async () => ({ ok: true }));
  app.get('/fresh', { onRequest: app.requireAuth({ checkSession: true }) }, async (req) => ({
    sub: req.auth?.sub,
  }));
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  return { name: 'Fastify', url, close: () => app.close() };
}

type Login = { access_token: string; refresh_token: string; session_id: string };

let baton: RunningBaton;
let user: { id: string };
let login: Login;
let introspection: { clientId: string; clientSecret: string };
/** Protecting the default audience (the issuer), then the orders audience; Express first. */
const apis: ResourceServer[] = [];
const ordersApis: ResourceServer[] = [];
const credentials = { email: 'verify-e2e@example.com', password: 'a long enough password' };

/** `baton clients create …` on the running server's database; returns stdout. */
function createClient(args: string[]): string {
  return execFileSync(process.execPath, [CLI, 'clients', 'create', ...args], {
    env: { ...process.env, BATON_DATABASE_URL: baton.databaseUrl, BATON_ISSUER: baton.url },
    encoding: 'utf8',
  });
}

async function post(path: string, body: unknown) {
  return fetch(`${baton.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

async function logIn(extra: Record<string, string> = {}, who = credentials): Promise<Login> {
  const res = await post('/auth/login', { ...who, ...extra });
  expect(res.status).toBe(200);
  return (await res.json()) as Login;
}

function options(extra: Partial<VerifierOptions> = {}): VerifierOptions {
  return { issuer: baton.url, audience: baton.url, introspection, ...extra };
}

beforeAll(async () => {
  baton = await startBaton();
  // A confidential client for the resource servers' introspection calls (RFC 7662 §2.1) ...
  const secret = /^client_secret: (\S+)$/m.exec(
    createClient(['--id', 'orders-api', '--type', 'confidential']),
  )?.[1];
  expect(secret).toBeDefined();
  introspection = { clientId: 'orders-api', clientSecret: secret! };
  // ... and a public client whose tokens carry scopes and the orders audience.
  createClient([
    '--id',
    'orders-web',
    '--type',
    'public',
    '--scope',
    'orders:read',
    '--scope',
    'orders:write',
    '--audience',
    ORDERS_AUDIENCE,
  ]);

  const registered = await post('/auth/register', credentials);
  expect(registered.status).toBe(201);
  user = ((await registered.json()) as { user: { id: string } }).user;
  login = await logIn();
  apis.push(await startExpressApi(createVerifier(options())));
  apis.push(await startFastifyApi(createVerifier(options())));
  ordersApis.push(await startExpressApi(createVerifier(options({ audience: ORDERS_AUDIENCE }))));
  ordersApis.push(await startFastifyApi(createVerifier(options({ audience: ORDERS_AUDIENCE }))));
});

afterAll(async () => {
  for (const api of [...apis, ...ordersApis]) await api.close();
  await baton?.stop();
});

describe('the verifier alone, with a Baton token', () => {
  it('discovers the JWKS, verifies offline and returns the RFC 9068 claims', async () => {
    const claims = await createVerifier(options()).verify(login.access_token);
    expect(claims).toMatchObject({
      iss: baton.url,
      sub: user.id,
      aud: baton.url,
      sid: login.session_id,
      client_id: 'app',
    });
    expect(typeof claims.jti).toBe('string');
    expect(claims.exp - claims.iat).toBe(900);
  });

  it.each<[string, () => Partial<VerifierOptions>, string]>([
    [
      'a trailing slash on the issuer',
      () => ({ issuer: `${baton.url}/`, jwksUri: `${baton.url}/.well-known/jwks.json` }),
      'iss_invalid',
    ],
    ['another audience', () => ({ audience: ORDERS_AUDIENCE }), 'aud_invalid'],
    ['only EdDSA allowed (Baton signs ES256)', () => ({ algorithms: ['EdDSA'] }), 'alg_not_allowed'],
  ])('configured with %s, refuses the token', async (_name, extra, code) => {
    const error = await createVerifier(options(extra()))
      .verify(login.access_token)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(VerifyError);
    expect((error as VerifyError).code).toBe(code);
  });

  it('refuses the token once the clock passes exp plus the leeway, not before', async () => {
    const late = createVerifier(options({ now: () => Date.now() + (900 + 30) * 1000 }));
    await expect(late.verify(login.access_token)).rejects.toMatchObject({ code: 'token_expired' });
    const nearlyLate = createVerifier(options({ now: () => Date.now() + (900 + 20) * 1000 }));
    await expect(nearlyLate.verify(login.access_token)).resolves.toMatchObject({ sub: user.id });
  });

  it('a flood of unknown kids costs Baton no extra JWKS requests', async () => {
    const jwksRequests = async () =>
      metricValue(await baton.metrics(), 'baton_http_request_duration_seconds_count', {
        method: 'GET',
        route: '/.well-known/jwks.json',
      });
    const before = await jwksRequests();
    const verifier = createVerifier(options());
    await verifier.verify(login.access_token);
    expect(await jwksRequests()).toBe(before + 1);
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const [, payload] = login.access_token.split('.');
    const codes = await Promise.all(
      Array.from({ length: 50 }, async () => {
        const header = Buffer.from(
          JSON.stringify({ alg: 'ES256', typ: 'at+jwt', kid: randomUUID() }),
        ).toString('base64url');
        const signature = sign('sha256', Buffer.from(`${header}.${payload}`), {
          key: privateKey,
          dsaEncoding: 'ieee-p1363',
        });
        return verifier
          .verify(`${header}.${payload}.${signature.toString('base64url')}`)
          .catch((e: VerifyError) => e.code);
      }),
    );
    expect(new Set(codes)).toEqual(new Set(['kid_unknown']));
    expect(await jwksRequests()).toBe(before + 1);
  });
});

describe.each([0, 1])('resource server #%i (Express, then Fastify) protected by requireAuth', (index) => {
  const api = () => apis[index]!;
  const get = (path: string, token?: string) =>
    fetch(`${api().url}${path}`, {
      headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
    });

  it('a Baton access token → 200 with the user and session from its claims', async () => {
    const res = await get('/me', login.access_token);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ sub: user.id, sid: login.session_id });
  });

  it('no token → 401 with a bare Bearer challenge', async () => {
    const res = await get('/me');
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe('Bearer');
  });

  it('one changed character → 401 invalid_token', async () => {
    const t = login.access_token;
    const i = t.lastIndexOf('.') + 5;
    const tampered = t.slice(0, i) + (t[i] === 'A' ? 'B' : 'A') + t.slice(i + 1);
    const res = await get('/me', tampered);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer error="invalid_token", error_description="/);
  });

  it('a refresh token in the Bearer header → 401 invalid_token', async () => {
    const res = await get('/me', login.refresh_token);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer error="invalid_token"/);
  });

  it('a token without scopes → 403 insufficient_scope', async () => {
    const res = await get('/admin', login.access_token);
    expect(res.status).toBe(403);
    expect(res.headers.get('www-authenticate')).toContain('error="insufficient_scope"');
    expect(res.headers.get('www-authenticate')).toContain('scope="admin"');
  });

  it('checkSession: Baton introspection says active → 200', async () => {
    const res = await get('/fresh', login.access_token);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ sub: user.id });
  });

  it('a token for the orders audience → 401 here (aud_invalid)', async () => {
    const orders = await logIn({ client_id: 'orders-web', scope: 'orders:read' });
    const res = await get('/me', orders.access_token);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toContain('error="invalid_token"');
  });
});

describe.each([0, 1])('orders API #%i (Express, then Fastify): audience and scopes of a client', (index) => {
  const get = (path: string, token: string) =>
    fetch(`${ordersApis[index]!.url}${path}`, { headers: { authorization: `Bearer ${token}` } });

  it('a token of client orders-web with scope orders:read → 200 on /orders, 403 on /admin', async () => {
    const orders = await logIn({ client_id: 'orders-web', scope: 'orders:read' });
    const ok = await get('/orders', orders.access_token);
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ scope: 'orders:read' });
    expect((await get('/admin', orders.access_token)).status).toBe(403);
  });

  it('a token of client orders-web without the scope → 403 on /orders', async () => {
    const orders = await logIn({ client_id: 'orders-web', scope: 'orders:write' });
    const res = await get('/orders', orders.access_token);
    expect(res.status).toBe(403);
    expect(res.headers.get('www-authenticate')).toContain('scope="orders:read"');
  });

  it('a default (issuer-audience) token → 401 here', async () => {
    expect((await get('/me', login.access_token)).status).toBe(401);
  });
});

describe('after logout: the offline trade-off, and checkSession closing it', () => {
  it('the access token still passes offline checks, but checkSession refuses it (token_inactive)', async () => {
    const who = { email: 'logout-e2e@example.com', password: 'a long enough password' };
    expect((await post('/auth/register', who)).status).toBe(201);
    const session = await logIn({}, who);
    const auth = { authorization: `Bearer ${session.access_token}` };
    for (const api of apis)
      expect((await fetch(`${api.url}/fresh`, { headers: auth })).status, api.name).toBe(200);

    expect((await post('/auth/logout', { refresh_token: session.refresh_token })).status).toBe(204);

    for (const api of apis) {
      expect((await fetch(`${api.url}/me`, { headers: auth })).status, `${api.name} /me`).toBe(200);
    }
    // The verifier with its cache off, so the logout is seen at once:
    const fresh = createVerifier(options({ introspection: { ...introspection, cacheTtl: 0 } }));
    await expect(fresh.verify(session.access_token, { checkSession: true })).rejects.toMatchObject({
      code: 'token_inactive',
    });
  });

  it('through the middleware, a session revoked before its first check is refused at once', async () => {
    const who = { email: 'logout2-e2e@example.com', password: 'a long enough password' };
    expect((await post('/auth/register', who)).status).toBe(201);
    const session = await logIn({}, who);
    const auth = { authorization: `Bearer ${session.access_token}` };
    // A revoked session seen for the first time: no cached "active" answer to wait out.
    expect((await post('/auth/logout', { refresh_token: session.refresh_token })).status).toBe(204);
    for (const api of apis) {
      const res = await fetch(`${api.url}/fresh`, { headers: auth });
      expect(res.status, api.name).toBe(401);
      expect(res.headers.get('www-authenticate'), api.name).toBe(
        'Bearer error="invalid_token", error_description="The session behind the access token has ended"',
      );
    }
  });

  it('checkSession with credentials Baton does not accept fails closed → introspection_unavailable', async () => {
    const wrong = createVerifier(
      options({ introspection: { clientId: 'orders-api', clientSecret: 'wrong' } }),
    );
    const error = await wrong.verify(login.access_token, { checkSession: true }).catch((e: unknown) => e);
    expect((error as VerifyError).code).toBe('introspection_unavailable');
  });
});
