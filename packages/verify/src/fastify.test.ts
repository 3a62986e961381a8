import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { batonAuth } from './fastify.js';
import { createVerifier, type Verifier } from './index.js';
import { startTestIssuer } from './test-support/issuer.js';
import { type AppFactory, middlewareSuite } from './test-support/middleware-suite.js';

const startFastify: AppFactory = async (verifier: Verifier, realm?: string) => {
  const app = Fastify();
  await app.register(batonAuth, realm === undefined ? { verifier } : { verifier, realm });
  let handled = 0;
  const reply = async (request: { auth: { sub: string; scope?: string } | null }) => {
    handled++;
    return { sub: request.auth?.sub, scope: request.auth?.scope };
  };
  app.get('/me', { onRequest: app.requireAuth() }, reply);
  app.get('/read', { onRequest: app.requireAuth({ scopes: ['read'] }) }, reply);
  app.get('/admin', { onRequest: app.requireAuth({ scopes: ['admin'] }) }, reply);
  app.get('/fresh', { onRequest: app.requireAuth({ checkSession: true }) }, reply);
  app.get('/public', async (request) => ({ auth: request.auth }));
  app.post('/upload', { onRequest: app.requireAuth() }, async () => {
    handled++;
    return { ok: true };
  });
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  return { url, handled: () => handled, close: () => app.close() };
};

middlewareSuite('Fastify', startFastify);

describe('Fastify plugin', () => {
  it('refuses in onRequest, before the body is parsed (a broken body still gets 401)', async () => {
    const issuer = await startTestIssuer();
    const app = await startFastify(createVerifier({ issuer: issuer.url, audience: issuer.audience }));
    try {
      const res = await fetch(`${app.url}/upload`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{"not json',
      });
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('Bearer');
    } finally {
      await app.close();
      await issuer.close();
    }
  });

  it('accepts verifier options directly and exposes the verifier', async () => {
    const app = Fastify();
    await app.register(batonAuth, {
      issuer: 'https://auth.example.com',
      audience: 'https://api.example.com',
    });
    expect(app.batonVerifier.issuer).toBe('https://auth.example.com');
    await app.close();
  });

  it.each<[string, unknown]>([
    ['empty options', {}],
    ['an unknown verifier option', { issuer: 'https://auth.example.com', audience: 'x', audiance: 'y' }],
    ['a verifier and verifier options', { verifier: { verify: () => {} }, audience: 'x' }],
  ])('register with %s → TypeError', async (_name, opts) => {
    const app = Fastify();
    await expect(app.register(batonAuth, opts as Parameters<typeof batonAuth>[1]).ready()).rejects.toThrow(
      TypeError,
    );
    await app.close();
  });

  it('requireAuth misuse → TypeError at route definition', async () => {
    const app = Fastify();
    await app.register(batonAuth, { issuer: 'https://auth.example.com', audience: 'x' });
    expect(() => app.requireAuth({ scopes: 'admin' } as unknown as { scopes: string[] })).toThrow(TypeError);
    await app.close();
  });
});
