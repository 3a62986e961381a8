import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { describe, expect, it } from 'vitest';
import { batonAuth } from './express.js';
import { createVerifier, type Verifier } from './index.js';
import { type AppFactory, middlewareSuite } from './test-support/middleware-suite.js';

const startExpress: AppFactory = async (verifier: Verifier, realm?: string) => {
  const { requireAuth } = batonAuth(realm === undefined ? { verifier } : { verifier, realm });
  let handled = 0;
  const app = express();
  const reply = (req: express.Request, res: express.Response) => {
    handled++;
    res.json({ sub: req.auth?.sub, scope: req.auth?.scope });
  };
  app.get('/me', requireAuth(), reply);
  app.get('/read', requireAuth({ scopes: ['read'] }), reply);
  app.get('/admin', requireAuth({ scopes: ['admin'] }), reply);
  app.get('/fresh', requireAuth({ checkSession: true }), reply);
  app.get('/public', (req, res) => {
    res.json({ auth: req.auth ?? null });
  });
  const server = app.listen(0, '127.0.0.1');
  await new Promise<void>((resolve) => server.once('listening', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    handled: () => handled,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
};

middlewareSuite('Express', startExpress);

describe('Express adapter: misuse fails at definition time', () => {
  const options = { issuer: 'https://auth.example.com', audience: 'https://api.example.com' };
  it('batonAuth builds its own verifier from verifier options', () => {
    expect(typeof batonAuth(options).verifier.verify).toBe('function');
  });
  it.each<[string, unknown]>([
    ['no options', undefined],
    ['empty options', {}],
    ['a verifier and verifier options', { verifier: createVerifier(options), issuer: options.issuer }],
    ['a verifier that is not one', { verifier: {} }],
    ['a realm with a quote', { ...options, realm: 'a"b' }],
  ])('batonAuth with %s → TypeError', (_name, opts) => {
    expect(() => batonAuth(opts as Parameters<typeof batonAuth>[0])).toThrow(TypeError);
  });
  it.each<[string, unknown]>([
    ['scopes as a string', { scopes: 'admin' }],
    ['a scope with a space', { scopes: ['read write'] }],
    ['an unknown key', { scope: ['admin'] }],
    ['checkSession not boolean', { checkSession: 1 }],
  ])('requireAuth with %s → TypeError', (_name, opts) => {
    const { requireAuth } = batonAuth(options);
    expect(() => requireAuth(opts as Parameters<typeof requireAuth>[0])).toThrow(TypeError);
  });
});

describe('entry points', () => {
  it.each(['express.ts', 'fastify.ts', 'index.ts', 'verifier.ts', 'bearer.ts'])(
    '%s imports express and fastify for types only (nothing loads them at run time)',
    (file) => {
      const source = readFileSync(new URL(`./${file}`, import.meta.url), 'utf8');
      const imports = source.match(/^import[^;]*from '(express|fastify)';$/gm) ?? [];
      for (const line of imports) expect(line).toMatch(/^import type /);
    },
  );
});
