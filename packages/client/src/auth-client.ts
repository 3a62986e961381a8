import { backoffDelay } from './backoff.js';
import {
  PeerChannel,
  type PeerMessage,
  runExclusive,
  singleFlight,
  startTimer,
  withDeadline,
} from './coordination.js';
import { BatonClientError, type SignOutReason } from './errors.js';
import {
  type AuthHttpContext,
  errorFromResponse,
  type FetchLike,
  parseTokenGrant,
  postAuth,
  readJson,
  type TokenGrant,
} from './http.js';
import {
  CLOCK_BACKWARDS_TOLERANCE_MS,
  defaultMargin,
  isNewer,
  type LiveState,
  maxJitter,
  parseState,
  randomId,
  type SessionState,
  type SignedOutState,
} from './session-state.js';
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
  /** Milliseconds since the epoch (default `Date.now`). Only differences of it are used. */
  now?: () => number;
  /** The OAuth client the session belongs to (server default: `app`). */
  clientId?: string;
  /**
   * Refresh this long before expiry. Default max(30 s, 10 % of the lifetime),
   * at most half the lifetime, plus up to 5 s of jitter.
   */
  refreshMarginMs?: number;
  /** Timeout of each auth request (login, refresh, logout), and so of how long a refresh may hold the cross-tab lock. Default 10 s. */
  timeoutMs?: number;
  /** Origins besides baseUrl's to which `fetch` may send the access token (your API servers). */
  tokenOrigins?: readonly string[];
  /** Uniform random in [0, 1) for jitter (default `Math.random`); injectable for tests. */
  random?: () => number;
}

/** What `getSession()` and `login()` report; never a token. */
export interface SessionInfo {
  sessionId: string | undefined;
  /** Local-clock time (ms) when the access token expires. */
  expiresAt: number;
  /** Local-clock time (ms) when the access token was requested. */
  obtainedAt: number;
  scope: string | undefined;
}

/** A user as `register()` returns it. */
export interface BatonUser {
  id: string;
  email: string;
  created_at: string;
}

/** Where an event came from: this client, or another tab/instance sharing the session. */
export type EventSource = 'local' | 'remote';

/** Events and their payloads. */
export interface AuthClientEvents {
  /** A new access token for the same session (refreshed here or in another tab). */
  tokenRefreshed: { sessionId: string | undefined; expiresAt: number; source: EventSource };
  /** A refresh failed. When `retryable`, the session is kept and the client retries after `retryInMs`. */
  refreshFailed: { error: BatonClientError; retryable: boolean; retryInMs: number; attempt: number };
  /** The session ended: logout, logout everywhere, or the server refused the refresh token. */
  signedOut: { reason: SignOutReason; source: EventSource };
  /** Signed in to a (different) session, or signed out. */
  sessionChanged: { signedIn: boolean; sessionId: string | undefined; source: EventSource };
}

/** Name of an event of {@link AuthClientEvents}. */
export type AuthClientEventName = keyof AuthClientEvents;

/** The client returned by {@link createAuthClient}. Its methods are bound: destructuring is fine. */
export interface AuthClient {
  /** Creates an account. Does not sign in. */
  register(credentials: { email: string; password: string }): Promise<BatonUser>;
  /** Signs in; every tab sharing the session follows. */
  login(credentials: { email: string; password: string; scope?: string }): Promise<SessionInfo>;
  /**
   * Ends this session, on the server and in every tab. Local sign-out always
   * happens; `revoked` says whether the server confirmed it.
   */
  logout(): Promise<{ revoked: boolean }>;
  /** Ends every session of the user (`POST /auth/logout-all`), then signs out here and in every tab. */
  logoutAll(): Promise<void>;
  /**
   * fetch with `Authorization: Bearer`, refreshing first when the token is due
   * and once more on a 401. Relative URLs resolve against baseUrl. Rejects
   * with a BatonClientError (`signed_out`, or a retryable refresh failure
   * while the token is expired); HTTP errors come back as responses.
   */
  fetch(input: Request | string | URL, init?: RequestInit): Promise<Response>;
  /** A valid access token (refreshed if due), or null when signed out. */
  getAccessToken(): Promise<string | null>;
  /** What is known right now, without any I/O; null when signed out or not yet restored. */
  getSession(): SessionInfo | null;
  /** Subscribes to an event; returns the unsubscribe function. */
  on<E extends AuthClientEventName>(event: E, listener: (payload: AuthClientEvents[E]) => void): () => void;
  /** Stops listening to other tabs and to the page, and clears timers. Later calls reject with `disposed`. */
  dispose(): void;
}

