import { afterEach, describe, expect, it, vi } from 'vitest';
import type { AuthClient, AuthClientEvents } from './auth-client.js';
import { createAuthClient } from './auth-client.js';
import { memoryKeyStore } from './dpop-keys.js';
import { thumbprint } from './dpop-proof.js';
import { memoryStorage } from './storage.js';
import type { FakeBaton } from './test-support/fake-baton.js';
import { clientFor, credentials, disposeAll, fakeServer, recordEvents } from './test-support/harness.js';

// DPoP (RFC 9449) against the fake server, which verifies every proof with
// WebCrypto, hands out nonces and binds sessions as docs/dpop.md says.

afterEach(() => {
  disposeAll();
  vi.unstubAllGlobals();
});

const minutes = (n: number) => n * 60_000;

/** A client with DPoP on (the library's default; the harness turns it off for the timing suites). */
function boundClient(server: FakeBaton, options: Parameters<typeof clientFor>[1] = {}): AuthClient {
  return clientFor(server, { dpop: true, ...options });
}

function dpopEvents(client: AuthClient): AuthClientEvents['dpopUnavailable'][] {
  const log: AuthClientEvents['dpopUnavailable'][] = [];
  client.on('dpopUnavailable', (payload) => log.push(payload));
  return log;
}

describe('DPoP proofs', () => {
  it('binds the session at login and signs every login and refresh with one key, as RFC 9449 says', async () => {
    const server = fakeServer({ accessTtlSeconds: 300 });
    const client = boundClient(server);
    const { sessionId } = await client.login(credentials);
    expect(server.isBound(sessionId!)).toBe(true);
    expect(client.dpop).toEqual({ bound: true });

    server.clock.advance(minutes(4.75)); // due (a 5-minute token), its nonce still valid
    expect((await client.fetch('/auth/me')).status).toBe(200);
    expect(server.refreshes.rotated).toBe(1);

    const proofs = server.proofs;
    expect(proofs.map((p) => [p.path, p.outcome])).toEqual([
      ['/auth/login', 'accepted'],
      ['/auth/refresh', 'accepted'],
    ]);
    for (const proof of proofs) {
      expect(proof.header).toEqual({ typ: 'dpop+jwt', alg: 'ES256', jwk: expect.any(Object) });
      // The public key only: no `d`, nothing beyond what an EC public JWK has.
      expect(Object.keys(proof.header['jwk'] as object).sort()).toEqual(['crv', 'kty', 'x', 'y']);
      expect(proof.payload['htm']).toBe('POST');
      expect(proof.payload['htu']).toBe(`${server.origin}${proof.path}`);
      expect(proof.payload['ath']).toBeUndefined();
      // ≥ 96 random bits: 16 bytes are 22 base64url characters.
      expect(proof.payload['jti']).toMatch(/^[A-Za-z0-9_-]{22,}$/);
    }
    expect(proofs[0]!.header['jwk']).toEqual(proofs[1]!.header['jwk']);
    expect(new Set(proofs.map((p) => p.payload['jti'])).size).toBe(2);
    // iat on the client's clock (here the server's), in seconds.
    expect(proofs[1]!.payload['iat']).toBe(Math.floor(server.clock.ms / 1000));
    // The first proof could not know a nonce; the refresh carries the one the login's answer sent.
    expect(proofs[0]!.payload['nonce']).toBeUndefined();
    expect(proofs[1]!.payload['nonce']).toMatch(/^nonce_/);
    // The access token is still sent as a Bearer token, with no proof.
    const me = server.requests.filter((r) => r.path === '/auth/me');
    expect(me.every((r) => r.authorization?.startsWith('Bearer ') && r.dpop === null)).toBe(true);
  });

  it('answers use_dpop_nonce with one new proof carrying that nonce, unseen by the caller', async () => {
    const server = fakeServer();
    server.requireNonce = true;
    const client = boundClient(server);
    const events = recordEvents(client);
    await client.login(credentials);
    expect(server.proofs.map((p) => p.outcome)).toEqual(['use_dpop_nonce', 'accepted']);
    const [first, retry] = server.proofs;
    expect(retry!.payload['jti']).not.toBe(first!.payload['jti']);
    expect(first!.payload['nonce']).toBeUndefined();
    expect(retry!.payload['nonce']).toMatch(/^nonce_/);

    // The nonce we hold expired: the refresh is retried once, transparently.
    server.expireNonces();
    server.clock.advance(minutes(20));
    expect((await client.fetch('/auth/me')).status).toBe(200);
    expect(server.proofs.slice(2).map((p) => [p.path, p.outcome])).toEqual([
      ['/auth/refresh', 'use_dpop_nonce'],
      ['/auth/refresh', 'accepted'],
    ]);
    expect(events.map((e) => e.name)).toEqual(['sessionChanged', 'tokenRefreshed']);
  });

  it('retries a use_dpop_nonce once only: a second one is a failure that keeps the session', async () => {
    const server = fakeServer();
    const client = boundClient(server, { refreshRetryBudgetMs: 0 });
    const events = recordEvents(client);
    await client.login(credentials);
    server.clock.advance(minutes(20));
    const again = { kind: 'status', status: 400, body: { error: 'use_dpop_nonce' } } as const;
    server.failNext('/auth/refresh', again);
    server.failNext('/auth/refresh', again);
    server.failNext('/auth/refresh', again);
    await expect(client.fetch('/auth/me')).rejects.toMatchObject({
      code: 'use_dpop_nonce',
      retryable: false,
    });
    expect(server.refreshCount).toBe(2);
    expect(events.map((e) => e.name)).toEqual(['sessionChanged', 'refreshFailed']);
    expect(client.getSession()).not.toBeNull();
  });

  for (const skew of [minutes(10), -minutes(10)]) {
    it(`works with a client clock ${skew / 60_000} min off: the nonce makes its proofs fresh`, async () => {
      const server = fakeServer();
      const client = boundClient(server, { skewMs: skew });
      const events = recordEvents(client);
      const { sessionId } = await client.login(credentials);
      // The iat of the first proof is outside the window; the nonce retry gets in.
      expect(server.proofs.map((p) => p.outcome)).toEqual(['use_dpop_nonce', 'accepted']);
      expect(server.isBound(sessionId!)).toBe(true);
      server.clock.advance(minutes(20));
      expect((await client.fetch('/auth/me')).status).toBe(200);
      expect(server.refreshes.rotated).toBe(1);
      expect(events.map((e) => e.name)).toEqual(['sessionChanged', 'tokenRefreshed']);
    });
  }
});

