import { afterEach, describe, expect, it, vi } from 'vitest';
import type { AuthClient } from './auth-client.js';
import { type FakeBaton, ManualClock } from './test-support/fake-baton.js';
import { clientFor, credentials, disposeAll, fakeServer, recordEvents } from './test-support/harness.js';

// A refresh that fails for a moment (a network blip, a restarting server) is
// retried within the call, with backoff, inside a bounded budget. Timers are
// faked and moved in step with the fake server's clock, so the waits are
// simulated, not slept.

afterEach(() => {
  disposeAll();
  vi.useRealTimers();
});

const minutes = (n: number) => n * 60_000;

/**
 * The fake server's clock, read from `Date.now()`: once timers (and Date) are
 * faked, the clock moves exactly with them, so a timer fires when the clock
 * says it is due. `advance` still jumps it (a laptop that slept).
 */
function timerClock(): ManualClock {
  const clock = new ManualClock();
  let offset = 0;
  Object.defineProperty(clock, 'ms', {
    get: () => Date.now() + offset,
    set: (value: number) => {
      offset = value - Date.now();
    },
  });
  return clock;
}

/** Moves the (fake) timers, and so the clock, in small steps, until `promise` settles (or `maxMs` passes). */
async function settle<T>(promise: Promise<T>, maxMs = 60_000): Promise<PromiseSettledResult<T>> {
  let result: PromiseSettledResult<T> | undefined;
  promise.then(
    (value) => {
      result = { status: 'fulfilled', value };
    },
    (reason: unknown) => {
      result = { status: 'rejected', reason };
    },
  );
  for (let elapsed = 0; result === undefined && elapsed <= maxMs; elapsed += 50) {
    await vi.advanceTimersByTimeAsync(50);
  }
  if (result === undefined) throw new Error(`still pending after ${maxMs} ms`);
  return result;
}

async function expiredClient(server: FakeBaton, options: Parameters<typeof clientFor>[1] = {}) {
  const client: AuthClient = clientFor(server, options);
  const events = recordEvents(client);
  await client.login(credentials);
  fakeTimers();
  server.clock.advance(minutes(20));
  return { client, events };
}

/** Fakes timers and Date from now on (login needs real timers: it waits briefly for other tabs). */
function fakeTimers(): void {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'], now: Date.now() });
}