/** After waiting for the lock: how long to wait for the previous holder's result to arrive over BroadcastChannel. */
const HOLDER_WAIT_MS = 500;
/** On start-up with nothing stored: how long to wait for another tab to share its session. */
const PEER_WAIT_MS = 150;
/** Background retries after failed refreshes; after that, retries happen on demand (a request, a wake-up). */
const MAX_BACKGROUND_RETRIES = 6;

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
  'tokenOrigins',
  'random',
]);
const EVENT_NAMES: ReadonlySet<string> = new Set([
  'tokenRefreshed',
  'refreshFailed',
  'signedOut',
  'sessionChanged',
]);

/** Result of one refresh, shared by every instance in the realm that joined it. */
type RefreshOutcome =
  | { kind: 'live'; state: LiveState; storage: TokenStorage | undefined }
  | { kind: 'signed_out'; state: SignedOutState; storage: TokenStorage | undefined }
  /** Cookie mode at start-up: there was no session cookie. */
  | { kind: 'none' };

interface Config {
  authBase: string;
  mode: AuthMode;
  storage: TokenStorage | undefined;
  storageKey: string;
  fetch: FetchLike;
  now: () => number;
  clientId: string | undefined;
  refreshMarginMs: number | undefined;
  timeoutMs: number;
  tokenOrigins: ReadonlySet<string>;
  random: () => number;
}

/**
 * Creates a Baton client: an authenticated `fetch` that checks the access
 * token's expiry before each request, refreshes it once however many requests
 * and tabs need it, retries a 401 once, and signs out only when the server
 * says the session is over.
 *
 * Misuse of options (wrong types, unknown keys, `localStorage` where there is
 * none) throws a TypeError here, not at the first request.
 */
export function createAuthClient(options: AuthClientOptions): AuthClient {
  const client = new BatonAuthClient(validateOptions(options));
  return Object.freeze({
    register: client.register.bind(client),
    login: client.login.bind(client),
    logout: client.logout.bind(client),
    logoutAll: client.logoutAll.bind(client),
    fetch: client.fetch.bind(client),
    getAccessToken: client.getAccessToken.bind(client),
    getSession: client.getSession.bind(client),
    on: client.on.bind(client),
    dispose: client.dispose.bind(client),
  });
}

class BatonAuthClient {
  /** The newest state known to this instance; storage and peers can only replace it with a newer one. */
  private state: SessionState | null = null;
  private readonly loaded: Promise<void>;
  private restored = false;
  private restoring: Promise<void> | null = null;
  private readonly peersHeard: Promise<void>;
  private markPeersHeard: () => void = () => {};
  private readonly self: string;
  private readonly channel: PeerChannel;
  private readonly http: AuthHttpContext;
  private readonly listeners = new Map<string, Set<(payload: never) => void>>();
  private backoff: { attempt: number; since: number; until: number; error: BatonClientError | null } = {
    attempt: 0,
    since: 0,
    until: 0,
    error: null,
  };
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private jitter: { id: string; ms: number } | null = null;
  private lastHello = Number.NEGATIVE_INFINITY;
  private disposed = false;
  private readonly cleanups: (() => void)[] = [];

  constructor(private readonly config: Config) {
    this.self = randomId();
    this.http = {
      baseUrl: config.authBase,
      mode: config.mode,
      fetch: config.fetch,
      timeoutMs: config.timeoutMs,
      now: config.now,
    };
    this.channel = new PeerChannel(`baton:${config.storageKey}`, this.self, (message) =>
      this.onPeerMessage(message),
    );
    this.cleanups.push(() => this.channel.close());
    this.peersHeard = this.channel.available
      ? new Promise<void>((resolve) => {
          const timer = startTimer(resolve, PEER_WAIT_MS);
          this.markPeersHeard = () => {
            clearTimeout(timer);
            resolve();
          };
          this.cleanups.push(this.markPeersHeard);
        })
      : Promise.resolve();
    // Bounded: a custom storage that never answers must not hang every call.
    // Its answer is still adopted whenever it comes (readCurrent adopts on arrival).
    this.loaded = withDeadline(this.readCurrent(), config.timeoutMs, () => new Error('storage timeout')).then(
      () => undefined,
      () => undefined,
    );
    // Ask the other tabs for the session they hold: a new tab then starts
    // signed in without a refresh of its own.
    this.channel.post({ t: 'hello', from: this.self });
    this.listenForWakeUps();
    const unsubscribe = config.storage?.subscribe?.(config.storageKey, (raw) => {
      const next = parseState(raw);
      if (next !== null) this.adopt(next, 'remote');
    });
    if (unsubscribe !== undefined) this.cleanups.push(unsubscribe);
  }

  // -------------------------------------------------------------------------
  // Public API
  // -------------------------------------------------------------------------