describe('what binding changes', () => {
  it('a lost answer recovered long after the grace window keeps the user signed in (bound)', async () => {
    for (const dpop of [true, false]) {
      // A two-minute token: expired after three, while the login's nonce is still good.
      const server = fakeServer({ accessTtlSeconds: 120 });
      const client = clientFor(server, { dpop, refreshTimeoutMs: 50, refreshRetryBudgetMs: 0 });
      const events = recordEvents(client);
      const { sessionId } = await client.login(credentials);
      server.clock.advance(minutes(3));
      server.failNext('/auth/refresh', { kind: 'lost' });
      await expect(client.fetch('/auth/me')).rejects.toMatchObject({ code: 'timeout' });
      expect(server.refreshes.rotated).toBe(1); // the server did rotate; its answer is what got lost
      server.clock.advance(minutes(1)); // six times the grace window
      const result = await client.fetch('/auth/me').then(
        (r) => r.status,
        (e: { code: string }) => e.code,
      );
      if (dpop) {
        expect(result).toBe(200);
        expect(server.refreshes).toMatchObject({ rotated: 1, grace_replay: 1, reuse_detected: 0 });
        expect(client.getSession()?.sessionId).toBe(sessionId);
        expect(events.map((e) => e.name)).not.toContain('signedOut');
        // The retry presented the same token with a new proof.
        const jtis = server.proofs.filter((p) => p.path === '/auth/refresh').map((p) => p.payload['jti']);
        expect(new Set(jtis).size).toBe(jtis.length);
      } else {
        // The control: unbound, the same retry is reuse and ends the session.
        expect(result).toBe('signed_out');
        expect(server.refreshes.reuse_detected).toBe(1);
        expect(events.map((e) => e.name)).toContain('signedOut');
      }
      server.releaseHangs();
    }
  });

  it('invalid_dpop_proof keeps the session: reported through refreshFailed, no sign-out', async () => {
    const server = fakeServer();
    const client = boundClient(server, { refreshRetryBudgetMs: 0 });
    const events = recordEvents(client);
    await client.login(credentials);
    server.clock.advance(minutes(20));
    server.failNext('/auth/refresh', {
      kind: 'status',
      status: 400,
      body: { error: 'invalid_dpop_proof', error_description: 'replayed' },
    });
    await expect(client.fetch('/auth/me')).rejects.toMatchObject({
      code: 'invalid_dpop_proof',
      retryable: false,
    });
    expect(events.map((e) => e.name)).toEqual(['sessionChanged', 'refreshFailed']);
    expect(events[1]!.payload).toMatchObject({ retryable: false });
    expect(client.getSession()).not.toBeNull();
    server.clock.advance(minutes(2)); // past the backoff
    expect((await client.fetch('/auth/me')).status).toBe(200);
    expect(server.activeSessions()).toHaveLength(1);
  });

  it('a thief with the refresh token but not the key is refused, and the owner stays signed in', async () => {
    const server = fakeServer();
    const storage = { values: new Map<string, string>() };
    const client = boundClient(server, {
      storageKey: 'victim',
      storage: {
        get: (k) => storage.values.get(k) ?? null,
        set: (k, v) => {
          storage.values.set(k, v);
        },
        keys: memoryKeyStore(),
      },
    });
    await client.login(credentials);
    const stolen = JSON.parse(storage.values.get('victim')!) as { refreshToken: string };
    const thief = await server.fetch(`${server.origin}/auth/refresh`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ refresh_token: stolen.refreshToken }),
    });
    expect(thief.status).toBe(401);
    expect(await thief.json()).toMatchObject({ error: 'invalid_grant' });
    expect(server.keyRefusals).toEqual(['dpop_proof_missing']);
    server.clock.advance(minutes(20));
    expect((await client.fetch('/auth/me')).status).toBe(200);
    expect(server.refreshes.reuse_detected).toBe(0);
  });
});