describe('a failing refresh is retried within the call', () => {
  it('an expired token and one network error: fetch retries and succeeds', async () => {
    const server = fakeServer({ latencyMs: 0, clock: timerClock() });
    const { client, events } = await expiredClient(server);
    server.failNext('/auth/refresh', { kind: 'network' });

    const result = await settle(client.fetch('/auth/me'));
    expect(result).toMatchObject({ status: 'fulfilled', value: { status: 200 } });
    expect(server.refreshCount).toBe(2);
    expect(events.slice(1).map((e) => e.name)).toEqual(['refreshFailed', 'tokenRefreshed']);
    expect(events[1]?.payload).toMatchObject({
      retryable: true,
      attempt: 1,
      error: { code: 'network_error' },
    });
  });

  it('honours Retry-After inside the budget, and retries 5xx and 429', async () => {
    const server = fakeServer({ latencyMs: 0, clock: timerClock() });
    const refreshedAt: number[] = [];
    const { client, events } = await expiredClient(server, {
      random: () => 0,
      fetch: (input, init) => {
        const url = input instanceof Request ? input.url : String(input);
        if (url.endsWith('/auth/refresh')) refreshedAt.push(server.clock.ms);
        return server.fetch(input, init);
      },
    });
    server.failNext('/auth/refresh', { kind: 'status', status: 503, headers: { 'Retry-After': '3' } });
    server.failNext('/auth/refresh', { kind: 'status', status: 429, body: { error: 'too_many_requests' } });
    const result = await settle(client.fetch('/auth/me', {}));
    expect(result).toMatchObject({ status: 'fulfilled', value: { status: 200 } });
    expect(refreshedAt).toHaveLength(3);
    // Not before the 3 s the server asked for.
    expect(refreshedAt[1]! - refreshedAt[0]!).toBeGreaterThanOrEqual(3_000);
    const failures = events.filter((e) => e.name === 'refreshFailed').map((e) => e.payload);
    expect(failures).toMatchObject([
      { retryable: true, attempt: 1, retryInMs: 3_000, error: { code: 'server_error' } },
      { retryable: true, attempt: 2, error: { code: 'too_many_requests' } },
    ]);
  });

  it('gives up when the next try would be past the budget: Retry-After longer than the budget fails at once', async () => {
    const server = fakeServer({ latencyMs: 0, clock: timerClock() });
    const { client } = await expiredClient(server);
    server.failNext('/auth/refresh', { kind: 'status', status: 503, headers: { 'Retry-After': '60' } });
    const result = await settle(client.fetch('/auth/me'), 1_000);
    expect(result).toMatchObject({ status: 'rejected', reason: { code: 'server_error', retryable: true } });
    expect(server.refreshCount).toBe(1);
    expect(client.getSession()).not.toBeNull();
  });

  it('stops after the budget when the server stays unreachable, keeping the session', async () => {
    const server = fakeServer({ latencyMs: 0, clock: timerClock() });
    const { client, events } = await expiredClient(server, { refreshRetryBudgetMs: 5_000 });
    for (let i = 0; i < 50; i++) server.failNext('/auth/refresh', { kind: 'network' });
    const started = server.clock.ms;
    const result = await settle(client.fetch('/auth/me'));
    expect(result).toMatchObject({ status: 'rejected', reason: { code: 'network_error', retryable: true } });
    expect(server.clock.ms - started).toBeLessThanOrEqual(5_000 + 100);
    expect(server.refreshCount).toBeGreaterThan(1);
    expect(events.filter((e) => e.name === 'refreshFailed')).toHaveLength(server.refreshCount);
    expect(client.getSession()).not.toBeNull();
  });

  it('does not retry answers that cannot get better: invalid_grant signs out, another 4xx fails', async () => {
    const server = fakeServer({ latencyMs: 0, clock: timerClock() });
    const { client } = await expiredClient(server);
    server.failNext('/auth/refresh', { kind: 'status', status: 400, body: { error: 'invalid_request' } });
    const bad = await settle(client.fetch('/auth/me'), 1_000);
    expect(bad).toMatchObject({ status: 'rejected', reason: { code: 'invalid_request', retryable: false } });
    expect(server.refreshCount).toBe(1);

    const other = fakeServer({ latencyMs: 0, clock: timerClock() });
    vi.useRealTimers();
    const { client: revoked } = await expiredClient(other);
    other.revokeSession(revoked.getSession()!.sessionId!);
    const gone = await settle(revoked.fetch('/auth/me'), 1_000);
    expect(gone).toMatchObject({
      status: 'rejected',
      reason: { code: 'signed_out', reason: 'invalid_grant' },
    });
    expect(other.refreshCount).toBe(1);
  });

  it("a caller's AbortSignal cuts its wait short; the retry goes on for the others", async () => {
    const server = fakeServer({ latencyMs: 0, clock: timerClock() });
    const { client, events } = await expiredClient(server, { random: () => 0.999 });
    server.failNext('/auth/refresh', { kind: 'network' });
    server.failNext('/auth/refresh', { kind: 'network' });
    const controller = new AbortController();
    const aborted = client.fetch('/auth/me', { signal: controller.signal });
    const patient = client.fetch('/auth/me');
    await vi.advanceTimersByTimeAsync(0);
    expect(server.refreshCount).toBe(1); // failed, now waiting to retry
    controller.abort();
    await expect(aborted).rejects.toMatchObject({ name: 'AbortError' });
    const result = await settle(patient);
    expect(result).toMatchObject({ status: 'fulfilled', value: { status: 200 } });
    expect(server.refreshCount).toBe(3);
    expect(events.map((e) => e.name)).toContain('tokenRefreshed');
  });

  it('a due token goes out at once when the refresh fails, while the retry goes on in the background', async () => {
    const server = fakeServer({ latencyMs: 0, clock: timerClock() });
    const client = clientFor(server);
    const events = recordEvents(client);
    await client.login(credentials);
    fakeTimers();
    server.clock.advance(minutes(14)); // due, 60 s left
    server.failNext('/auth/refresh', { kind: 'network' });
    const before = await client.getAccessToken().catch(() => null);
    // getAccessToken above already met the failure; a fetch now does not wait for the retry.
    const response = await client.fetch('/auth/me');
    expect(response.status).toBe(200);
    const sent = server.requests.filter((r) => r.path === '/auth/me').map((r) => r.authorization);
    expect(sent).toEqual([`Bearer ${before}`]);
    await settle(new Promise<void>((resolve) => client.on('tokenRefreshed', () => resolve())));
    expect(server.refreshCount).toBe(2);
    expect(events.map((e) => e.name)).toEqual(['sessionChanged', 'refreshFailed', 'tokenRefreshed']);
  });
});

