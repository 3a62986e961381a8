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

  it('a tab without the key never refreshes a bound session: alone, it reports dpop_unavailable, keeps the session, and adopts the refresh of a tab with the key opened later', async () => {
    const server = shortLived();
    const storage = memoryStorage();
    const keyed = tab(server, storage);
    // Short, so that the wait for a peer that is not there does not slow the suite.
    const keyless = tab(server, withoutKeys(storage), { peerRefreshTimeoutMs: 200 });
    const keylessEvents = recordEvents(keyless);
    const unavailable: AuthClientEvents['dpopUnavailable'][] = [];
    keyless.on('dpopUnavailable', (e) => unavailable.push(e));
    await keyed.login(credentials);
    await until(() => keyless.getSession() !== null, 'keyless tab signed in');
    // The tab with the key is closed: nobody can refresh, and nobody answers the keyless tab's request.
    keyed.dispose();

    server.clock.advance(minutes(3));
    // Refreshing without the key would be answered invalid_grant, and that would sign out every tab.
    await expect(keyless.fetch('/auth/me')).rejects.toMatchObject({
      code: 'dpop_unavailable',
      retryable: false,
    });
    expect(server.refreshCount).toBe(0);
    expect(server.requests.filter((r) => r.path === '/auth/refresh')).toEqual([]);
    expect(unavailable.map((e) => e.reason)).toEqual(['key_missing']);
    expect(keyless.dpop).toEqual({ bound: true, reason: 'no_key_store' });
    expect(keylessEvents.map((e) => e.name)).not.toContain('signedOut');
    expect(keyless.getSession()).not.toBeNull();

    // A tab with the key opens and refreshes; the keyless one adopts the result without a request of its own.
    const reopened = tab(server, storage);
    await until(() => reopened.getSession() !== null, 'reopened tab signed in');
    expect((await reopened.fetch('/auth/me')).status).toBe(200);
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

  it('a keyless tab asks the tab with the key to refresh and gets the new session within the same call', async () => {
    const server = shortLived();
    const storage = memoryStorage();
    const keyed = tab(server, storage);
    // Long: the call must end because the answer came, not because the wait ran out.
    const keyless = tab(server, withoutKeys(storage), { peerRefreshTimeoutMs: 60_000 });
    const keylessEvents = recordEvents(keyless);
    await keyed.login(credentials);
    await until(() => keyless.getSession() !== null, 'keyless tab signed in');

    server.clock.advance(minutes(3));
    expect((await keyless.fetch('/auth/me')).status).toBe(200);
    // One refresh, by the tab with the key (with its proof); the keyless tab sent none.
    expect(server.refreshCount).toBe(1);
    expect(server.refreshes).toMatchObject({ rotated: 1, reuse_detected: 0, invalid: 0 });
    expect(server.keyRefusals).toEqual([]);
    const refreshes = server.requests.filter((r) => r.path === '/auth/refresh');
    expect(refreshes.every((r) => r.dpop !== null)).toBe(true);
    expect(await keyless.getAccessToken()).toBe(await keyed.getAccessToken());
    // Nothing failed as far as the app can tell.
    const names = keylessEvents.map((e) => e.name);
    expect(names).toContain('tokenRefreshed');
    expect(names).not.toContain('refreshFailed');
    expect(names).not.toContain('signedOut');
    expect(server.refreshCount).toBe(1);
  });

  it('a keyless tab whose token is due but still works sends it at once, and adopts the refresh it asked for when it comes', async () => {
    const server = shortLived();
    const storage = memoryStorage();
    const keyed = tab(server, storage);
    const keyless = tab(server, withoutKeys(storage), { peerRefreshTimeoutMs: 60_000 });
    const keylessEvents = recordEvents(keyless);
    await keyed.login(credentials);
    await until(() => keyless.getSession() !== null, 'keyless tab signed in');
    const first = await keyless.getAccessToken();

    // Due (inside the 30 s margin of a 2 min token), not expired.
    server.clock.advance(100_000);
    expect((await keyless.fetch('/auth/me')).status).toBe(200);
    await until(
      () => keylessEvents.some((e) => e.name === 'tokenRefreshed'),
      'keyless tab adopts the refresh',
    );
    expect(await keyless.getAccessToken()).not.toBe(first);
    expect(server.refreshes).toMatchObject({ rotated: 1, invalid: 0 });
    expect(server.keyRefusals).toEqual([]);
    expect(keylessEvents.map((e) => e.name)).not.toContain('refreshFailed');
  });

  it('a keyless tab whose call comes while the tab with the key is refreshing waits for that refresh', async () => {
    const server = shortLived();
    const storage = memoryStorage();
    const keyed = tab(server, storage);
    const keyless = tab(server, withoutKeys(storage), { peerRefreshTimeoutMs: 60_000 });
    await keyed.login(credentials);
    await until(() => keyless.getSession() !== null, 'keyless tab signed in');

    server.clock.advance(minutes(3));
    // Either may start first; here the keyless one does. (In one realm the
    // two also share in-flight refreshes, as tabs never do: the keyed tab
    // must not take the keyless tab's failure for its own.)
    const statuses = await Promise.all([
      keyless.fetch('/auth/me').then((r) => r.status),
      keyed.fetch('/auth/me').then((r) => r.status),
      keyless.fetch('/auth/me').then((r) => r.status),
      keyed.fetch('/auth/me').then((r) => r.status),
    ]);
    expect(statuses).toEqual([200, 200, 200, 200]);
    expect(server.refreshCount).toBe(1);
    expect(server.refreshes).toMatchObject({ rotated: 1, invalid: 0 });
    expect(server.keyRefusals).toEqual([]);
  });

  it('a keyless tab follows when the refresh by the tab with the key finds the session revoked: signed out, not left waiting', async () => {
    const server = shortLived();
    const storage = memoryStorage();
    const keyed = tab(server, storage);
    const keyless = tab(server, withoutKeys(storage), { peerRefreshTimeoutMs: 60_000 });
    const keylessEvents = recordEvents(keyless);
    const { sessionId } = await keyed.login(credentials);
    await until(() => keyless.getSession() !== null, 'keyless tab signed in');
    server.revokeSession(sessionId!);

    server.clock.advance(minutes(3));
    await expect(keyless.fetch('/auth/me')).rejects.toMatchObject({ code: 'signed_out' });
    expect(keylessEvents.find((e) => e.name === 'signedOut')?.payload).toMatchObject({
      reason: 'invalid_grant',
    });
    expect(keyless.getSession()).toBeNull();
    expect(keyed.getSession()).toBeNull();
    // The one refused refresh carried the key's proof: it was the keyed tab's.
    expect(server.refreshes).toMatchObject({ rotated: 0, invalid: 1 });
    expect(server.keyRefusals).toEqual([]);
  });

  it('a keyless call waiting for a peer stops at its AbortSignal, and dispose() ends the wait', async () => {
    const server = shortLived();
    const storage = memoryStorage();
    const keyed = tab(server, storage);
    const keyless = tab(server, withoutKeys(storage), { peerRefreshTimeoutMs: 60_000 });
    const unavailable: AuthClientEvents['dpopUnavailable'][] = [];
    keyless.on('dpopUnavailable', (e) => unavailable.push(e));
    await keyed.login(credentials);
    await until(() => keyless.getSession() !== null, 'keyless tab signed in');
    keyed.dispose(); // nobody will answer

    server.clock.advance(minutes(3));
    const controller = new AbortController();
    const aborted = keyless.fetch('/auth/me', { signal: controller.signal });
    const settled: string[] = [];
    aborted.then(
      () => settled.push('resolved'),
      () => settled.push('rejected'),
    );
    await until(() => unavailable.length > 0, 'keyless tab found the key missing');
    // Still waiting for a peer (the wait lasts a minute): not failed at once.
    await new Promise((r) => setTimeout(r, 20));
    expect(settled).toEqual([]);
    const reason = new Error('the user navigated away');
    controller.abort(reason);
    await expect(aborted).rejects.toBe(reason);

    const pending = keyless.fetch('/auth/me');
    keyless.dispose();
    await expect(pending).rejects.toMatchObject({ code: 'disposed' });
    expect(server.refreshCount).toBe(0);
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

  it('a tab with dpop: false does not refresh a bound session either (no tab with the key open)', async () => {
    const server = shortLived();
    const storage = memoryStorage();
    const keyed = tab(server, storage);
    const off = tab(server, storage, { dpop: false, peerRefreshTimeoutMs: 200 });
    await keyed.login(credentials);
    await until(() => off.getSession() !== null, 'second tab signed in');
    keyed.dispose();
    server.clock.advance(minutes(3));
    await expect(off.fetch('/auth/me')).rejects.toMatchObject({ code: 'dpop_unavailable' });
    expect(server.refreshCount).toBe(0);
    expect(off.getSession()).not.toBeNull();
  });

  it('a tab with dpop: false gets the refresh of the tab with the key within the same call', async () => {
    const server = shortLived();
    const storage = memoryStorage();
    const keyed = tab(server, storage);
    const off = tab(server, storage, { dpop: false, peerRefreshTimeoutMs: 60_000 });
    await keyed.login(credentials);
    await until(() => off.getSession() !== null, 'second tab signed in');
    server.clock.advance(minutes(3));
    expect((await off.fetch('/auth/me')).status).toBe(200);
    expect(server.refreshes).toMatchObject({ rotated: 1, invalid: 0 });
    expect(server.keyRefusals).toEqual([]);
  });
});

describe('DPoP in cookie mode', () => {
  it('a page that signs out before it knows the session forgets the key it signed the logout with, so the next page does not present it', async () => {
    const server = fakeServer();
    const storage = memoryStorage();
    const first = clientFor(server, { dpop: true, mode: 'cookie', storage, storageKey: 'c1' });
    const { sessionId } = await first.login(credentials);
    const oldJwk = server.proofs.at(-1)!.header['jwk'];
    first.dispose();
    // A fresh page (nothing stored, no peer), same key store (IndexedDB): it signs out at once.
    const page = () => ({ get: () => null, set: () => {}, keys: storage.keys! });
    const fresh = clientFor(server, { dpop: true, mode: 'cookie', storageKey: 'c1', storage: page() });
    expect(await fresh.logout()).toEqual({ revoked: true });
    expect(server.activeSessions()).not.toContain(sessionId);
    // The key of a session that ended must not outlive it: kept, it links this browser's sessions.
    expect(await storage.keys!.get('c1')).toBeNull();
    fresh.dispose();
    const next = clientFor(server, { dpop: true, mode: 'cookie', storageKey: 'c1', storage: page() });
    expect(await next.getAccessToken()).toBeNull();
    const probes = server.proofs.filter((p) => p.path === '/auth/refresh');
    expect(probes.filter((p) => JSON.stringify(p.header['jwk']) === JSON.stringify(oldJwk))).toEqual([]);
  });

  it('a start-up probe refused with invalid_grant drops the stored key: its session is over', async () => {
    const server = fakeServer();
    const storage = memoryStorage();
    const first = clientFor(server, { dpop: true, mode: 'cookie', storage, storageKey: 'c2' });
    const { sessionId } = await first.login(credentials);
    first.dispose();
    // The session ends elsewhere (another device, the admin); the cookie stays in this browser.
    server.revokeSession(sessionId!);
    const page = () => ({ get: () => null, set: () => {}, keys: storage.keys! });
    const fresh = clientFor(server, { dpop: true, mode: 'cookie', storageKey: 'c2', storage: page() });
    expect(await fresh.getAccessToken()).toBeNull();
    expect(await storage.keys!.get('c2')).toBeNull();
  });

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