  async register(credentials: { email: string; password: string }): Promise<BatonUser> {
    this.assertAlive();
    assertCredentials('register', credentials);
    const path = '/auth/register';
    const response = await postAuth(this.http, path, {
      email: credentials.email,
      password: credentials.password,
    });
    if (!response.ok) throw await errorFromResponse(response, path, this.config.now());
    const body = (await readJson(response)) as { user?: BatonUser } | undefined;
    if (typeof body?.user?.id !== 'string') {
      throw new BatonClientError('invalid_response', `${path} returned no user`, { status: response.status });
    }
    return body.user;
  }

  async login(credentials: { email: string; password: string; scope?: string }): Promise<SessionInfo> {
    this.assertAlive();
    assertCredentials('login', credentials);
    if (credentials.scope !== undefined && typeof credentials.scope !== 'string') {
      throw new TypeError('login: scope must be a string');
    }
    await this.loaded;
    // Knowing nothing yet (a page just opened), hear the other tabs first: our
    // login must be numbered after their newest state, or a sign-out they
    // remember, arriving late, would outrank it.
    if (this.state === null) await this.peersHeard;
    const path = '/auth/login';
    // Under the lock, so a refresh of the old session in another tab cannot
    // land after the login and overwrite it (in cookie mode it would also
    // overwrite the new cookie).
    const next = await this.withLock(async () => {
      // Token mode: the device token of an earlier login (kept through
      // sign-outs) exempts this login from a lockout that strangers' failed
      // attempts put on the account. In cookie mode the browser sends it as
      // an HttpOnly cookie and JavaScript never holds it.
      const deviceToken = this.config.mode === 'token' ? (await this.readCurrent())?.deviceToken : undefined;
      const sentAt = this.config.now();
      const response = await postAuth(this.http, path, {
        email: credentials.email,
        password: credentials.password,
        ...(this.config.clientId === undefined ? {} : { client_id: this.config.clientId }),
        ...(this.config.mode === 'cookie' ? { mode: 'cookie' } : {}),
        ...(credentials.scope === undefined ? {} : { scope: credentials.scope }),
        ...(deviceToken === undefined ? {} : { device_token: deviceToken }),
      });
      if (!response.ok) throw await errorFromResponse(response, path, this.config.now());
      const grant = parseTokenGrant(await readJson(response), this.config.mode, path);
      const previous = await this.readCurrent();
      // The server's answer wins (a new device, or another account's); a
      // server that sent none leaves the one we had.
      const state = this.liveState(grant, sentAt, (previous?.seq ?? 0) + 1, undefined, {
        deviceToken: grant.deviceToken ?? previous?.deviceToken ?? deviceToken,
      });
      this.resetBackoff();
      await this.commit(state, { login: true });
      return state;
    });
    this.restored = true;
    return sessionInfo(next);
  }

  async logout(): Promise<{ revoked: boolean }> {
    this.assertAlive();
    await this.loaded;
    let revoked = false;
    const endSession = async () => {
      const current = await this.readCurrent();
      const live = current?.kind === 'session' ? current : null;
      try {
        let response: Response | undefined;
        if (this.config.mode === 'token' && live?.refreshToken !== undefined) {
          response = await postAuth(this.http, '/auth/logout', { refresh_token: live.refreshToken });
        } else if (this.config.mode === 'cookie') {
          // The cookie identifies the session; the bearer token is a fallback
          // for when the cookie is already gone (it ends the session too).
          response = await postAuth(
            this.http,
            '/auth/logout',
            {},
            live === null ? {} : { Authorization: `Bearer ${live.accessToken}` },
          );
        }
        revoked = response?.ok === true;
        await response?.body?.cancel();
      } catch {
        // Offline: the local sign-out below still happens; `revoked` tells the caller.
      }
      await this.signOutLocally('logout');
    };
    try {
      await this.withLock(endSession);
    } catch (error) {
      // The lock could not be had (another tab is stuck): signing out must still work.
      if (!(error instanceof BatonClientError && error.code === 'timeout')) throw error;
      await endSession();
    }
    return { revoked };
  }

  async logoutAll(): Promise<void> {
    this.assertAlive();
    const path = '/auth/logout-all';
    const response = await this.fetch(path, {
      method: 'POST',
      // Cross-origin baseUrl: the response's Set-Cookie (clearing the refresh cookie) needs credentials.
      ...(this.config.mode === 'cookie' ? { credentials: 'include' as const } : {}),
    });
    // A 401 even after a refresh means the session is already gone: sign out all the same.
    if (!response.ok && response.status !== 401)
      throw await errorFromResponse(response, path, this.config.now());
    await response.body?.cancel();
    await this.withLock(() => this.signOutLocally('logout_all')).catch(() =>
      this.signOutLocally('logout_all'),
    );
  }

