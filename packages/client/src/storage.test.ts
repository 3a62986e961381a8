import { afterEach, describe, expect, it, vi } from 'vitest';
import { createAuthClient } from './auth-client.js';
import {
  asyncStorage,
  memoryStorage,
  type TokenStorage,
  type WebStorageArea,
  webStorage,
} from './storage.js';
import { clientFor, credentials, disposeAll, fakeServer, recordEvents } from './test-support/harness.js';

afterEach(() => {
  disposeAll();
  vi.unstubAllGlobals();
});

/** A Web Storage area that can also fire `storage` events, as another tab's writes do. */
function fakeArea(): WebStorageArea & { data: Map<string, string> } {
  const data = new Map<string, string>();
  return { data, getItem: (k) => data.get(k) ?? null, setItem: (k, v) => void data.set(k, v) };
}

describe('storage', () => {
  it('resumes a session after a restart (page reload, CLI run) from persistent storage', async () => {
    const server = fakeServer();
    const storage = memoryStorage();
    const first = clientFor(server, { storage, storageKey: 'k' });
    const { sessionId } = await first.login(credentials);
    first.dispose();

    const next = clientFor(server, { storage, storageKey: 'k' });
    expect(next.getSession()).toBeNull(); // nothing read yet: no I/O in getSession
    expect((await next.fetch('/auth/me')).status).toBe(200);
    expect(next.getSession()?.sessionId).toBe(sessionId);
    expect(server.requests.filter((r) => r.path === '/auth/login')).toHaveLength(1);
  });

  it('keeps the rotated refresh token in storage so the next run does not replay a spent one', async () => {
    const server = fakeServer({ graceMs: 0 });
    const storage = memoryStorage();
    const run1 = clientFor(server, { storage, storageKey: 'k' });
    await run1.login(credentials);
    server.clock.advance(20 * 60_000);
    await run1.fetch('/auth/me'); // rotates
    run1.dispose();
    server.clock.advance(20 * 60_000);
    const run2 = clientFor(server, { storage, storageKey: 'k' });
    expect((await run2.fetch('/auth/me')).status).toBe(200);
    expect(server.refreshes).toMatchObject({ rotated: 2, reuse_detected: 0 });
  });

  it('treats a corrupt stored value as signed out instead of failing', async () => {
    const server = fakeServer();
    const storage = memoryStorage();
    await storage.set('k', '{"v":1,"kind":"session",');
    const client = clientFor(server, { storage, storageKey: 'k' });
    expect(await client.getAccessToken()).toBeNull();
  });

  it('keeps the session in memory when storage writes fail', async () => {
    const server = fakeServer();
    const storage: TokenStorage = {
      get: () => null,
      set: () => {
        throw new Error('QuotaExceededError');
      },
    };
    const client = clientFor(server, { storage });
    await client.login(credentials);
    expect((await client.fetch('/auth/me')).status).toBe(200);
  });

  it('adapts an AsyncStorage-shaped store (React Native)', async () => {
    const server = fakeServer();
    const values = new Map<string, string>();
    const storage = asyncStorage({
      getItem: async (k) => values.get(k) ?? null,
      setItem: async (k, v) => {
        values.set(k, v);
      },
    });
    const client = clientFor(server, { storage, storageKey: 'app' });
    await client.login(credentials);
    expect(JSON.parse(values.get('app') ?? '{}')).toMatchObject({
      kind: 'session',
      refreshToken: expect.stringMatching(/^brt_/),
    });
    expect(() => asyncStorage({} as never)).toThrow(TypeError);
  });

  it('follows changes another tab makes to localStorage (storage events), even without BroadcastChannel', async () => {
    vi.stubGlobal('BroadcastChannel', undefined);
    const win = new EventTarget();
    vi.stubGlobal('addEventListener', win.addEventListener.bind(win));
    vi.stubGlobal('removeEventListener', win.removeEventListener.bind(win));
    const area = fakeArea();
    vi.stubGlobal('localStorage', area);
    const server = fakeServer();
    const tab1 = clientFor(server, { storage: 'localStorage', storageKey: 'k' });
    const tab2 = clientFor(server, { storage: 'localStorage', storageKey: 'k' });
    expect(await tab2.getAccessToken()).toBeNull();
    const log = recordEvents(tab2);
    // What the browser does in every other tab after a localStorage write.
    const storageEvent = () =>
      win.dispatchEvent(
        Object.assign(new Event('storage'), { key: 'k', newValue: area.data.get('k'), storageArea: area }),
      );

    const { sessionId } = await tab1.login(credentials);
    storageEvent();
    expect(log).toEqual([
      { name: 'sessionChanged', payload: { signedIn: true, sessionId, source: 'remote' } },
    ]);
    expect(await tab2.getAccessToken()).toBe(await tab1.getAccessToken());

    await tab1.logout();
    storageEvent();
    expect(tab2.getSession()).toBeNull();
    expect(log[1]).toEqual({ name: 'signedOut', payload: { reason: 'logout', source: 'remote' } });
  });

  it("rejects storage: 'localStorage' where there is none, at construction", () => {
    expect(() =>
      createAuthClient({ baseUrl: 'https://a.test', mode: 'token', storage: 'localStorage' }),
    ).toThrow(TypeError);
    expect(() => webStorage()).toThrow(TypeError);
  });
});
