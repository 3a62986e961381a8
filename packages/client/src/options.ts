import type { FetchLike } from './http.js';
import { assertStorage, type TokenStorage, webStorage } from './storage.js';

/** `token`: the refresh token is kept by the client (Node, native apps). `cookie`: the server keeps it in an HttpOnly cookie (browsers). */
export type AuthMode = 'cookie' | 'token';

/** Options of {@link createAuthClient}. Unknown keys are a TypeError. */
export interface AuthClientOptions {
  /** Where Baton is mounted, e.g. `https://auth.example.com` or `location.origin`. */
  baseUrl: string;
  /** `cookie` for browsers (refresh token in an HttpOnly cookie), `token` for Node, CLIs and native apps. */
  mode: AuthMode;
  /**
   * Where the session is kept: `'memory'` (default; tabs share it over
   * BroadcastChannel), `'localStorage'`, or any {@link TokenStorage}, such as
   * `asyncStorage(AsyncStorage)` or `fileStorage(path)` from
   * `@baton/client/file-storage`.
   */
  storage?: TokenStorage | 'memory' | 'localStorage';
  /** Key under which the session is stored, and the name tabs coordinate on. Default derived from baseUrl, mode and clientId. */
  storageKey?: string;
  /** The fetch to use (default: the global one, looked up at call time). */
  fetch?: FetchLike;
  /**
   * The clock, in milliseconds since the epoch (default `Date.now`). Expiry
   * times are shared with other tabs and storage, so every context must read
   * the same clock: a clock that is not an epoch clock (`performance.now()`,
   * whose origin differs per tab) is anchored to `Date.now()` once, at
   * construction. Tests may inject any epoch-like clock, faked or skewed.
   */
  now?: () => number;
  /** The OAuth client the session belongs to (server default: `app`). */
  clientId?: string;
  /**
   * Refresh this long before expiry. Default max(30 s, 10 % of the lifetime),
   * at most half the lifetime, plus up to 5 s of jitter.
   */
  refreshMarginMs?: number;
  /** Timeout of each auth request (login, logout, register). Default 10 s. */
  timeoutMs?: number;
  /**
   * Timeout of one `POST /auth/refresh`. Default 5 s (or `timeoutMs` if that
   * is shorter): well inside the server's reuse grace window (10 s by
   * default), so that a refresh whose answer was lost can be retried while
   * the server still answers the spent token with its successor.
   */
  refreshTimeoutMs?: number;
  /**
   * How long one call (`fetch`, `getAccessToken`, …) keeps retrying a refresh
   * that failed with a network error, a timeout, a 5xx or a 429, with backoff,
   * before it rejects. Default 10 s; 0 = reject at the first failure. A due
   * token that still works does not wait for it: the request goes out at once.
   */
  refreshRetryBudgetMs?: number;
  /** Origins besides baseUrl's to which `fetch` may send the access token (your API servers). */
  tokenOrigins?: readonly string[];
  /** Uniform random in [0, 1) for jitter (default `Math.random`); injectable for tests. */
  random?: () => number;
  /**
   * Bind each session to a DPoP key (RFC 9449) made at login, so that its
   * refresh token is useless without the key. Default true; where WebCrypto
   * or a place to keep the key is missing, sessions are unbound and
   * `dpopUnavailable` says why.
   */
  dpop?: boolean;
  /**
   * A context without the key of a DPoP-bound session (IndexedDB blocked
   * here, or `dpop: false`) never refreshes it: it asks the other tabs on the
   * same storage key to refresh and waits this long for the new session
   * before the call fails with `dpop_unavailable`. Default 5 s.
   */
  peerRefreshTimeoutMs?: number;
}

/** Default `timeoutMs`. */
export const DEFAULT_TIMEOUT_MS = 10_000;
/**
 * Default `refreshTimeoutMs`: half the server's default reuse grace window
 * ({@link REUSE_GRACE_MS}). A refresh that timed out may have rotated the
 * token on the server; its retry presents the same token, which the server
 * answers with the successor only inside the window. Timing out at the
 * window's end would leave no time for that retry.
 */
export const DEFAULT_REFRESH_TIMEOUT_MS = 5_000;
/** Default `refreshRetryBudgetMs`. */
export const DEFAULT_REFRESH_RETRY_BUDGET_MS = 10_000;
/**
 * Default `peerRefreshTimeoutMs`: the refresh timeout a tab with the key
 * applies to its own request, so a peer's refresh that succeeds at its
 * first attempt arrives inside it.
 */
