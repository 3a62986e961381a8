import { afterEach, describe, expect, it, vi } from 'vitest';
import { BatonClientError } from './errors.js';
import { memoryStorage, type TokenStorage } from './storage.js';
import { clientFor, credentials, disposeAll, fakeServer, recordEvents } from './test-support/harness.js';

afterEach(() => {
  disposeAll();
  vi.unstubAllGlobals();
  vi.useRealTimers();
});

const minutes = (n: number) => n * 60_000;

describe('one refresh at a time', () => {
  it('turns 100 concurrent requests with an expired token into one refresh', async () => {
    const server = fakeServer();
    const client = clientFor(server);
    await client.login(credentials);
    server.clock.advance(minutes(20));

    const responses = await Promise.all(Array.from({ length: 100 }, () => client.fetch('/auth/me')));
    expect(responses.map((r) => r.status)).toEqual(Array(100).fill(200));
    expect(server.refreshCount).toBe(1);
    const sent = new Set(server.requests.filter((r) => r.path === '/auth/me').map((r) => r.authorization));
    expect(sent.size).toBe(1);
  });

  it('shares one in-flight refresh between client instances in the same realm', async () => {
    const server = fakeServer();
    const storage = memoryStorage();
    const a = clientFor(server, { storage });
    await a.login(credentials);
    const b = clientFor(server, { storage });
    server.clock.advance(minutes(20));

    const [ra, rb] = await Promise.all([a.fetch('/auth/me'), b.fetch('/auth/me')]);
    expect([ra.status, rb.status]).toEqual([200, 200]);
    expect(server.refreshCount).toBe(1);
  });

  it('re-reads storage inside the lock and adopts a token another context already refreshed', async () => {
    vi.stubGlobal('BroadcastChannel', undefined); // no messages: storage is the only link
    const server = fakeServer();
    const storage = memoryStorage();
    const a = clientFor(server, { storage });
    await a.login(credentials);
    const b = clientFor(server, { storage });
    expect(await b.getAccessToken()).toMatch(/^ey/); // b has loaded the session

    server.clock.advance(minutes(20));
    expect((await a.fetch('/auth/me')).status).toBe(200);
    expect(server.refreshCount).toBe(1);

    // b still holds the old token in memory; it must not spend the old refresh token.
    expect((await b.fetch('/auth/me')).status).toBe(200);
    expect(server.refreshCount).toBe(1);
    expect(server.refreshes.reuse_detected).toBe(0);
  });

  it('releases the lock when something inside it hangs', async () => {
    let hang = false;
    const inner = memoryStorage();
    const storage: TokenStorage = {
      get: (key) => (hang ? new Promise<null>(() => {}) : inner.get(key)),
      set: (key, value) => inner.set(key, value),
    };
    const server = fakeServer();
    const client = clientFor(server, { storage, timeoutMs: 50, random: () => 0, refreshRetryBudgetMs: 0 });
    await client.login(credentials);
    server.clock.advance(minutes(20));

    hang = true; // the storage read inside the lock never returns
    await expect(client.fetch('/auth/me')).rejects.toMatchObject({ code: 'timeout', retryable: true });
    expect(client.getSession()).not.toBeNull();

    hang = false; // the next attempt gets the lock: it was released
    expect((await client.fetch('/auth/me')).status).toBe(200);
  });
});