describe('a refresh whose answer is lost', () => {
  it('is retried inside the reuse grace window, so the user stays signed in', async () => {
    const server = fakeServer({ latencyMs: 0, clock: timerClock() });
    const { client, events } = await expiredClient(server, { random: () => 0.999 });
    // The server rotates the refresh token, but its answer never arrives.
    server.failNext('/auth/refresh', { kind: 'lost' });

    const result = await settle(client.fetch('/auth/me'));
    expect(result).toMatchObject({ status: 'fulfilled', value: { status: 200 } });
    // The retry presented the spent token inside the window: answered with its successor.
    expect(server.refreshes).toMatchObject({ rotated: 1, grace_replay: 1, reuse_detected: 0 });
    expect(events.map((e) => e.name)).not.toContain('signedOut');
    expect(client.getSession()).not.toBeNull();
    server.releaseHangs();
  });

  it('a retry that stalls too gives up in time for one more inside the grace window', async () => {
    const server = fakeServer({ latencyMs: 0, clock: timerClock() });
    const { client, events } = await expiredClient(server, { random: () => 0.999 });
    // The server rotates, the answer never arrives; the retry (a grace replay) stalls as well.
    server.failNext('/auth/refresh', { kind: 'lost' });
    server.failNext('/auth/refresh', { kind: 'lost' });

    const result = await settle(client.fetch('/auth/me'));
    expect(result).toMatchObject({ status: 'fulfilled', value: { status: 200 } });
    // Had the second attempt waited out its full timeout, the third would come after the window: reuse.
    expect(server.refreshes).toMatchObject({ rotated: 1, grace_replay: 2, reuse_detected: 0 });
    expect(events.map((e) => e.name)).not.toContain('signedOut');
    expect(client.getSession()).not.toBeNull();
    server.releaseHangs();
  });

  it('times a refresh out well inside the grace window by default', async () => {
    const server = fakeServer({ latencyMs: 0, clock: timerClock() });
    const { client, events } = await expiredClient(server, { refreshRetryBudgetMs: 0 });
    server.failNext('/auth/refresh', { kind: 'lost' });
    const started = server.clock.ms;
    const result = await settle(client.fetch('/auth/me'));
    expect(result).toMatchObject({ status: 'rejected', reason: { code: 'timeout', retryable: true } });
    expect(server.clock.ms - started).toBeLessThan(server.graceMs / 2 + 100);
    // The background retry is scheduled inside the window too.
    const failed = events.find((e) => e.name === 'refreshFailed')?.payload as { retryInMs: number };
    expect(server.clock.ms - started + failed.retryInMs).toBeLessThan(server.graceMs);
    server.releaseHangs();
  });
});