export const DEFAULT_PEER_REFRESH_TIMEOUT_MS = 5_000;
/**
 * The server's default reuse grace window (`BATON_REUSE_GRACE`, see
 * docs/http-api.md): a spent refresh token presented again this soon after
 * its rotation is answered with its successor instead of ending the session.
 */
export const REUSE_GRACE_MS = 10_000;

const OPTION_KEYS: ReadonlySet<string> = new Set([
  'baseUrl',
  'mode',
  'storage',
  'storageKey',
  'fetch',
  'now',
  'clientId',
  'refreshMarginMs',
  'timeoutMs',
  'refreshTimeoutMs',
  'refreshRetryBudgetMs',
  'tokenOrigins',
  'random',
  'dpop',
  'peerRefreshTimeoutMs',
]);

/** Options after {@link validateOptions}: checked, defaults filled in, frozen. */
export interface ClientConfig {
  readonly authBase: string;
  readonly mode: AuthMode;
  readonly storage: TokenStorage | undefined;
  readonly storageKey: string;
  readonly fetch: FetchLike;
  readonly now: () => number;
  readonly clientId: string | undefined;
  readonly refreshMarginMs: number | undefined;
  readonly timeoutMs: number;
  readonly refreshTimeoutMs: number;
  readonly refreshRetryBudgetMs: number;
  readonly tokenOrigins: ReadonlySet<string>;
  readonly random: () => number;
  readonly dpop: boolean;
  readonly peerRefreshTimeoutMs: number;
}

/**
 * Checks `createAuthClient`'s options and fills in the defaults. Misuse (a
 * wrong type, an unknown key, `localStorage` where there is none) is a
 * programmer's error, so it throws a TypeError now rather than at the first
 * request.
 */
