import { afterEach, describe, expect, it } from 'vitest';
import type { AuthClient, AuthClientEvents } from './auth-client.js';
import { memoryStorage, type TokenStorage } from './storage.js';
import type { FakeBaton } from './test-support/fake-baton.js';
import {
  clientFor,
  credentials,
  disposeAll,
  fakeServer,
  recordEvents,
  until,
} from './test-support/harness.js';

// DPoP across tabs and in cookie mode. Clients on one storage key stand for
// tabs: they share Node's real BroadcastChannel and the in-realm refresh, as
// tabs share a channel and Web Locks; the key store stands for IndexedDB.

afterEach(disposeAll);

const minutes = (n: number) => n * 60_000;

/**
 * Two-minute access tokens: expired after three minutes, while the nonce of
 * the login's answer (good for five) still is, so refresh counts are not
 * blurred by nonce retries (those are tested in auth-client.dpop.test.ts).
 */
const shortLived = () => fakeServer({ accessTtlSeconds: 120 });

function tab(
  server: FakeBaton,
  storage: TokenStorage,
  extra: Parameters<typeof clientFor>[1] = {},
): AuthClient {
  return clientFor(server, { dpop: true, storage, storageKey: 'tabs', ...extra });
}

/** The same stored session, without access to the key store (IndexedDB blocked in that tab). */
function withoutKeys(storage: TokenStorage): TokenStorage {
  return { get: (k) => storage.get(k), set: (k, v) => storage.set(k, v) };
}

describe('DPoP across tabs', () => {
  it('tabs share the key and one refresh: 100 concurrent fetches over two tabs, one bound refresh', async () => {
    const server = shortLived();
    const storage = memoryStorage();
    const tab1 = tab(server, storage);
    const tab2 = tab(server, storage);
    const { sessionId } = await tab1.login(credentials);
    await until(() => tab2.getSession() !== null, 'tab2 signed in');
    expect(tab2.dpop).toMatchObject({ bound: true });
    server.clock.advance(minutes(3));
    const statuses = await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        (i % 2 === 0 ? tab1 : tab2).fetch('/auth/me').then((r) => r.status),
      ),
    );
    expect(statuses).toEqual(Array(100).fill(200));
    expect(server.refreshCount).toBe(1);
    expect(server.refreshes).toMatchObject({ rotated: 1, reuse_detected: 0, invalid: 0 });
    expect(server.isBound(sessionId!)).toBe(true);
  });

  it('a tab without the key never refreshes a bound session: it reports dpop_unavailable, keeps the session, and adopts the other tab’s refresh', async () => {
    const server = shortLived();
    const storage = memoryStorage();
    const keyed = tab(server, storage);
    const keyless = tab(server, withoutKeys(storage));
    const keylessEvents = recordEvents(keyless);
    const unavailable: AuthClientEvents['dpopUnavailable'][] = [];
    keyless.on('dpopUnavailable', (e) => unavailable.push(e));
    await keyed.login(credentials);
    await until(() => keyless.getSession() !== null, 'keyless tab signed in');

    server.clock.advance(minutes(3));
    // Refreshing without the key would be answered invalid_grant, and that would sign out every tab.
    await expect(keyless.fetch('/auth/me')).rejects.toMatchObject({
      code: 'dpop_unavailable',
      retryable: false,
    });
    expect(server.refreshCount).toBe(0);
    expect(unavailable.map((e) => e.reason)).toEqual(['key_missing']);
    expect(keyless.dpop).toEqual({ bound: true, reason: 'no_key_store' });
    expect(keylessEvents.map((e) => e.name)).not.toContain('signedOut');
    expect(keyless.getSession()).not.toBeNull();

    // The tab with the key refreshes; the keyless one adopts the result without a request of its own.
    expect((await keyed.fetch('/auth/me')).status).toBe(200);
    await until(
      () => keylessEvents.some((e) => e.name === 'tokenRefreshed'),
      'keyless tab hears the refresh',
    );
    server.clock.advance(minutes(1)); // past the backoff its failure set
    expect((await keyless.fetch('/auth/me')).status).toBe(200);
    expect(server.refreshCount).toBe(1);
    expect(server.keyRefusals).toEqual([]);
  });

  it('a tab without the key signs out locally and sends no unsigned logout (it would be refused); the server session lives on', async () => {
    const server = shortLived();
    const storage = memoryStorage();
    const keyed = tab(server, storage);
    const keyless = tab(server, withoutKeys(storage));
    const { sessionId } = await keyed.login(credentials);
    await until(() => keyless.getSession() !== null, 'keyless tab signed in');
    expect(await keyless.logout()).toEqual({ revoked: false });
    expect(keyless.getSession()).toBeNull();
    await until(() => keyed.getSession() === null, 'the tab with the key signed out too');
    expect(server.requests.filter((r) => r.path === '/auth/logout')).toEqual([]);
    expect(server.keyRefusals).toEqual([]);
    expect(server.activeSessions()).toEqual([sessionId]);
  });

  it('clients without a storage (the default) share the key within the realm, as they share the session', async () => {
    const server = shortLived();
    const first = clientFor(server, { dpop: true });
    const second = clientFor(server, { dpop: true });
    await first.login(credentials);
    await until(() => second.getSession() !== null, 'second client signed in');
    server.clock.advance(minutes(3));
    expect((await second.fetch('/auth/me')).status).toBe(200);
    expect(server.refreshes).toMatchObject({ rotated: 1, invalid: 0 });
    expect(second.dpop).toEqual({ bound: true });
  });

  it('a tab with dpop: false does not refresh a bound session either', async () => {
    const server = shortLived();
    const storage = memoryStorage();
    const keyed = tab(server, storage);
    const off = tab(server, storage, { dpop: false });
    await keyed.login(credentials);
    await until(() => off.getSession() !== null, 'second tab signed in');
    server.clock.advance(minutes(3));
    await expect(off.fetch('/auth/me')).rejects.toMatchObject({ code: 'dpop_unavailable' });
    expect(server.refreshCount).toBe(0);
    expect(off.getSession()).not.toBeNull();
  });
});

