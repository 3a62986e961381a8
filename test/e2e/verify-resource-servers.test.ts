// @baton/verify against a running Baton: a real Express app and a real Fastify app,
// each protecting routes with the package's middleware, driven with tokens Baton issued.
import { generateKeyPairSync, randomUUID, sign } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { createVerifier, type Verifier, type VerifierOptions, VerifyError } from '@baton/verify';
import express from 'express';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// By source path: vitest.config.ts aliases "@baton/verify" to src/index.ts, and Vite's alias
// prefix-matches, so "@baton/verify/express" would become ".../index.ts/express".
import { batonAuth as expressAuth } from '../../packages/verify/src/express.js';
import { batonAuth as fastifyAuth } from '../../packages/verify/src/fastify.js';
import { metricValue, type RunningBaton, startBaton } from './support/baton.js';

interface ResourceServer {
  readonly name: string;
  readonly url: string;
  close(): Promise<void>;
}

/** An Express API: `/me` (any valid token), `/admin` (scope "admin"), `/fresh` (checkSession). */
async function startExpressApi(verifier: Verifier): Promise<ResourceServer> {
  const { requireAuth } = expressAuth({ verifier });
  const app = express();
  app.get('/me', requireAuth(), (req, res) => {
    res.json({ sub: req.auth?.sub, sid: req.auth?.sid });
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
  app.get('/admin', { onRequest: app.requireAuth({ scopes: ['admin'] }) }, async () => ({ ok: true }));
  app.get('/fresh', { onRequest: app.requireAuth({ checkSession: true }) }, async (req) => ({
    sub: req.auth?.sub,
  }));
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  return { name: 'Fastify', url, close: () => app.close() };
}

let baton: RunningBaton;
let user: { id: string };
let login: { access_token: string; refresh_token: string; session_id: string };
const apis: ResourceServer[] = [];

async function post(path: string, body: unknown, headers: Record<string, string> = {}) {
  return fetch(`${baton.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
}

function options(extra: Partial<VerifierOptions> = {}): VerifierOptions {
  return {
    issuer: baton.url,
    audience: baton.url,
    // checkSession is only turned on per route; Baton does not know this client (see the test below).
    introspection: { clientId: 'verify-e2e', clientSecret: 'not-registered-at-baton' },
    ...extra,
  };
}

beforeAll(async () => {
  baton = await startBaton();
  const credentials = { email: 'verify-e2e@example.com', password: 'a long enough password' };
  const registered = await post('/auth/register', credentials);
  expect(registered.status).toBe(201);
  user = ((await registered.json()) as { user: { id: string } }).user;
  const loggedIn = await post('/auth/login', credentials);
  expect(loggedIn.status).toBe(200);
  login = (await loggedIn.json()) as typeof login;
  apis.push(await startExpressApi(createVerifier(options())));
  apis.push(await startFastifyApi(createVerifier(options())));
});

afterAll(async () => {
  for (const api of apis) await api.close();
  await baton?.stop();
});

describe('the verifier alone, with a Baton token', () => {
  it('verifies offline after one JWKS fetch and returns the RFC 9068 claims', async () => {
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
    ['another audience', () => ({ audience: 'https://orders.example.com' }), 'aud_invalid'],
    ['only EdDSA allowed (Baton signs ES256)', () => ({ algorithms: ['EdDSA'] }), 'alg_not_allowed'],
  ])('configured with %s, refuses the token', async (_name, extra, code) => {
    const error = await createVerifier(options(extra()))
      .verify(login.access_token)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(VerifyError);
    expect((error as VerifyError).code).toBe(code);
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

  it('refuses the token once the clock passes exp plus the leeway', async () => {
    const late = createVerifier(options({ now: () => Date.now() + (900 + 30) * 1000 }));
    await expect(late.verify(login.access_token)).rejects.toMatchObject({ code: 'token_expired' });
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

  it('Baton tokens carry no "admin" scope → 403 insufficient_scope', async () => {
    const res = await get('/admin', login.access_token);
    expect(res.status).toBe(403);
    expect(res.headers.get('www-authenticate')).toContain('error="insufficient_scope"');
    expect(res.headers.get('www-authenticate')).toContain('scope="admin"');
  });

  it('checkSession fails closed when Baton does not accept our introspection client → 503', async () => {
    const res = await get('/fresh', login.access_token);
    expect(res.status).toBe(503);
    expect((await res.json()).error).toBe('temporarily_unavailable');
  });
});

describe('after logout (the offline trade-off)', () => {
  it('the access token keeps working offline until exp; Baton itself refuses it', async () => {
    const credentials = { email: 'logout-e2e@example.com', password: 'a long enough password' };
    expect((await post('/auth/register', credentials)).status).toBe(201);
    const session = (await (await post('/auth/login', credentials)).json()) as typeof login;
    const out = await post('/auth/logout', { refresh_token: session.refresh_token });
    expect(out.status).toBe(204);
    for (const api of apis) {
      const res = await fetch(`${api.url}/me`, {
        headers: { authorization: `Bearer ${session.access_token}` },
      });
      expect(res.status, api.name).toBe(200);
    }
  });
});
