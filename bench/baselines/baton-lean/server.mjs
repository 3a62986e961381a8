#!/usr/bin/env node
// A what-if, not a product: Baton's own token service and SQLite store (from the build, as
// `baton serve` opens them: migrated, checkpoint thread, group commit, ES256 keys in the
// store) behind bare node:http instead of the Fastify app. It answers one question: how much
// of a refresh's cost is Baton's HTTP layer (Fastify, its hooks, validation, serialising,
// metrics, the timed store) rather than the rotation itself. It skips everything that layer
// enforces (CORS and same-site checks, security headers, repeated-header refusal, rate
// limits, DPoP, cookie mode, metrics, logging), so it is an upper bound on what a leaner
// hot path could buy, not a server anyone should run.
//
//   PORT=... DB_PATH=... node bench/baselines/baton-lean/server.mjs
//
// Setup only: `POST /session` registers a user and logs it in (Argon2, as on Baton).
import { createServer } from 'node:http';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { readJson, send } from '../json-http.mjs';

const dist = process.env.BATON_DIST
  ? pathToFileURL(`${resolve(process.env.BATON_DIST)}/`)
  : new URL('../../../packages/server/dist/', import.meta.url);
const { createTokenService } = await import(new URL('core/token-service.js', dist).href);
const { openStore } = await import(new URL('store/open-store.js', dist).href);

const PORT = Number(process.env.PORT ?? 0);
const MAX_BODY = 4096;
const PASSWORD = 'bench-password-long-enough';

if (!process.env.DB_PATH) throw new Error('DB_PATH is required: the SQLite file to create');
const store = await openStore(`sqlite:${process.env.DB_PATH}`);
await store.migrate();
const service = createTokenService({ store, issuer: `http://127.0.0.1:${PORT}` });
await service.init();

async function handle(req, res) {
  if (req.method === 'GET' && req.url === '/healthz') return send(res, 200, { ok: true });
  if (req.method !== 'POST') return send(res, 404, { error: 'not_found' });
  const body = await readJson(req, MAX_BODY);
  if (req.url === '/session') {
    const sub = typeof body?.sub === 'string' && body.sub.length <= 64 ? body.sub : null;
    if (sub === null)
      return send(res, 400, { error: 'invalid_request', error_description: 'sub is required' });
    const email = `${sub}@example.com`;
    await service.register({ email, password: PASSWORD });
    const tokens = await service.login({ email, password: PASSWORD });
    return send(res, 200, { refresh_token: tokens.refreshToken });
  }
  if (req.url !== '/refresh') return send(res, 404, { error: 'not_found' });
  const token = body?.refresh_token;
  if (typeof token !== 'string' || token.length > 200)
    return send(res, 400, { error: 'invalid_request', error_description: 'refresh_token is required' });
  const tokens = await service.refresh({
    refreshToken: token,
    userAgent: req.headers['user-agent'] ?? null,
    ip: req.socket.remoteAddress,
  });
  return send(res, 200, {
    access_token: tokens.accessToken,
    token_type: tokens.tokenType,
    expires_in: tokens.expiresIn,
    refresh_token: tokens.refreshToken,
    session_id: tokens.sessionId,
  });
}

const server = createServer((req, res) => {
  handle(req, res).catch((err) => {
    const status = err?.code === 'invalid_grant' ? 400 : 500;
    if (!res.headersSent) send(res, status, { error: err?.code ?? 'server_error' });
  });
});
server.keepAliveTimeout = 60_000;
server.listen(PORT, '127.0.0.1', () => console.log(`listening ${server.address().port}`));
const shutdown = () => server.close(() => store.close().then(() => process.exit(0)));
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