  async fetch(input: Request | string | URL, init?: RequestInit): Promise<Response> {
    this.assertAlive();
    const request = this.buildRequest(input, init);
    // A stream body is consumed by the first attempt; it cannot be replayed after a 401.
    const replayable = !isStreamBody(init?.body);
    const carried = await abortable(this.freshToken(), request.signal);
    const response = await this.send(request, carried, replayable);
    if (response.status !== 401 || !replayable) return response;
    // The request remembers the token it carried: if another request or tab
    // already replaced that token, `refresh` hands back the newer one without
    // a network round trip; otherwise it refreshes once (shared with every
    // other request that got a 401 for the same token). One replay only: a
    // second 401 goes to the caller.
    // The 401's body is not returned from here on: release its connection.
    await response.body?.cancel().catch(() => {});
    const next = await abortable(this.refresh(carried), request.signal);
    return this.send(request, next, false);
  }

  async getAccessToken(): Promise<string | null> {
    this.assertAlive();
    try {
      return (await this.freshToken()).accessToken;
    } catch (error) {
      if (error instanceof BatonClientError && error.code === 'signed_out') return null;
      throw error;
    }
  }

  getSession(): SessionInfo | null {
    return this.state?.kind === 'session' ? sessionInfo(this.state) : null;
  }

  on<E extends AuthClientEventName>(event: E, listener: (payload: AuthClientEvents[E]) => void): () => void {
    if (!EVENT_NAMES.has(event)) throw new TypeError(`on: unknown event ${JSON.stringify(event)}`);
    if (typeof listener !== 'function') throw new TypeError('on: listener must be a function');
    let set = this.listeners.get(event);
    if (set === undefined) {
      set = new Set();
      this.listeners.set(event, set);
    }
    const entry = listener as (payload: never) => void;
    set.add(entry);
    return () => {
      set.delete(entry);
    };
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    clearTimeout(this.retryTimer);
    for (const cleanup of this.cleanups.splice(0)) cleanup();
    this.listeners.clear();
  }

  // -------------------------------------------------------------------------
  // Tokens for requests
  // -------------------------------------------------------------------------

  /** A token to send now: the current one, or a refreshed one when it is due. */
  private async freshToken(): Promise<LiveState> {
    await this.ensureRestored();
    let live = this.live();
    // Signed out as far as we know: another context may have signed in
    // through a shared storage without us hearing of it (a missed event).
    if (live === null && this.config.storage !== undefined) {
      await this.readCurrent();
      live = this.live();
    }
    if (live === null) throw this.signedOutError();
    if (!this.isDue(live)) return live;
    try {
      return await this.refresh(live);
    } catch (error) {
      // Due but not expired: the current token still works, so a failed
      // refresh (offline, 503, backing off) costs this request nothing.
      const current = this.live();
      if (current !== null && !this.isExpired(current) && isKeepSessionError(error)) return current;
      throw error;
    }
  }

  /**
   * Replaces the token `from` (what a caller saw; null = cookie start-up). If
   * a newer token already exists it is returned without a request. Otherwise
   * one refresh runs per token in this realm (concurrent callers share it) and
   * one at a time across tabs.
   */
  private async refresh(from: LiveState | null): Promise<LiveState> {
    this.assertAlive();
    const current = this.state;
    if (current?.kind === 'session' && from !== null && isNewer(current, from) && !this.isDue(current))
      return current;
    if (current?.kind === 'signed_out' && (from === null || isNewer(current, from)))
      throw this.signedOutError();
    this.assertNotBackingOff();
    let outcome: RefreshOutcome;
    try {
      outcome = await singleFlight(this.flightKey(from), () => this.performRefresh(from));
    } catch (error) {
      throw this.refreshFailed(error);
    }
    return this.applyOutcome(outcome);
  }

  private flightKey(from: LiveState | null): string {
    // One flight per refresh token (token mode) or per cookie jar (cookie
    // mode), shared by every instance in this realm.
    const token =
      this.config.mode === 'token'
        ? `rt:${from?.refreshToken ?? ''}`
        : `cookie:${this.config.clientId ?? ''}`;
    return `${this.config.authBase}\n${token}`;
  }

