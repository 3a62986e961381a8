import { afterEach, describe, expect, it, vi } from 'vitest';
import type { LiveState } from './session-state.js';
import { memoryStorage } from './storage.js';
import { clientFor, credentials, disposeAll, fakeServer } from './test-support/harness.js';

// The Web Locks path, with a LockManager double (Node 20 has none) and a raw
// BroadcastChannel playing the other tab, so the test controls the order in
// which the lock grant and the other tab's messages arrive.

afterEach(() => {
  disposeAll();
  vi.unstubAllGlobals();
});

/** A minimal LockManager: exclusive locks, `ifAvailable`, `signal`. */
class FakeLocks {
  private readonly held = new Set<string>();
  private readonly waiters = new Map<string, (() => void)[]>();
  requests = 0;

  async request<T>(
    name: string,
    options: { ifAvailable?: boolean; signal?: AbortSignal },
    callback: (lock: unknown) => Promise<T>,
  ): Promise<T> {
    this.requests++;
    if (this.held.has(name)) {
      if (options.ifAvailable) return callback(null);
      await new Promise<void>((resolve, reject) => {
        const queue = this.waiters.get(name) ?? [];
        queue.push(resolve);
        this.waiters.set(name, queue);
        options.signal?.addEventListener('abort', () => {
          queue.splice(queue.indexOf(resolve), 1);
          reject(new DOMException('aborted', 'AbortError'));
        });
      });
    }
    this.held.add(name);
    try {
      return await callback({ name });
    } finally {
      this.release(name);
    }
  }

  /** Takes the lock as another tab would; returns its release. */
  hold(name: string): () => void {
    this.held.add(name);
    return () => this.release(name);
  }

  private release(name: string): void {
    this.held.delete(name);
    this.waiters.get(name)?.shift()?.();
  }
}

const minutes = (n: number) => n * 60_000;

describe('Web Locks', () => {
  it('waits for the tab holding the lock and adopts its token, even when its messages arrive after the lock', async () => {
    const locks = new FakeLocks();
    vi.stubGlobal('navigator', { locks });
    const server = fakeServer();
    const storage = memoryStorage();
    const client = clientFor(server, { storage, storageKey: 'k' });
    await client.login(credentials);
    server.clock.advance(minutes(20));

    // The other tab takes the lock and says so.
    const otherTab = new BroadcastChannel('baton:k');
    const release = locks.hold('baton-refresh:k');
    otherTab.postMessage({ t: 'lock', from: 'other', phase: 'acquired', hold: 'h1' });
    await new Promise((r) => setTimeout(r, 10));

    const before = locks.requests; // the login took the lock too
    const request = client.fetch('/auth/me');
    await vi.waitFor(() => expect(locks.requests).toBe(before + 2)); // ifAvailable, then the wait

    // It refreshes (one real refresh on the server)…
    const mine = JSON.parse(String(await storage.get('k'))) as LiveState;
    const response = await server.fetch(`${server.origin}/auth/refresh`, {
      method: 'POST',
      body: JSON.stringify({ refresh_token: mine.refreshToken }),
    });
    const grant = (await response.json()) as {
      access_token: string;
      refresh_token: string;
      expires_in: number;
    };
    const theirs: LiveState = {
      ...mine,
      seq: mine.seq + 1,
      id: 'theirs',
      accessToken: grant.access_token,
      refreshToken: grant.refresh_token,
      obtainedAt: server.clock.ms,
      expiresAt: server.clock.ms + grant.expires_in * 1000,
    };
    // …and releases the lock *before* its messages reach us (different channels, no ordering between them).
    release();
    await new Promise((r) => setTimeout(r, 30));
    otherTab.postMessage({ t: 'state', from: 'other', state: theirs });
    otherTab.postMessage({ t: 'lock', from: 'other', phase: 'released', hold: 'h1' });

    expect((await request).status).toBe(200);
    expect(server.refreshCount).toBe(1); // theirs only: we adopted instead of refreshing again
    expect(server.requests.at(-1)?.authorization).toBe(`Bearer ${grant.access_token}`);
    otherTab.close();
  });

  it('refreshes itself when the tab before it released the lock without a new token', async () => {
    const locks = new FakeLocks();
    vi.stubGlobal('navigator', { locks });
    const server = fakeServer();
    const client = clientFor(server, { storageKey: 'k2' });
    await client.login(credentials);
    server.clock.advance(minutes(20));

    const otherTab = new BroadcastChannel('baton:k2');
    const release = locks.hold('baton-refresh:k2');
    otherTab.postMessage({ t: 'lock', from: 'other', phase: 'acquired', hold: 'h1' });
    await new Promise((r) => setTimeout(r, 10));
    const before = locks.requests;
    const request = client.fetch('/auth/me');
    await vi.waitFor(() => expect(locks.requests).toBe(before + 2));
    // Its refresh failed (offline): it releases and says so, with no new state.
    otherTab.postMessage({ t: 'lock', from: 'other', phase: 'released', hold: 'h1' });
    release();

    expect((await request).status).toBe(200);
    expect(server.refreshCount).toBe(1);
    otherTab.close();
  });

  it('a due token goes out at once when the tab holding the lock says its refresh is retrying', async () => {
    const locks = new FakeLocks();
    vi.stubGlobal('navigator', { locks });
    const server = fakeServer();
    const client = clientFor(server, { storageKey: 'k4' });
    await client.login(credentials);
    const token = await client.getAccessToken();
    server.clock.advance(minutes(14)); // due, not expired

    const otherTab = new BroadcastChannel('baton:k4');
    const release = locks.hold('baton-refresh:k4');
    otherTab.postMessage({ t: 'lock', from: 'other', phase: 'acquired', hold: 'h1' });
    await new Promise((r) => setTimeout(r, 10));
    const before = locks.requests;
    const request = client.fetch('/auth/me');
    await vi.waitFor(() => expect(locks.requests).toBe(before + 2)); // waiting for the other tab
    // Its attempt failed; it keeps the lock and retries. We do not wait for that.
    otherTab.postMessage({ t: 'retrying', from: 'other', code: 'network_error' });

    expect((await request).status).toBe(200);
    expect(server.requests.at(-1)?.authorization).toBe(`Bearer ${token}`);
    expect(server.refreshCount).toBe(0); // one retrying refresh: the other tab's, not ours as well
    release();
    otherTab.postMessage({ t: 'lock', from: 'other', phase: 'released', hold: 'h1' });
    otherTab.close();
  });

  it('gives up waiting for a lock that is never released, keeping the session', async () => {
    const locks = new FakeLocks();
    vi.stubGlobal('navigator', { locks });
    const server = fakeServer();
    const client = clientFor(server, { storageKey: 'k3', timeoutMs: 20, refreshRetryBudgetMs: 0 });
    await client.login(credentials);
    server.clock.advance(minutes(20));
    locks.hold('baton-refresh:k3'); // a stuck tab

    await expect(client.fetch('/auth/me')).rejects.toMatchObject({ code: 'timeout', retryable: true });
    expect(client.getSession()).not.toBeNull();
    expect(server.refreshCount).toBe(0);
  });
});
