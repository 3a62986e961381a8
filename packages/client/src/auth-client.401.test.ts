import { afterEach, describe, expect, it } from 'vitest';
import type { FakeBaton } from './test-support/fake-baton.js';
import { clientFor, credentials, disposeAll, fakeServer } from './test-support/harness.js';

afterEach(disposeAll);

const minutes = (n: number) => n * 60_000;

/**
 * A client whose clock stopped at login: it never thinks its token is due,
 * so only the server's 401 can tell it (a token revoked early, a clock that
 * was wrong at the moment of login, a server restarted with new keys).
 */
function frozenClient(server: FakeBaton, extra: Parameters<typeof clientFor>[1] = {}) {
  const stopped = server.clock.ms;
  return clientFor(server, { now: () => stopped, ...extra });
}

const sentTokens = (server: FakeBaton, path: string) =>
  server.requests.filter((r) => r.path === path).map((r) => r.authorization);

describe('401 handling', () => {
  it('refreshes once and replays once on a 401 invalid_token', async () => {
    const server = fakeServer();
    const client = frozenClient(server);
    await client.login(credentials);
    server.clock.advance(minutes(20));

    const response = await client.fetch('/auth/me');
    expect(response.status).toBe(200);
    expect(server.requests.map((r) => r.path)).toEqual([
      '/auth/login',
      '/auth/me',
      '/auth/refresh',
      '/auth/me',
    ]);
    const [first, replay] = sentTokens(server, '/auth/me');
    expect(replay).not.toBe(first);
  });

  it('answers 50 concurrent 401s with one refresh', async () => {
    const server = fakeServer();
    const client = frozenClient(server);
    await client.login(credentials);
    server.clock.advance(minutes(20));

    const responses = await Promise.all(Array.from({ length: 50 }, () => client.fetch('/auth/me')));
    expect(responses.every((r) => r.status === 200)).toBe(true);
    expect(server.refreshCount).toBe(1);
    expect(server.requests.filter((r) => r.path === '/auth/me')).toHaveLength(100);
  });

  it('replays with the newer token, without refreshing, when one already exists', async () => {
    const server = fakeServer();
    let releaseSlow: () => void = () => {};
    const slowGate = new Promise<void>((resolve) => {
      releaseSlow = resolve;
    });
    const client = frozenClient(server, {
      fetch: async (input, init) => {
        const request = new Request(input, init);
        // The slow request left with the old token; it reaches the server only after the fast one has refreshed.
        if (request.headers.get('x-slow') === '1') await slowGate;
        return server.fetch(request);
      },
    });
    await client.login(credentials);
    server.clock.advance(minutes(20));

    const slow = client.fetch('/auth/me', { headers: { 'x-slow': '1' } });
    const fast = await client.fetch('/auth/me');
    expect(fast.status).toBe(200);
    expect(server.refreshCount).toBe(1);
    releaseSlow();
    expect((await slow).status).toBe(200);
    expect(server.refreshCount).toBe(1);
    // The slow request was replayed once, with the token the fast one obtained.
    const tokens = sentTokens(server, '/auth/me');
    expect(tokens).toHaveLength(4);
    expect(tokens[3]).toBe(tokens[1]);
  });

  it('gives a second 401 to the caller instead of looping', async () => {
    const server = fakeServer();
    const client = clientFor(server);
    await client.login(credentials);
    const unauthorized = {
      kind: 'status',
      status: 401,
      body: { error: 'invalid_token' },
      headers: { 'WWW-Authenticate': 'Bearer error="invalid_token"' },
    } as const;
    server.failNext('/auth/me', unauthorized);
    server.failNext('/auth/me', unauthorized);

    const response = await client.fetch('/auth/me');
    expect(response.status).toBe(401);
    expect(server.requests.filter((r) => r.path === '/auth/me')).toHaveLength(2);
    expect(server.refreshCount).toBe(1);
    // Not a reason to sign out: the refresh itself worked.
    expect(client.getSession()).not.toBeNull();
  });

  it('replays a replayable body (string, and a Request object) exactly as sent', async () => {
    const server = fakeServer();
    const client = frozenClient(server);
    await client.login(credentials);
    server.clock.advance(minutes(20));

    const response = await client.fetch('/api/echo', { method: 'POST', body: 'hello' });
    expect(await response.json()).toEqual({ received: 'hello' });

    server.clock.advance(minutes(20));
    const request = new Request(`${server.origin}/api/echo`, {
      method: 'POST',
      body: JSON.stringify({ n: 1 }),
    });
    const again = await client.fetch(request);
    expect(await again.json()).toEqual({ received: '{"n":1}' });
    expect(server.echoed).toEqual(['hello', '{"n":1}']);
    expect(server.refreshCount).toBe(2);
  });

  it('does not replay a streamed body: the 401 goes to the caller', async () => {
    const server = fakeServer();
    const client = frozenClient(server);
    await client.login(credentials);
    server.clock.advance(minutes(20));

    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('once'));
        controller.close();
      },
    });
    const response = await client.fetch('/api/echo', { method: 'POST', body, duplex: 'half' } as RequestInit);
    expect(response.status).toBe(401);
    expect(server.requests.filter((r) => r.path === '/api/echo')).toHaveLength(1);
    expect(server.echoed).toEqual([]);
  });

  it('rejects with signed_out when the refresh after a 401 is refused', async () => {
    const server = fakeServer();
    const client = frozenClient(server);
    const { sessionId } = await client.login(credentials);
    server.revokeSession(sessionId!);

    await expect(client.fetch('/auth/me')).rejects.toMatchObject({
      code: 'signed_out',
      reason: 'invalid_grant',
    });
    expect(client.getSession()).toBeNull();
  });

  it('lets the caller abort while waiting for a refresh; other callers still get theirs', async () => {
    const server = fakeServer({ latencyMs: 30 });
    const client = clientFor(server);
    await client.login(credentials);
    server.clock.advance(minutes(20));

    const controller = new AbortController();
    const aborted = client.fetch('/auth/me', { signal: controller.signal });
    const patient = client.fetch('/auth/me');
    controller.abort();
    await expect(aborted).rejects.toMatchObject({ name: 'AbortError' });
    expect((await patient).status).toBe(200);
    expect(server.refreshCount).toBe(1);
  });

  it('never sends the token to an origin it was not configured for', async () => {
    const server = fakeServer();
    const client = clientFor(server, { tokenOrigins: ['https://api.example.com'] });
    await client.login(credentials);
    const before = server.requests.length;
    await expect(client.fetch('https://evil.example.net/steal')).rejects.toThrow(TypeError);
    await expect(client.fetch(new Request('https://evil.example.net/'))).rejects.toThrow(TypeError);
    expect(server.requests.length).toBe(before);
  });
});