describe('DPoP in cookie mode', () => {
  it('binds the cookie-held session: the proof goes in the header beside the cookie', async () => {
    const server = fakeServer();
    const client = clientFor(server, { dpop: true, mode: 'cookie' });
    const { sessionId } = await client.login(credentials);
    expect(server.isBound(sessionId!)).toBe(true);
    server.clock.advance(minutes(20));
    expect((await client.fetch('/auth/me')).status).toBe(200);
    const refresh = server.requests.find((r) => r.path === '/auth/refresh')!;
    expect(refresh.dpop).not.toBeNull();
    expect(refresh.csrf).toBe('1');
    expect(server.refreshes.rotated).toBe(1);
  });

  it('logout signs its request beside the cookie, and the server ends the session and clears the cookie', async () => {
    const server = fakeServer();
    const client = clientFor(server, { dpop: true, mode: 'cookie' });
    const { sessionId } = await client.login(credentials);
    expect(await client.logout()).toEqual({ revoked: true });
    const logout = server.requests.find((r) => r.path === '/auth/logout')!;
    expect(logout.dpop).not.toBeNull();
    expect(logout.csrf).toBe('1');
    expect(server.proofs.at(-1)).toMatchObject({ path: '/auth/logout', outcome: 'accepted' });
    expect(server.activeSessions()).not.toContain(sessionId);
    expect(server.cookie).toBeNull();
    expect(server.keyRefusals).toEqual([]);
  });

  it('a new tab that knows nothing yet probes the cookie with the stored key', async () => {
    const server = fakeServer();
    const storage = memoryStorage();
    const first = clientFor(server, { dpop: true, mode: 'cookie', storage, storageKey: 'c1' });
    const { sessionId } = await first.login(credentials);
    first.dispose();
    // Same key store (IndexedDB), but nothing stored and no peer to ask (a fresh page).
    const fresh = clientFor(server, {
      dpop: true,
      mode: 'cookie',
      storageKey: 'c1',
      storage: { get: () => null, set: () => {}, keys: storage.keys! },
    });
    expect(await fresh.getAccessToken()).not.toBeNull();
    expect(fresh.getSession()?.sessionId).toBe(sessionId);
    expect(fresh.dpop).toEqual({ bound: true });
    expect(server.keyRefusals).toEqual([]);
  });
});
