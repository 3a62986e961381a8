import { afterEach, describe, expect, it } from 'vitest';
import { memoryStorage } from './storage.js';
import {
  clientFor,
  credentials,
  disposeAll,
  fakeServer,
  recordEvents,
  until,
} from './test-support/harness.js';

// Several clients with the same baseUrl stand for several tabs: they talk over
// Node's real BroadcastChannel, exactly as tabs do in a browser.
afterEach(disposeAll);

const minutes = (n: number) => n * 60_000;

describe('several tabs share one session', () => {
  it('a tab opened later starts signed in from its peers, without a login or a refresh', async () => {
    const server = fakeServer();
    const tab1 = clientFor(server);
    await tab1.login(credentials);
    const tab2 = clientFor(server);
    expect(await tab2.getAccessToken()).toBe(await tab1.getAccessToken());
    expect((await tab2.fetch('/auth/me')).status).toBe(200);
    expect(server.requests.filter((r) => r.path.startsWith('/auth/') && r.path !== '/auth/me')).toHaveLength(
      1,
    );
  });

  it('a login in one tab signs the others in', async () => {
    const server = fakeServer();
    const tab1 = clientFor(server);
    const tab2 = clientFor(server);
    expect(await tab2.getAccessToken()).toBeNull();
    const events = recordEvents(tab2);
    const { sessionId } = await tab1.login(credentials);
    await until(() => tab2.getSession() !== null, 'tab2 signed in');
    expect(events).toEqual([
      { name: 'sessionChanged', payload: { signedIn: true, sessionId, source: 'remote' } },
    ]);
  });

  it('a refresh in one tab is adopted by the others', async () => {
    const server = fakeServer();
    const tab1 = clientFor(server);
    await tab1.login(credentials);
    const tab2 = clientFor(server);
    await tab2.getAccessToken();
    const events = recordEvents(tab2);

    server.clock.advance(minutes(20));
    expect((await tab1.fetch('/auth/me')).status).toBe(200);
    await until(() => events.length > 0, 'tab2 hears of the refresh');
    expect(events[0]).toMatchObject({ name: 'tokenRefreshed', payload: { source: 'remote' } });
    expect((await tab2.fetch('/auth/me')).status).toBe(200);
    expect(server.refreshCount).toBe(1);
  });

  it('signing out in one tab signs out all, and ends the session on the server', async () => {
    const server = fakeServer();
    const tab1 = clientFor(server);
    await tab1.login(credentials);
    const others = [clientFor(server), clientFor(server)];
    for (const tab of others) await tab.getAccessToken();
    const logs = others.map(recordEvents);

    expect(await tab1.logout()).toEqual({ revoked: true });
    await until(() => others.every((tab) => tab.getSession() === null), 'every tab signed out');
    for (const log of logs) {
      expect(log).toEqual([
        { name: 'signedOut', payload: { reason: 'logout', source: 'remote' } },
        { name: 'sessionChanged', payload: { signedIn: false, sessionId: undefined, source: 'remote' } },
      ]);
    }
    await expect(others[0]!.fetch('/auth/me')).rejects.toMatchObject({
      code: 'signed_out',
      reason: 'logout',
    });
    expect(server.activeSessions()).toEqual([]);
  });

  it('logoutAll ends every session of the user and tells every tab', async () => {
    const server = fakeServer();
    const phone = clientFor(server, { storageKey: 'phone' }); // another device: different key, no shared tabs
    await phone.login(credentials);
    const tab1 = clientFor(server);
    await tab1.login(credentials);
    const tab2 = clientFor(server);
    await tab2.getAccessToken();
    const log = recordEvents(tab2);

    await tab1.logoutAll();
    expect(server.activeSessions()).toEqual([]);
    await until(() => tab2.getSession() === null, 'tab2 signed out');
    expect(log[0]).toEqual({ name: 'signedOut', payload: { reason: 'logout_all', source: 'remote' } });
    // The other device learns at its next refresh.
    server.clock.advance(minutes(20));
    await expect(phone.fetch('/auth/me')).rejects.toMatchObject({
      code: 'signed_out',
      reason: 'invalid_grant',
    });
  });

  it('logout still signs out locally when the server cannot be reached', async () => {
    const server = fakeServer();
    const client = clientFor(server);
    await client.login(credentials);
    server.failNext('/auth/logout', { kind: 'network' });
    expect(await client.logout()).toEqual({ revoked: false });
    expect(client.getSession()).toBeNull();
  });

  it('a stale message cannot undo a sign-out', async () => {
    const server = fakeServer();
    const storage = memoryStorage();
    const tab1 = clientFor(server, { storage, storageKey: 'k' });
    await tab1.login(credentials);
    const before = await storage.get('k');
    await tab1.logout();
    // A tab that slept replays the old state (as a peer reply or a storage event would).
    await storage.set('k', String(before));
    const tab2 = clientFor(server, { storage, storageKey: 'k' });
    // tab2 reads the old state but hears tab1's newer tombstone from its peers.
    await until(() => tab2.getSession() === null && tab1.getSession() === null, 'both signed out');
    expect(await tab1.getAccessToken()).toBeNull();
  });
});

describe('cookie mode', () => {
  it('never lets the refresh token reach JavaScript or storage, and sends the CSRF proof', async () => {
    const server = fakeServer();
    const storage = memoryStorage();
    const client = clientFor(server, { mode: 'cookie', storage, storageKey: 'k' });
    await client.login(credentials);
    server.clock.advance(minutes(20));
    expect((await client.fetch('/auth/me')).status).toBe(200);

    expect(server.cookie).toMatch(/^brt_/); // the "browser" holds it…
    expect(String(await storage.get('k'))).not.toContain('brt_'); // …the page never does
    const auth = server.requests.filter((r) => r.path === '/auth/login' || r.path === '/auth/refresh');
    expect(auth.map((r) => [r.path, r.csrf, r.credentials])).toEqual([
      ['/auth/login', '1', 'include'],
      ['/auth/refresh', '1', 'include'],
    ]);
  });

  it('restores a session from the cookie on a fresh page, once', async () => {
    const server = fakeServer();
    const first = clientFor(server, { mode: 'cookie' });
    await first.login(credentials);
    first.dispose(); // the page was closed; the cookie stays in the browser

    const reloaded = clientFor(server, { mode: 'cookie' });
    const [a, b] = await Promise.all([reloaded.getAccessToken(), reloaded.getAccessToken()]);
    expect(a).toMatch(/^ey/);
    expect(b).toBe(a);
    expect(server.refreshCount).toBe(1);
  });

  it('starts signed out without a cookie, quietly', async () => {
    const server = fakeServer();
    const client = clientFor(server, { mode: 'cookie' });
    const events = recordEvents(client);
    expect(await client.getAccessToken()).toBeNull();
    expect(await client.getAccessToken()).toBeNull();
    expect(server.refreshCount).toBe(1);
    expect(events).toEqual([]);
  });

  it('logout clears the cookie on the server side', async () => {
    const server = fakeServer();
    const client = clientFor(server, { mode: 'cookie' });
    await client.login(credentials);
    expect(await client.logout()).toEqual({ revoked: true });
    expect(server.cookie).toBeNull();
    expect(server.activeSessions()).toEqual([]);
    expect(server.requests.at(-1)).toMatchObject({ path: '/auth/logout', csrf: '1' });
  });
});
