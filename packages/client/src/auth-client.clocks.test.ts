import { afterEach, describe, expect, it, vi } from 'vitest';
import { createAuthClient } from './auth-client.js';
import { memoryStorage } from './storage.js';
import { clientFor, credentials, disposeAll, fakeServer } from './test-support/harness.js';

afterEach(() => {
  disposeAll();
  vi.useRealTimers();
});

describe('tabs whose now() have different origins', () => {
  it('judge the shared expiry on one clock: no refresh storm over a minute of 4 s tokens', async () => {
    const server = fakeServer({ accessTtlSeconds: 4, latencyMs: 0 });
    // Date.now() reads the simulated time, as it would in every tab of a browser.
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(server.clock.ms);
    const storage = memoryStorage();
    const epochTab = clientFor(server, { storage, storageKey: 'shared' });
    // performance.now()-like: milliseconds since this tab was opened, starting at 0.
    const openedAt = server.clock.ms;
    const pageClockTab = clientFor(server, {
      storage,
      storageKey: 'shared',
      now: () => server.clock.ms - openedAt,
    });
    await epochTab.login(credentials);

    const statuses = new Map<number, number>();
    for (let t = 0; t < 60_000; t += 100) {
      server.clock.advance(100);
      vi.setSystemTime(server.clock.ms);
      const results = await Promise.allSettled([epochTab.fetch('/auth/me'), pageClockTab.fetch('/auth/me')]);
      for (const result of results) {
        const key = result.status === 'fulfilled' ? result.value.status : 0;
        statuses.set(key, (statuses.get(key) ?? 0) + 1);
      }
    }
    // A 4 s token is refreshed at half its life (2 s, less jitter): about 30 a
    // minute for the two tabs together, as for one. Judged on two different
    // clocks it was hundreds.
    expect(server.refreshCount).toBeLessThanOrEqual(40);
    expect(server.refreshes.reuse_detected).toBe(0);
    expect(Object.fromEntries(statuses)).toEqual({ 200: 1200 });
    // No request was sent with a token the server had already expired.
    expect(server.requests.filter((r) => r.path === '/auth/me')).toHaveLength(1200);
  });

  it('rejects a now() that does not return a number', () => {
    expect(() =>
      createAuthClient({ baseUrl: 'https://auth.test', mode: 'token', now: () => Number.NaN }),
    ).toThrow(TypeError);
  });
});