  private performRefresh(from: LiveState | null): Promise<RefreshOutcome> {
    return this.withLock(async () => {
      // Re-read inside the lock: another tab may have refreshed while we
      // waited, and its token (from storage, or from BroadcastChannel, which
      // withLock has waited for) is then adopted instead of spending a refresh.
      const current = await this.readCurrent();
      if (current?.kind === 'signed_out' && (from === null || isNewer(current, from))) {
        return { kind: 'signed_out', state: current, storage: this.config.storage };
      }
      if (current?.kind === 'session' && (from === null || isNewer(current, from)) && !this.isDue(current)) {
        return { kind: 'live', state: current, storage: this.config.storage };
      }
      // Refresh from the newest refresh token we know of.
      const base = current?.kind === 'session' && (from === null || !isNewer(from, current)) ? current : from;
      if (this.config.mode === 'token' && base?.refreshToken === undefined) return { kind: 'none' };
      const sentAt = this.config.now();
      let grant: TokenGrant;
      try {
        grant = await this.requestRefresh(base);
      } catch (error) {
        if (!(error instanceof BatonClientError && error.code === 'invalid_grant')) throw error;
        return this.onInvalidGrant(base);
      }
      // Compare and set: if the session was replaced meanwhile (a login or a
      // logout in another context), theirs wins and our tokens are dropped.
      const latest = await this.readCurrent();
      if (latest !== null && base !== null && isNewer(latest, base)) {
        if (latest.kind === 'signed_out') {
          // We just rotated a session that was signed out meanwhile: end it
          // again, or in cookie mode our response would have revived the cookie.
          await this.revokeQuietly(grant);
          return { kind: 'signed_out', state: latest, storage: this.config.storage };
        }
        return { kind: 'live', state: latest, storage: this.config.storage };
      }
      const next = this.liveState(grant, sentAt, Math.max(latest?.seq ?? 0, base?.seq ?? 0) + 1, base, {
        deviceToken: base?.deviceToken ?? latest?.deviceToken,
      });
      await this.commit(next);
      return { kind: 'live', state: next, storage: this.config.storage };
    });
  }

  private async requestRefresh(base: LiveState | null): Promise<TokenGrant> {
    const path = '/auth/refresh';
    const body = this.config.mode === 'token' ? { refresh_token: base?.refreshToken } : {};
    const response = await postAuth(this.http, path, body);
    if (!response.ok) throw await errorFromResponse(response, path, this.config.now());
    return parseTokenGrant(await readJson(response), this.config.mode, path);
  }

  /** The server refused the refresh token. Before ending the session, check whether someone else already rotated it. */
  private async onInvalidGrant(base: LiveState | null): Promise<RefreshOutcome> {
    const latest = await this.readCurrent();
    if (latest?.kind === 'session' && (base === null || isNewer(latest, base))) {
      return { kind: 'live', state: latest, storage: this.config.storage };
    }
    if (latest?.kind === 'signed_out' && (base === null || isNewer(latest, base))) {
      return { kind: 'signed_out', state: latest, storage: this.config.storage };
    }
    // Cookie start-up without a session cookie: nothing to end, nobody to tell.
    if (base === null) return { kind: 'none' };
    // The session is over, the device's proof of past logins is not: keep it.
    const state = this.tombstone(
      'invalid_grant',
      Math.max(latest?.seq ?? 0, base.seq) + 1,
      base.deviceToken ?? latest?.deviceToken,
    );
    await this.commit(state);
    return { kind: 'signed_out', state, storage: this.config.storage };
  }

  private async applyOutcome(outcome: RefreshOutcome): Promise<LiveState> {
    if (outcome.kind === 'none') {
      throw new BatonClientError('signed_out', 'There is no session');
    }
    this.adopt(outcome.state, 'local');
    // Another instance in this realm did the refresh into its own storage:
    // keep ours current too, or a restart would start from a spent token.
    if (outcome.storage !== this.config.storage && this.state === outcome.state) {
      await this.writeStorage(outcome.state);
    }
    if (outcome.kind === 'signed_out') throw this.signedOutError();
    this.resetBackoff();
    return this.live() ?? outcome.state;
  }

  private async revokeQuietly(grant: TokenGrant): Promise<void> {
    try {
      const body = grant.refreshToken === undefined ? {} : { refresh_token: grant.refreshToken };
      const response = await postAuth(this.http, '/auth/logout', body, {
        Authorization: `Bearer ${grant.accessToken}`,
      });
      await response.body?.cancel();
    } catch {
      // Best effort: the session also ends at its idle timeout.
    }
  }

  // -------------------------------------------------------------------------
  // Restoring a session at start-up
  // -------------------------------------------------------------------------

  private async ensureRestored(): Promise<void> {
    await this.loaded;
    if (this.restored) return;
    this.restoring ??= this.restore().finally(() => {
      this.restoring = null;
    });
    await this.restoring;
  }

  private async restore(): Promise<void> {
    if (this.state === null) await this.peersHeard;
    if (this.state !== null || this.config.mode === 'token') {
      this.restored = true;
      return;
    }
    // Cookie mode with nothing known: only the server can tell whether the
    // HttpOnly cookie holds a session, so ask it once.
    try {
      await this.refresh(null);
      this.restored = true;
    } catch (error) {
      if (error instanceof BatonClientError && error.code === 'signed_out') this.restored = true;
      else throw error;
    }
  }

