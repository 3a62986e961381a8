import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AuthClient } from './auth-client.js';
import { clientFor, credentials, disposeAll, fakeServer } from './test-support/harness.js';

// A caller's AbortSignal ends that caller's call, with the signal's reason,
// and nothing else: the refresh it was waiting for goes on for the others,
// and no promise the client made along the way may be left to reject with
// nobody listening. In Node such a rejection crashes the app by default; the
// chaos suite counts them (issue 11: an AbortError from the end-of-run abort).

const minutes = (n: number) => n * 60_000;

/** Unhandled rejections seen while a test ran. */
let unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => {
  unhandled.push(reason);
};
beforeEach(() => {
  unhandled = [];
  process.on('unhandledRejection', onUnhandled);
});
afterEach(() => {
  process.off('unhandledRejection', onUnhandled);
  disposeAll();
});

/** Lets Node report what is still unhandled: it does so once the microtask queue has drained. */
async function drained(): Promise<void> {
  for (let i = 0; i < 3; i++) await new Promise((resolve) => setTimeout(resolve, 0));
}

function refreshed(client: AuthClient): Promise<void> {
  return new Promise((resolve) => {
    const off = client.on('tokenRefreshed', () => {
      off();
      resolve();
    });
  });
}

describe("a caller's abort leaves no promise rejecting unhandled", () => {
  it('a fetch with an already aborted signal, while the token is expired: rejects with the reason, nothing else', async () => {
    const server = fakeServer();
    const client = clientFor(server);
    await client.login(credentials);
    server.clock.advance(minutes(20));

    const reason = new DOMException('the page went away', 'AbortError');
    await expect(client.fetch('/auth/me', { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
    // Whatever the client still does for that call must settle quietly (the fake answers in 1 ms).
    await new Promise((resolve) => setTimeout(resolve, 20));
    await drained();
    expect(unhandled).toEqual([]);
    // The session is intact: the next call gets a fresh token.
    expect((await client.fetch('/auth/me')).status).toBe(200);
    await drained();
    expect(unhandled).toEqual([]);
  });

  it('a signal aborted while a due token is being refreshed, and that refresh fails once: no unhandled rejection', async () => {
    // random 0: the retry after the failure goes out at once.
    const server = fakeServer();
    const client = clientFor(server, { random: () => 0 });
    await client.login(credentials);
    server.clock.advance(minutes(14)); // due, not expired: the call would go ahead with it
    server.failNext('/auth/refresh', { kind: 'network' });
    const done = refreshed(client);

    const controller = new AbortController();
    const reason = new DOMException('navigated away', 'AbortError');
    const call = client.fetch('/auth/me', { signal: controller.signal });
    controller.abort(reason);
    await expect(call).rejects.toBe(reason);
    // The refresh goes on without the caller: its first attempt fails, the retry succeeds.
    await done;
    expect(server.refreshCount).toBe(2);
    await drained();
    expect(unhandled).toEqual([]);
  });

  it('a fetch with an already aborted signal sends nothing: no refresh for a call nobody waits for', async () => {
    const server = fakeServer();
    const client = clientFor(server);
    await client.login(credentials);
    server.clock.advance(minutes(20));
    const before = server.requests.length;

    const reason = new DOMException('cancelled', 'AbortError');
    await expect(client.fetch('/auth/me', { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(server.requests.slice(before)).toEqual([]);
    // A Request that carries the aborted signal is the same call.
    const request = new Request(`${server.origin}/auth/me`, { signal: AbortSignal.abort(reason) });
    await expect(client.fetch(request)).rejects.toBe(reason);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(server.requests.slice(before)).toEqual([]);
    await drained();
    expect(unhandled).toEqual([]);
  });
});
