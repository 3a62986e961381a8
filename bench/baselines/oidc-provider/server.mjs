#!/usr/bin/env node
// node-oidc-provider 9 as a peer: rotating refresh tokens (rotateRefreshToken: true), ES256
// JWT access tokens for one resource server (resource indicators, RFC 8707, is how v9 issues
// JWT access tokens), its own in-memory adapter, and a public client `app`
// (token_endpoint_auth_method none).
//
// The in-memory adapter is the provider's default one, but given a store large enough to keep
// everything: the default store is an LRU of 1,000 entries, which under a few thousand
// rotations per second evicts the grants and tokens of idle virtual clients (their next
// refresh is then invalid_grant), which would measure the cap rather than the provider.
//
//   PORT=... SESSIONS=256 node bench/baselines/oidc-provider/server.mjs
//
// Getting refresh tokens the standard way needs an authorization-code flow with a login and
// consent UI. Instead, at start it mints one Grant + RefreshToken per virtual client with the
// provider's own models (what the code flow would have stored) and prints them as one JSON
// line; the benchmark then drives only the refresh_token grant over HTTP.
import { generateKeyPairSync } from 'node:crypto';
import Provider from 'oidc-provider';
import MemoryAdapter from 'oidc-provider/lib/adapters/memory_adapter.js';
import LRU from 'oidc-provider/lib/helpers/lru.js';

const PORT = Number(process.env.PORT ?? 0);
const SESSIONS = Math.min(10_000, Math.max(1, Number(process.env.SESSIONS ?? 1)));
const ISSUER = `http://127.0.0.1:${PORT}`;
const RESOURCE = 'https://api.bench.invalid';

const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'bench-es256', alg: 'ES256', use: 'sig' };

const storage = new LRU({ maxSize: 50_000_000 });
const provider = new Provider(ISSUER, {
  adapter: (model) => new MemoryAdapter(model, storage),
  clients: [
    {
      client_id: 'app',
      token_endpoint_auth_method: 'none',
      id_token_signed_response_alg: 'ES256',
      grant_types: ['authorization_code', 'refresh_token'],
      redirect_uris: ['http://127.0.0.1/cb'],
      response_types: ['code'],
    },
  ],
  jwks: { keys: [jwk] },
  rotateRefreshToken: true,
  ttl: { Grant: 30 * 86_400, RefreshToken: 14 * 86_400, AccessToken: 900 },
  scopes: ['openid', 'offline_access', 'api'],
  findAccount: (_ctx, sub) => ({ accountId: sub, claims: () => ({ sub }) }),
  features: {
    devInteractions: { enabled: false },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => RESOURCE,
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        scope: 'api',
        audience: RESOURCE,
        accessTokenTTL: 900,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: 'ES256' } },
      }),
    },
  },
  cookies: { keys: ['bench-only-cookie-key-not-a-secret'] },
});
provider.proxy = false;

const client = await provider.Client.find('app');
const tokens = [];
for (let i = 0; i < SESSIONS; i++) {
  const accountId = `user-${i}`;
  const grant = new provider.Grant({ accountId, clientId: 'app' });
  grant.addResourceScope(RESOURCE, 'api');
  grant.addOIDCScope('offline_access');
  const grantId = await grant.save();
  const rt = new provider.RefreshToken({
    accountId,
    client,
    grantId,
    gty: 'authorization_code',
    scope: 'api offline_access',
    resource: RESOURCE,
    authTime: Math.floor(Date.now() / 1000),
  });
  tokens.push(await rt.save());
}

const server = provider.listen(PORT, '127.0.0.1', () => {
  console.log(`tokens ${JSON.stringify(tokens)}`);
  console.log(`listening ${server.address().port}`);
});
server.keepAliveTimeout = 60_000;
const shutdown = () => server.close(() => process.exit(0));
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
