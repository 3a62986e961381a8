import {
  type AuthClient,
  type AuthClientEventName,
  type AuthClientEvents,
  type AuthClientOptions,
  createAuthClient,
} from '../auth-client.js';
import { FakeBaton, type FakeBatonOptions } from './fake-baton.js';

let serial = 0;
const live: AuthClient[] = [];

/** A fake server on its own origin (so tests never share BroadcastChannels or in-flight refreshes) with one user. */
export function fakeServer(options: FakeBatonOptions = {}): FakeBaton {
  const server = new FakeBaton({ origin: `https://auth-${++serial}.test`, ...options });
  server.addUser('ada@example.com', 'correct horse battery');
  return server;
}

export const credentials = { email: 'ada@example.com', password: 'correct horse battery' };

/**
 * A client of `server` whose clock is the server's plus `skewMs` (a laptop
 * whose clock is off). Disposed by {@link disposeAll}.
 */
export function clientFor(
  server: FakeBaton,
  options: Partial<AuthClientOptions> & { skewMs?: number } = {},
): AuthClient {
  const { skewMs = 0, ...rest } = options;
  const client = createAuthClient({
    baseUrl: server.origin,
    mode: 'token',
    fetch: server.fetch,
    now: () => server.clock.ms + skewMs,
    // Deterministic jitter: the middle of its range.
    random: () => 0.5,
    // Unbound unless a test asks for DPoP: the suites about refresh timing
    // count requests and jump the fake clocks past a nonce's lifetime, and
    // fake timers cannot hurry WebCrypto. auth-client.dpop*.test.ts covers
    // DPoP, the default, including the concurrency promises.
    dpop: false,
    ...rest,
  });
  live.push(client);
  return client;
}

/** Records events of a client, in order. */
export function recordEvents(client: AuthClient): { name: AuthClientEventName; payload: unknown }[] {
  const log: { name: AuthClientEventName; payload: unknown }[] = [];
  for (const name of ['tokenRefreshed', 'refreshFailed', 'signedOut', 'sessionChanged'] as const) {
    client.on(name, (payload: AuthClientEvents[typeof name]) => log.push({ name, payload }));
  }
  return log;
}

export function disposeAll(): void {
  for (const client of live.splice(0)) client.dispose();
}

/** Resolves once `predicate` holds, polling the event loop (BroadcastChannel messages arrive asynchronously). */
export async function until(predicate: () => boolean, what: string, tries = 200): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (predicate()) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`timed out waiting for: ${what}`);
}