describe('failures keep the session', () => {
  it('backs off after a 503, honours Retry-After, and does not hit the server meanwhile', async () => {
    const server = fakeServer();
    const client = clientFor(server, { refreshRetryBudgetMs: 0 }); // one attempt per call: the backoff gate
    const events = recordEvents(client);
    await client.login(credentials);
    server.clock.advance(minutes(20));
    server.failNext('/auth/refresh', { kind: 'status', status: 503, headers: { 'Retry-After': '7' } });

    const first = await client.fetch('/auth/me').catch((e: unknown) => e);
    expect(first).toBeInstanceOf(BatonClientError);
    expect(first).toMatchObject({ code: 'server_error', retryable: true, status: 503 });
    expect((first as BatonClientError).retryAfterMs).toBeGreaterThanOrEqual(7_000);
    expect(events.find((e) => e.name === 'refreshFailed')?.payload).toMatchObject({
      retryable: true,
      attempt: 1,
    });
    expect(client.getSession()).not.toBeNull();

    // Within Retry-After: answered from the backoff, not by another request to the server.
    server.clock.advance(3_000);
    await expect(client.fetch('/auth/me')).rejects.toMatchObject({ code: 'server_error', retryable: true });
    expect(server.refreshCount).toBe(1);

    server.clock.advance(5_000);
    expect((await client.fetch('/auth/me')).status).toBe(200);
    expect(server.refreshCount).toBe(2);
    expect(events.map((e) => e.name)).not.toContain('signedOut');
  });

  it('treats network errors and 429 as retryable, with a growing backoff', async () => {
    const server = fakeServer();
    const client = clientFor(server, { random: () => 0.999_999, refreshRetryBudgetMs: 0 });
    const events = recordEvents(client);
    await client.login(credentials);
    server.clock.advance(minutes(20));
    for (let i = 0; i < 3; i++) server.failNext('/auth/refresh', { kind: 'network' });
    server.failNext('/auth/refresh', { kind: 'status', status: 429, body: { error: 'too_many_requests' } });

    const codes: unknown[] = [];
    for (let i = 0; i < 4; i++) {
      codes.push(await client.fetch('/auth/me').catch((e: BatonClientError) => e.code));
      server.clock.advance(minutes(2));
    }
    expect(codes).toEqual(['network_error', 'network_error', 'network_error', 'too_many_requests']);
    const delays = events
      .filter((e) => e.name === 'refreshFailed')
      .map((e) => (e.payload as { retryInMs: number }).retryInMs);
    expect(delays).toEqual([999, 1999, 3999, 7999]);
    expect((await client.fetch('/auth/me')).status).toBe(200);
    expect(client.getSession()).not.toBeNull();
  });

  it('still sends the current token when a due refresh fails but the token has not expired', async () => {
    const server = fakeServer();
    const client = clientFor(server);
    const events = recordEvents(client);
    await client.login(credentials);
    server.clock.advance(minutes(14)); // due, 60 s left
    server.failNext('/auth/refresh', { kind: 'network' });
    expect((await client.fetch('/auth/me')).status).toBe(200);
    expect(events.map((e) => e.name)).toEqual(['sessionChanged', 'refreshFailed']);
  });

  it('times out a hanging refresh instead of waiting forever', async () => {
    const server = fakeServer();
    const client = clientFor(server, { timeoutMs: 30, random: () => 0, refreshRetryBudgetMs: 0 });
    await client.login(credentials);
    server.clock.advance(minutes(20));
    server.failNext('/auth/refresh', { kind: 'hang' });
    await expect(client.fetch('/auth/me')).rejects.toMatchObject({ code: 'timeout', retryable: true });
    expect((await client.fetch('/auth/me')).status).toBe(200);
    server.releaseHangs();
  });

  it('retries in the background after a failure, with a short timer', async () => {
    const server = fakeServer({ latencyMs: 0 });
    const client = clientFor(server, { random: () => 0.5 });
    const events = recordEvents(client);
    await client.login(credentials);
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    server.clock.advance(minutes(14));
    server.failNext('/auth/refresh', { kind: 'status', status: 502 });
    await client.fetch('/auth/me'); // token still valid: the request goes through, the refresh failed
    expect(server.refreshCount).toBe(1);

    server.clock.advance(500);
    await vi.advanceTimersByTimeAsync(500); // first backoff: 0.5 × 1 s
    await vi.waitFor(() => expect(events.map((e) => e.name)).toContain('tokenRefreshed'));
    expect(server.refreshCount).toBe(2);
  });

  it('retries in the background even when its timer fires a moment early by the clock', async () => {
    const server = fakeServer({ latencyMs: 0 });
    const client = clientFor(server, { random: () => 0.5 });
    const events = recordEvents(client);
    await client.login(credentials);
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    server.clock.advance(minutes(14));
    server.failNext('/auth/refresh', { kind: 'status', status: 502 });
    await client.fetch('/auth/me'); // token still valid: the request goes through, the refresh failed
    expect(server.refreshCount).toBe(1);

    // Timers and Date.now() are not the same clock: the 500 ms timer fires
    // when the clock has moved only 499 ms. The scheduled retry must still run.
    server.clock.advance(499);
    await vi.advanceTimersByTimeAsync(500);
    await vi.waitFor(() => expect(events.map((e) => e.name)).toContain('tokenRefreshed'));
    expect(server.refreshCount).toBe(2);
  });
});

describe('invalid_grant ends the session', () => {
  it('signs out with a reason when the server refuses the refresh token', async () => {
    const server = fakeServer();
    const storage = memoryStorage();
    const client = clientFor(server, { storage, storageKey: 'k' });
    const events = recordEvents(client);
    const { sessionId } = await client.login(credentials);
    server.revokeSession(sessionId!);
    server.clock.advance(minutes(20));

    const error = await client.fetch('/auth/me').catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'signed_out', reason: 'invalid_grant' });
    expect(events.slice(1)).toEqual([
      { name: 'signedOut', payload: { reason: 'invalid_grant', source: 'local' } },
      { name: 'sessionChanged', payload: { signedIn: false, sessionId: undefined, source: 'local' } },
    ]);
    expect(await client.getAccessToken()).toBeNull();
    expect(client.getSession()).toBeNull();
    // The stored tombstone holds no token.
    const stored = String(await storage.get('k'));
    expect(stored).toContain('signed_out');
    expect(stored).not.toContain('brt_');
    // `eyJ` starts every JWT (base64url of `{"`); a bare `ey` also matched a random device token.
    expect(stored).not.toContain('eyJ');
    // Later requests fail fast, without asking the server again.
    await expect(client.fetch('/auth/me')).rejects.toMatchObject({ code: 'signed_out' });
    expect(server.refreshCount).toBe(1);
  });

  it('adopts a token that another context stored while its own refresh was refused', async () => {
    vi.stubGlobal('BroadcastChannel', undefined); // storage is the only link between the two
    const server = fakeServer();
    const storage = memoryStorage();
    const otherStore = memoryStorage();
    const client = clientFor(server, {
      storage,
      storageKey: 'mine',
      fetch: async (input, init) => {
        const url = input instanceof Request ? input.url : String(input);
        if (url.endsWith('/auth/refresh')) {
          // While our refresh is on the wire another context stores a newer
          // state, and the server refuses our (now spent) refresh token.
          const theirs = JSON.parse(String(await otherStore.get('other'))) as { seq: number };
          theirs.seq = 99;
          await storage.set('mine', JSON.stringify(theirs));
          server.failNext('/auth/refresh', { kind: 'status', status: 401, body: { error: 'invalid_grant' } });
        }
        return server.fetch(input, init);
      },
    });
    const events = recordEvents(client);
    await client.login(credentials);
    server.clock.advance(minutes(20));
    const other = clientFor(server, { storage: otherStore, storageKey: 'other' });
    const { sessionId: theirSession } = await other.login(credentials);

    const response = await client.fetch('/auth/me');
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ session_id: theirSession });
    expect(events.map((e) => e.name)).not.toContain('signedOut');
  });
});