  // -------------------------------------------------------------------------
  // State, storage and peers
  // -------------------------------------------------------------------------

  private live(): LiveState | null {
    return this.state?.kind === 'session' ? this.state : null;
  }

  /** Reads storage (when there is one) and adopts its state if newer; returns the newest known state. */
  private async readCurrent(): Promise<SessionState | null> {
    const storage = this.config.storage;
    if (storage !== undefined) {
      let raw: string | null | undefined = null;
      try {
        raw = await storage.get(this.config.storageKey);
      } catch {
        // An unreadable storage is treated like an empty one; the in-memory state stands.
      }
      const stored = parseState(raw);
      if (stored !== null) this.adopt(stored, 'remote');
    }
    return this.state;
  }

  /**
   * Makes `next` current if it is newer than what we have, and tells
   * listeners what changed. Every path that changes the state goes through
   * here, so events fire once per change whatever its route (our refresh, a
   * shared flight, a peer's message, a storage event).
   */
  private adopt(next: SessionState, source: EventSource, options: { login?: boolean } = {}): boolean {
    const previous = this.state;
    if (!isNewer(next, previous)) return false;
    this.state = next;
    const before = previous?.kind === 'session' ? previous : null;
    if (next.kind === 'session') {
      this.resetBackoff();
      this.restored = true;
      if (options.login === true || before === null || before.sessionId !== next.sessionId) {
        this.emit('sessionChanged', { signedIn: true, sessionId: next.sessionId, source });
      } else if (before.accessToken !== next.accessToken) {
        this.emit('tokenRefreshed', { sessionId: next.sessionId, expiresAt: next.expiresAt, source });
      }
    } else if (before !== null) {
      this.resetBackoff();
      this.emit('signedOut', { reason: next.reason, source });
      this.emit('sessionChanged', { signedIn: false, sessionId: undefined, source });
    }
    return true;
  }

  /** Adopts a state we produced, stores it, then tells the other contexts (storage first, so a peer that re-reads finds it). */
  private async commit(next: SessionState, options: { login?: boolean } = {}): Promise<void> {
    this.adopt(next, 'local', options);
    await this.writeStorage(next);
    this.channel.post({ t: 'state', from: this.self, state: next });
  }

  private async writeStorage(next: SessionState): Promise<void> {
    if (this.config.storage === undefined) return;
    try {
      await this.config.storage.set(this.config.storageKey, JSON.stringify(next));
    } catch {
      // A full or locked storage must not end the session: it lives on in memory.
    }
  }

  private async signOutLocally(reason: SignOutReason): Promise<void> {
    const current = await this.readCurrent();
    await this.commit(this.tombstone(reason, (current?.seq ?? 0) + 1, current?.deviceToken));
    this.restored = true;
  }

  private onPeerMessage(message: PeerMessage): void {
    if (this.disposed) return;
    if (message.t === 'state') {
      this.adopt(message.state, 'remote');
      this.markPeersHeard();
    } else if (message.t === 'hello' && this.state !== null) {
      this.channel.post({ t: 'state', from: this.self, state: this.state });
    }
  }

  /**
   * Runs `fn` under the cross-tab lock, announcing it to peers: a tab that
   * waited for us then waits (briefly) for our `released`, which we send only
   * after our new state, so it adopts our token instead of refreshing again.
   */
  private withLock<T>(fn: () => Promise<T>): Promise<T> {
    const releasesBefore = this.channel.releaseCount;
    const holdTimeoutMs = this.config.timeoutMs * 2 + HOLDER_WAIT_MS;
    return runExclusive(
      `baton-refresh:${this.config.storageKey}`,
      {
        holdTimeoutMs,
        waitTimeoutMs: holdTimeoutMs * 2,
        storageLock: this.config.storage?.lock?.bind(this.config.storage),
      },
      async (waited) => {
        const hold = randomId();
        this.channel.post({ t: 'lock', from: this.self, phase: 'acquired', hold });
        try {
          if (waited) await this.channel.waitForHolders(releasesBefore, HOLDER_WAIT_MS);
          return await fn();
        } finally {
          this.channel.post({ t: 'lock', from: this.self, phase: 'released', hold });
        }
      },
    );
  }