export function validateOptions(options: AuthClientOptions): ClientConfig {
  if (typeof options !== 'object' || options === null)
    throw new TypeError('createAuthClient: options must be an object');
  for (const key of Object.keys(options)) {
    if (!OPTION_KEYS.has(key)) throw new TypeError(`createAuthClient: unknown option ${JSON.stringify(key)}`);
  }
  const { baseUrl, mode } = options;
  if (typeof baseUrl !== 'string') throw new TypeError('createAuthClient: baseUrl must be a string URL');
  let base: URL;
  try {
    base = new URL(baseUrl);
  } catch {
    throw new TypeError('createAuthClient: baseUrl must be an absolute URL');
  }
  if (base.protocol !== 'https:' && base.protocol !== 'http:') {
    throw new TypeError('createAuthClient: baseUrl must be http(s)');
  }
  if (base.search !== '' || base.hash !== '')
    throw new TypeError('createAuthClient: baseUrl must not have a query or fragment');
  if (mode !== 'cookie' && mode !== 'token')
    throw new TypeError("createAuthClient: mode must be 'cookie' or 'token'");
  const fn = (name: 'fetch' | 'now' | 'random') => {
    const value = options[name];
    if (value !== undefined && typeof value !== 'function')
      throw new TypeError(`createAuthClient: ${name} must be a function`);
  };
  fn('fetch');
  fn('now');
  fn('random');
  const { clientId, refreshMarginMs, timeoutMs, storageKey, tokenOrigins } = options;
  if (clientId !== undefined && (typeof clientId !== 'string' || clientId === '')) {
    throw new TypeError('createAuthClient: clientId must be a non-empty string');
  }
  if (
    refreshMarginMs !== undefined &&
    !(typeof refreshMarginMs === 'number' && refreshMarginMs >= 0 && refreshMarginMs < Infinity)
  ) {
    throw new TypeError('createAuthClient: refreshMarginMs must be a number of milliseconds >= 0');
  }
  if (timeoutMs !== undefined && !(typeof timeoutMs === 'number' && timeoutMs > 0 && timeoutMs < Infinity)) {
    throw new TypeError('createAuthClient: timeoutMs must be a positive number of milliseconds');
  }
  const { refreshTimeoutMs, refreshRetryBudgetMs } = options;
  if (
    refreshTimeoutMs !== undefined &&
    !(typeof refreshTimeoutMs === 'number' && refreshTimeoutMs > 0 && refreshTimeoutMs < Infinity)
  ) {
    throw new TypeError('createAuthClient: refreshTimeoutMs must be a positive number of milliseconds');
  }
  if (
    refreshRetryBudgetMs !== undefined &&
    !(
      typeof refreshRetryBudgetMs === 'number' &&
      refreshRetryBudgetMs >= 0 &&
      refreshRetryBudgetMs < Infinity
    )
  ) {
    throw new TypeError('createAuthClient: refreshRetryBudgetMs must be a number of milliseconds >= 0');
  }
  if (options.dpop !== undefined && typeof options.dpop !== 'boolean')
    throw new TypeError('createAuthClient: dpop must be a boolean');
  const { peerRefreshTimeoutMs } = options;
  if (
    peerRefreshTimeoutMs !== undefined &&
    !(typeof peerRefreshTimeoutMs === 'number' && peerRefreshTimeoutMs > 0 && peerRefreshTimeoutMs < Infinity)
  ) {
    throw new TypeError('createAuthClient: peerRefreshTimeoutMs must be a positive number of milliseconds');
  }
  if (storageKey !== undefined && (typeof storageKey !== 'string' || storageKey === '')) {
    throw new TypeError('createAuthClient: storageKey must be a non-empty string');
  }
  const origins = new Set<string>([base.origin]);
  if (tokenOrigins !== undefined) {
    if (!Array.isArray(tokenOrigins))
      throw new TypeError('createAuthClient: tokenOrigins must be an array of origins');
    for (const origin of tokenOrigins) {
      let parsed: URL;
      try {
        parsed = new URL(String(origin));
      } catch {
        throw new TypeError(`createAuthClient: tokenOrigins has an invalid origin ${JSON.stringify(origin)}`);
      }
      origins.add(parsed.origin);
    }
  }
  let storage: TokenStorage | undefined;
  if (options.storage === undefined || options.storage === 'memory') storage = undefined;
  else if (options.storage === 'localStorage') storage = webStorage();
  else {
    assertStorage(options.storage);
    storage = options.storage;
  }
  const authBase = base.href.replace(/\/+$/, '');
  const userFetch = options.fetch;
  return Object.freeze({
    authBase,
    mode,
    storage,
    storageKey: storageKey ?? `baton:${mode}:${authBase}:${clientId ?? ''}`,
    // Looked up per call, so a fetch installed or patched after the client was created is honoured.
    fetch:
      userFetch ?? ((input: Request | string | URL, init?: RequestInit) => globalThis.fetch(input, init)),
    now: options.now === undefined ? Date.now : epochClock(options.now),
    clientId,
    refreshMarginMs,
    timeoutMs: timeoutMs ?? DEFAULT_TIMEOUT_MS,
    refreshTimeoutMs:
      refreshTimeoutMs ?? Math.min(timeoutMs ?? DEFAULT_TIMEOUT_MS, DEFAULT_REFRESH_TIMEOUT_MS),
    refreshRetryBudgetMs: refreshRetryBudgetMs ?? DEFAULT_REFRESH_RETRY_BUDGET_MS,
    tokenOrigins: origins,
    random: options.random ?? Math.random,
    dpop: options.dpop ?? true,
    peerRefreshTimeoutMs: peerRefreshTimeoutMs ?? DEFAULT_PEER_REFRESH_TIMEOUT_MS,
  });
}

/**
 * Below this a clock reading cannot be epoch milliseconds (it would be before
 * September 2001): it counts from some recent origin, like `performance.now()`
 * (from when the tab was opened).
 */
export const EPOCH_CLOCK_FLOOR_MS = 1e12;

/**
 * `now` as an epoch clock. Every state this client writes carries its expiry
 * on this clock and other tabs judge it on theirs, so all of them must read
 * the same one: two page clocks started at different moments would each see
 * the other's tokens as expired or as valid forever (a refresh storm, and
 * requests sent with expired tokens). A clock whose reading is below
 * {@link EPOCH_CLOCK_FLOOR_MS} is anchored to `Date.now()` once, here; it keeps
 * its own pace (a monotonic clock stays monotonic). An epoch clock, even a
 * skewed or simulated one, is used as it is.
 */
function epochClock(now: () => number): () => number {
  const sample = now();
  if (typeof sample !== 'number' || !Number.isFinite(sample)) {
    throw new TypeError('createAuthClient: now() must return a finite number of milliseconds');
  }
  if (sample >= EPOCH_CLOCK_FLOOR_MS) return now;
  const offset = Date.now() - sample;
  return () => now() + offset;
}

/** Checks the credentials passed to `login` or `register` (a TypeError for misuse, like options). */
export function assertCredentials(method: string, credentials: { email: string; password: string }): void {
  if (typeof credentials !== 'object' || credentials === null) {
    throw new TypeError(`${method}: expected { email, password }`);
  }
  if (typeof credentials.email !== 'string' || typeof credentials.password !== 'string') {
    throw new TypeError(`${method}: email and password must be strings`);
  }
}