describe('signing out a bound session', () => {
  it('logout signs its request with the session’s key, and the server ends the session', async () => {
    const server = fakeServer();
    const client = boundClient(server);
    const { sessionId } = await client.login(credentials);
    expect(await client.logout()).toEqual({ revoked: true });
    expect(server.activeSessions()).not.toContain(sessionId);
    expect(server.keyRefusals).toEqual([]);
    const [login, logout] = server.proofs;
    expect(logout).toMatchObject({ path: '/auth/logout', outcome: 'accepted' });
    expect(logout!.payload['htu']).toBe(`${server.origin}/auth/logout`);
    expect(logout!.header['jwk']).toEqual(login!.header['jwk']);
    expect(logout!.payload['jti']).not.toBe(login!.payload['jti']);
  });

  it('a stale nonce at logout costs one transparent retry, and the session still ends', async () => {
    const server = fakeServer();
    const client = boundClient(server);
    const { sessionId } = await client.login(credentials);
    server.expireNonces(); // the nonce the login's answer carried is no longer honoured
    expect(await client.logout()).toEqual({ revoked: true });
    const logouts = server.proofs.filter((p) => p.path === '/auth/logout');
    expect(logouts.map((p) => p.outcome)).toEqual(['use_dpop_nonce', 'accepted']);
    expect(logouts[1]!.payload['nonce']).toMatch(/^nonce_/);
    expect(server.activeSessions()).not.toContain(sessionId);
  });
});