  private liveState(
    grant: TokenGrant,
    sentAt: number,
    seq: number,
    base: LiveState | null | undefined,
    carried: { deviceToken: string | undefined },
  ): LiveState {
    const state: LiveState = {
      v: 1,
      kind: 'session',
      seq,
      id: randomId(),
      accessToken: grant.accessToken,
      // Measured from when the request was *sent*, on our own clock: the
      // server issued the token after that, so this errs early, never late,
      // and the JWT's `exp` (the server's clock) is never compared with ours.
      obtainedAt: sentAt,
      expiresAt: sentAt + grant.expiresIn * 1000,
    };
    if (grant.refreshToken !== undefined) state.refreshToken = grant.refreshToken;
    const sessionId = grant.sessionId ?? base?.sessionId;
    if (sessionId !== undefined) state.sessionId = sessionId;
    const scope = grant.scope ?? base?.scope;
    if (scope !== undefined) state.scope = scope;
    if (carried.deviceToken !== undefined) state.deviceToken = carried.deviceToken;
    return state;
  }

  /** `deviceToken` is carried into the tombstone: it outlives the session (see SignedOutState). */
  private tombstone(reason: SignOutReason, seq: number, deviceToken: string | undefined): SignedOutState {
    const state: SignedOutState = { v: 1, kind: 'signed_out', seq, id: randomId(), reason };
    if (deviceToken !== undefined) state.deviceToken = deviceToken;
    return state;
  }

  // -------------------------------------------------------------------------
  // Timing
  // -------------------------------------------------------------------------

  private isDue(live: LiveState): boolean {
    const now = this.config.now();
    // The clock was set back: our expiry arithmetic no longer holds. Refresh
    // to re-anchor it rather than trust a token that may be long expired.
    if (now < live.obtainedAt - CLOCK_BACKWARDS_TOLERANCE_MS) return true;
    const lifetime = live.expiresAt - live.obtainedAt;
    const margin =
      this.config.refreshMarginMs === undefined
        ? defaultMargin(lifetime)
        : Math.min(this.config.refreshMarginMs, lifetime / 2);
    return now >= live.expiresAt - margin - this.jitterFor(live);
  }

  private isExpired(live: LiveState): boolean {
    return this.config.now() >= live.expiresAt;
  }

  /** Jitter is drawn once per token, so repeated checks agree with each other. */
  private jitterFor(live: LiveState): number {
    if (this.jitter?.id !== live.id) {
      this.jitter = { id: live.id, ms: this.config.random() * maxJitter(live.expiresAt - live.obtainedAt) };
    }
    return this.jitter.ms;
  }

  // -------------------------------------------------------------------------
  // Failures and backoff
  // -------------------------------------------------------------------------

  private assertNotBackingOff(): void {
    const { error, since, until } = this.backoff;
    const now = this.config.now();
    // `since <= now`: a clock set back must not stretch a backoff into hours.
    if (error !== null && since <= now && now < until) {
      throw new BatonClientError(error.code, error.message, {
        ...(error.status === undefined ? {} : { status: error.status }),
        retryable: error.retryable,
        retryAfterMs: until - now,
        cause: error,
      });
    }
  }

  /** Records a failed refresh: backoff, `refreshFailed`, and a short background retry. */
  private refreshFailed(error: unknown): unknown {
    if (!(error instanceof BatonClientError) || !isKeepSessionError(error)) return error;
    const attempt = this.backoff.attempt + 1;
    const delay = backoffDelay(attempt, this.config.random, error.retryAfterMs);
    const now = this.config.now();
    const failure = new BatonClientError(error.code, error.message, {
      ...(error.status === undefined ? {} : { status: error.status }),
      retryable: error.retryable,
      retryAfterMs: delay,
      cause: error.cause ?? error,
    });
    this.backoff = { attempt, since: now, until: now + delay, error: failure };
    this.emit('refreshFailed', { error: failure, retryable: failure.retryable, retryInMs: delay, attempt });
    if (failure.retryable && attempt <= MAX_BACKGROUND_RETRIES && !this.disposed) {
      clearTimeout(this.retryTimer);
      // A short timer: if the laptop sleeps through it, the wake-up events below do the same job.
      this.retryTimer = startTimer(
        () => {
          this.retryTimer = undefined;
          void this.refreshIfDue();
        },
        delay,
        { background: true },
      );
    }
    return failure;
  }

  private resetBackoff(): void {
    this.backoff = { attempt: 0, since: 0, until: 0, error: null };
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }

  private signedOutError(): BatonClientError {
    const reason = this.state?.kind === 'signed_out' ? this.state.reason : undefined;
    return new BatonClientError('signed_out', 'Not signed in', reason === undefined ? {} : { reason });
  }

  // -------------------------------------------------------------------------
  // Wake-ups: no long timers, re-check when the page comes back
  // -------------------------------------------------------------------------

