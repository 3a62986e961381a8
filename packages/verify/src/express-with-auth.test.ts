import type { AddressInfo } from 'node:net';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { batonAuth, withAuth } from './express.js';
import { createVerifier } from './index.js';
import { startTestIssuer, type TestIssuer } from './test-support/issuer.js';

describe('withAuth: a handler typed with req.auth set, behind requireAuth()', () => {
  let issuer: TestIssuer;
  let url = '';
  let close = async () => {};
  let handled = 0;

  beforeAll(async () => {
    issuer = await startTestIssuer();
    const verifier = createVerifier({ issuer: issuer.url, audience: issuer.audience, now: () => issuer.now });
    const { requireAuth } = batonAuth({ verifier });
    const app = express();
    // `req.auth.sub` without `?.` or `!`: this file type-checks only because withAuth types it as set.
    const me = withAuth((req, res) => {
      handled++;
      res.json({ sub: req.auth.sub });
    });
    app.get('/me', requireAuth(), me);
    // A wiring mistake: withAuth without requireAuth in front of it.
    app.get('/forgot', me);
    app.use((err: unknown, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
      res.status(500).json({ error: err instanceof TypeError ? 'type_error' : 'other' });
    });
    const server = app.listen(0, '127.0.0.1');
    await new Promise<void>((resolve) => server.once('listening', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    close = () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      });
  });
  afterAll(async () => {
    await close();
    await issuer.close();
  });

  it('passes the verified claims through to the handler', async () => {
    const token = issuer.mint({ claims: { sub: 'usr_ada' } });
    const res = await fetch(`${url}/me`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ sub: 'usr_ada' });
  });

  it('leaves refusals to requireAuth: no token → 401 and the handler never runs', async () => {
    const before = handled;
    const res = await fetch(`${url}/me`);
    expect(res.status).toBe(401);
    expect(handled).toBe(before);
  });

  it('fails closed when requireAuth is missing in front of it: a TypeError to next, the handler never runs', async () => {
    const before = handled;
    const token = issuer.mint({ claims: { sub: 'usr_ada' } });
    const res = await fetch(`${url}/forgot`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(500);
    expect(await res.json()).toEqual({ error: 'type_error' });
    expect(handled).toBe(before);
  });

  it('a handler that is not a function → TypeError at route definition', () => {
    expect(() => withAuth('nope' as unknown as Parameters<typeof withAuth>[0])).toThrow(TypeError);
  });
});