describe('falling back to unbound sessions', () => {
  it('without WebCrypto: an unbound login, and the property and the event say why', async () => {
    const real = globalThis.crypto;
    vi.stubGlobal('crypto', { getRandomValues: real.getRandomValues.bind(real) });
    const server = fakeServer();
    const client = boundClient(server);
    const events = dpopEvents(client);
    expect(client.dpop).toEqual({ bound: false, reason: 'no_webcrypto' });
    const { sessionId } = await client.login(credentials);
    expect(events).toEqual([{ reason: 'no_webcrypto', message: expect.any(String) }]);
    expect(client.dpop).toEqual({ bound: false, reason: 'no_webcrypto' });
    expect(server.isBound(sessionId!)).toBe(false);
    expect(server.requests.every((r) => r.dpop === null)).toBe(true);
    server.clock.advance(minutes(20));
    expect((await client.fetch('/auth/me')).status).toBe(200);
  });

  it('with a storage that cannot keep a key and no IndexedDB: unbound, and says so', async () => {
    const server = fakeServer();
    const values = new Map<string, string>();
    const client = boundClient(server, {
      storage: {
        get: (k) => values.get(k) ?? null,
        set: (k, v) => {
          values.set(k, v);
        },
      },
    });
    const events = dpopEvents(client);
    const { sessionId } = await client.login(credentials);
    expect(events.map((e) => e.reason)).toEqual(['no_key_store']);
    expect(client.dpop).toEqual({ bound: false, reason: 'no_key_store' });
    expect(server.isBound(sessionId!)).toBe(false);
  });

  it('dpop: false is unbound without an event; a wrong type is a TypeError', async () => {
    const server = fakeServer();
    const client = clientFor(server, { dpop: false });
    const events = dpopEvents(client);
    const { sessionId } = await client.login(credentials);
    expect(events).toEqual([]);
    expect(client.dpop).toEqual({ bound: false, reason: 'disabled' });
    expect(server.isBound(sessionId!)).toBe(false);
    expect(() =>
      createAuthClient({ baseUrl: server.origin, mode: 'token', dpop: 'yes' as unknown as boolean }),
    ).toThrow(TypeError);
    expect(() =>
      createAuthClient({
        baseUrl: server.origin,
        mode: 'token',
        storage: { get: () => null, set: () => {}, keys: {} as never },
      }),
    ).toThrow(TypeError);
  });
});

describe('the key lives with the session', () => {
  it('is kept by the storage, shared by clients on it, and deleted at sign-out; a new login makes a new one', async () => {
    const server = fakeServer();
    const storage = memoryStorage();
    const first = boundClient(server, { storage, storageKey: 'k' });
    await first.login(credentials);
    const pair = await storage.keys!.get('k');
    expect(pair?.privateKey.extractable).toBe(false);
    const loginJwk = server.proofs[0]!.header['jwk'] as { crv: string; kty: string; x: string; y: string };

    // Another client on the same storage (a later run) signs with the same key.
    first.dispose();
    const second = boundClient(server, { storage, storageKey: 'k' });
    server.clock.advance(minutes(20));
    expect((await second.fetch('/auth/me')).status).toBe(200);
    const refreshJwk = server.proofs.at(-1)!.header['jwk'] as typeof loginJwk;
    expect(await thumbprint(refreshJwk)).toBe(await thumbprint(loginJwk));

    await second.logout();
    expect(await storage.keys!.get('k')).toBeNull();
    await second.login(credentials);
    const newJwk = server.proofs.at(-1)!.header['jwk'] as typeof loginJwk;
    expect(await thumbprint(newJwk)).not.toBe(await thumbprint(loginJwk));
  });
});