  private listenForWakeUps(): void {
    const scope = globalThis as unknown as Partial<EventTarget>;
    const doc = (globalThis as { document?: Partial<Document> }).document;
    const onWake = (event: Event) => {
      if (this.disposed) return;
      if (event.type === 'visibilitychange' && doc?.visibilityState === 'hidden') return;
      // Back online: a backoff computed while offline is no reason to wait.
      if (event.type === 'online') this.resetBackoff();
      // A frozen or sleeping tab may have missed messages: ask peers again (at most once a second).
      const now = this.config.now();
      if (Math.abs(now - this.lastHello) > 1_000) {
        this.lastHello = now;
        this.channel.post({ t: 'hello', from: this.self });
      }
      void this.refreshIfDue();
    };
    if (typeof scope.addEventListener === 'function') {
      for (const type of ['online', 'pageshow', 'focus']) {
        scope.addEventListener(type, onWake);
        this.cleanups.push(() => scope.removeEventListener?.(type, onWake));
      }
    }
    if (doc !== undefined && typeof doc.addEventListener === 'function') {
      doc.addEventListener('visibilitychange', onWake);
      this.cleanups.push(() => doc.removeEventListener?.('visibilitychange', onWake));
    }
  }

  /** Background check (wake-up, retry timer): refresh if due; failures are reported by events only. */
  private async refreshIfDue(): Promise<void> {
    if (this.disposed || !this.restored) return;
    try {
      await this.readCurrent();
      const live = this.live();
      if (live !== null && this.isDue(live)) await this.refresh(live);
    } catch {
      // Reported through refreshFailed / signedOut.
    }
  }

  // -------------------------------------------------------------------------
  // Requests
  // -------------------------------------------------------------------------

  private buildRequest(input: Request | string | URL, init: RequestInit | undefined): Request {
    const isRequest = typeof Request !== 'undefined' && input instanceof Request;
    const url = isRequest ? new URL(input.url) : new URL(String(input), `${this.config.authBase}/`);
    if (!this.config.tokenOrigins.has(url.origin)) {
      // Never hand the access token to a third party by accident.
      throw new TypeError(
        `fetch: ${url.origin} is not baseUrl's origin or one of tokenOrigins; use the global fetch for other origins`,
      );
    }
    return isRequest ? new Request(input, init) : new Request(url.href, init);
  }

  private send(request: Request, state: LiveState, keepOriginal: boolean): Promise<Response> {
    const attempt = keepOriginal ? request.clone() : request;
    const headers = new Headers(attempt.headers);
    headers.set('Authorization', `Bearer ${state.accessToken}`);
    return this.config.fetch(new Request(attempt, { headers }));
  }

  private emit<E extends AuthClientEventName>(event: E, payload: AuthClientEvents[E]): void {
    const set = this.listeners.get(event);
    if (set === undefined) return;
    for (const listener of [...set]) {
      try {
        (listener as (payload: AuthClientEvents[E]) => void)(payload);
      } catch (error) {
        // A throwing listener must not break the refresh that called it; surface it like an uncaught error.
        const report = (globalThis as { reportError?: (e: unknown) => void }).reportError;
        if (typeof report === 'function') report(error);
        else queueMicrotask(() => Promise.reject(error));
      }
    }
  }

  private assertAlive(): void {
    if (this.disposed) throw new BatonClientError('disposed', 'This client was disposed');
  }
}

/** Errors after which the session is kept: everything except "the session is over". */
function isKeepSessionError(error: unknown): boolean {
  return error instanceof BatonClientError && error.code !== 'signed_out' && error.code !== 'disposed';
}

function sessionInfo(state: LiveState): SessionInfo {
  return {
    sessionId: state.sessionId,
    expiresAt: state.expiresAt,
    obtainedAt: state.obtainedAt,
    scope: state.scope,
  };
}

function isStreamBody(body: unknown): boolean {
  if (body === null || typeof body !== 'object') return false;
  if (typeof ReadableStream !== 'undefined' && body instanceof ReadableStream) return true;
  // Node streams and async iterables, which undici also accepts as bodies.
  return Symbol.asyncIterator in body || typeof (body as { pipe?: unknown }).pipe === 'function';
}

/** Lets the caller's AbortSignal cut short a wait for a refresh (the refresh itself goes on for the others). */
function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

function assertCredentials(method: string, credentials: { email: string; password: string }): void {
  if (typeof credentials !== 'object' || credentials === null) {
    throw new TypeError(`${method}: expected { email, password }`);
  }
  if (typeof credentials.email !== 'string' || typeof credentials.password !== 'string') {
    throw new TypeError(`${method}: email and password must be strings`);
  }
}

function validateOptions(options: AuthClientOptions): Config {
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
    now: options.now ?? Date.now,
    clientId,
    refreshMarginMs,
    timeoutMs: timeoutMs ?? 10_000,
    tokenOrigins: origins,
    random: options.random ?? Math.random,
  });
}
