import { RefreshBackoff } from './backoff.js';
import { singleFlight, withDeadline } from './coordination.js';
import { BatonClientError, type SignOutReason } from './errors.js';
import { type AuthClientEventName, type AuthClientEvents, AuthEvents } from './events.js';
import {
  type AuthHttpContext,
  errorFromResponse,
  parseTokenGrant,
  postAuth,
  readJson,
  type TokenGrant,
} from './http.js';
import { type AuthClientOptions, assertCredentials, type ClientConfig, validateOptions } from './options.js';
import { type DecisionMoment, decideRefresh, nextSeq, type RefreshDecision } from './refresh-decision.js';
import { abortable, buildRequest, isStreamBody, withBearer } from './request.js';
import {
  type LiveState,
  liveState,
  type SessionState,
  type SignedOutState,
  tombstone,
} from './session-state.js';
import { SharedSession } from './shared-session.js';
import type { TokenStorage } from './storage.js';
import { TokenJitter } from './token-jitter.js';
import { watchWakeUps } from './wake-up.js';

export type { AuthClientEventName, AuthClientEvents, EventSource } from './events.js';
export type { AuthClientOptions, AuthMode } from './options.js';

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
/** Result of one refresh, shared by every instance in the realm that joined it. */
type RefreshOutcome =
  | { kind: 'live'; state: LiveState; storage: TokenStorage | undefined }
  | { kind: 'signed_out'; state: SignedOutState; storage: TokenStorage | undefined }
  /** Cookie mode at start-up: there was no session cookie. */
  | { kind: 'none' };

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

/**
 * Orchestrates the modules: every "which state wins, and do we refresh?"
 * question goes to decideRefresh; this class does the I/O around the answer.
 */
class BatonAuthClient {
  private restored = false;
  private restoring: Promise<void> | null = null;
  private disposed = false;
  private readonly session: SharedSession;
  private readonly loaded: Promise<void>;
  private readonly http: AuthHttpContext;
  private readonly events = new AuthEvents();
  private readonly backoff: RefreshBackoff;
  private readonly jitter: TokenJitter;
  private readonly stopWakeUps: () => void;

  constructor(private readonly config: ClientConfig) {
    this.http = {
      baseUrl: config.authBase,
      mode: config.mode,
      fetch: config.fetch,
      timeoutMs: config.timeoutMs,
      now: config.now,
    };
    this.backoff = new RefreshBackoff(config.random, () => void this.refreshIfDue());
    this.jitter = new TokenJitter(config.random);
    this.session = new SharedSession(config, this.events, (next) => {
      this.backoff.reset();
      if (next.kind === 'session') this.restored = true;
    });
    // Bounded: a custom storage that never answers must not hang every call.
    // Its answer is still adopted whenever it comes (readCurrent adopts on arrival).
    this.loaded = withDeadline(
      this.session.readCurrent(),
      config.timeoutMs,
      () => new Error('storage timeout'),
    ).then(
      () => undefined,
      () => undefined,
    );
    // Ask the other tabs for the session they hold: a new tab then starts
    // signed in without a refresh of its own.
    this.session.askPeers();
    this.stopWakeUps = watchWakeUps(config.now, (wake) => {
      if (this.disposed) return;
      if (wake.online) this.backoff.reset();
      if (wake.askPeers) this.session.askPeers();
      void this.refreshIfDue();
    });
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
    if (this.session.state === null) await this.session.peersHeardOrTimedOut;
    const path = '/auth/login';
    // Under the lock, so a refresh of the old session in another tab cannot
    // land after the login and overwrite it (in cookie mode it would also
    // overwrite the new cookie).
    const next = await this.session.withLock(async () => {
      // Token mode: the device token of an earlier login (kept through
      // sign-outs) exempts this login from a lockout that strangers' failed
      // attempts put on the account. In cookie mode the browser sends it as
      // an HttpOnly cookie and JavaScript never holds it.
      const deviceToken =
        this.config.mode === 'token' ? (await this.session.readCurrent())?.deviceToken : undefined;
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
      const previous = await this.session.readCurrent();
      // The server's answer wins (a new device, or another account's); a
      // server that sent none leaves the one we had.
      const state = liveState(
        grant,
        sentAt,
        nextSeq(previous),
        undefined,
        grant.deviceToken ?? previous?.deviceToken ?? deviceToken,
      );
      this.backoff.reset();
      await this.session.commit(state, { login: true });
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
      const current = await this.session.readCurrent();
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
      await this.session.withLock(endSession);
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
    await this.session
      .withLock(() => this.signOutLocally('logout_all'))
      .catch(() => this.signOutLocally('logout_all'));
  }

  async fetch(input: Request | string | URL, init?: RequestInit): Promise<Response> {
    this.assertAlive();
    const request = buildRequest(input, init, this.config.authBase, this.config.tokenOrigins);
    // A stream body is consumed by the first attempt; it cannot be replayed after a 401.
    const replayable = !isStreamBody(init?.body);
    const carried = await abortable(this.freshToken(), request.signal);
    const response = await this.config.fetch(withBearer(request, carried.accessToken, replayable));
    if (response.status !== 401 || !replayable) return response;
    // The request remembers the token it carried: if another request or tab
    // already replaced that token, `refresh` hands back the newer one without
    // a network round trip; otherwise it refreshes once (shared with every
    // other request that got a 401 for the same token). One replay only: a
    // second 401 goes to the caller.
    // The 401's body is not returned from here on: release its connection.
    await response.body?.cancel().catch(() => {});
    const next = await abortable(this.refresh(carried), request.signal);
    return this.config.fetch(withBearer(request, next.accessToken, false));
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
    return this.session.state?.kind === 'session' ? sessionInfo(this.session.state) : null;
  }

  on<E extends AuthClientEventName>(event: E, listener: (payload: AuthClientEvents[E]) => void): () => void {
    return this.events.on(event, listener);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.backoff.reset();
    this.stopWakeUps();
    this.session.close();
    this.events.clear();
  }

  // -------------------------------------------------------------------------
  // Tokens for requests
  // -------------------------------------------------------------------------

  /** The one call to the decision, with the timing of our newest state (the only token ever judged). */
  private decide(
    moment: DecisionMoment,
    current: SessionState | null,
    incoming: SessionState | null,
  ): RefreshDecision {
    const newest = this.session.live();
    return decideRefresh({
      moment,
      current,
      incoming,
      now: this.config.now(),
      timing: {
        refreshMarginMs: this.config.refreshMarginMs,
        jitterMs: newest === null ? 0 : this.jitter.for(newest),
      },
    });
  }

  /** A token to send now: the current one, or a refreshed one when it is due. */
  private async freshToken(): Promise<LiveState> {
    await this.ensureRestored();
    // Signed out as far as we know: another context may have signed in
    // through a shared storage without us hearing of it (a missed event).
    if (this.session.live() === null && this.config.storage !== undefined) await this.session.readCurrent();
    const decision = this.decide('request', this.session.state, null);
    if (decision.action === 'use') return decision.state;
    if (decision.action !== 'refresh') throw this.signedOutError();
    try {
      return await this.refresh(decision.from);
    } catch (error) {
      // Due but not expired: the current token still works, so a failed
      // refresh (offline, 503, backing off) costs this request nothing.
      const now = this.decide('request', this.session.state, null);
      if (isKeepSessionError(error)) {
        if (now.action === 'use') return now.state;
        if (now.action === 'refresh' && now.fallback !== null) return now.fallback;
      }
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
    const decision = this.decide('replace', from, this.session.state);
    if (decision.action === 'use') return decision.state;
    if (decision.action === 'signed_out') throw this.signedOutError();
    this.backoff.assertReady(this.config.now());
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
    return this.session.withLock(async () => {
      // Re-read inside the lock: another tab may have refreshed while we
      // waited, and its token (from storage, or from BroadcastChannel, which
      // withLock has waited for) is then adopted instead of spending a refresh.
      const decision = this.decide('replace', from, await this.session.readCurrent());
      if (decision.action !== 'refresh') return this.settled(decision);
      const base = decision.from;
      if (this.config.mode === 'token' && base?.refreshToken === undefined) return { kind: 'none' };
      const sentAt = this.config.now();
      let grant: TokenGrant;
      try {
        grant = await this.requestRefresh(base);
      } catch (error) {
        if (!(error instanceof BatonClientError && error.code === 'invalid_grant')) throw error;
        return this.onInvalidGrant(base);
      }
      const latest = await this.session.readCurrent();
      const settle = this.decide('granted', base, latest);
      if (settle.action === 'signed_out') {
        // We just rotated a session that was signed out meanwhile: end it
        // again, or in cookie mode our response would have revived the cookie.
        await this.revokeQuietly(grant);
      }
      if (settle.action !== 'commit') return this.settled(settle);
      const next = liveState(
        grant,
        sentAt,
        nextSeq(latest, base),
        base,
        base?.deviceToken ?? latest?.deviceToken,
      );
      await this.session.commit(next);
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
    const latest = await this.session.readCurrent();
    const decision = this.decide('refused', base, latest);
    if (decision.action !== 'end_session' || base === null) return this.settled(decision);
    // The session is over, the device's proof of past logins is not: keep it.
    const state = tombstone('invalid_grant', nextSeq(latest, base), base.deviceToken ?? latest?.deviceToken);
    await this.session.commit(state);
    return { kind: 'signed_out', state, storage: this.config.storage };
  }

  /** The outcome of a decision that needs no new tokens: someone else's state wins, or there is no session. */
  private settled(decision: RefreshDecision): RefreshOutcome {
    if (decision.action === 'use')
      return { kind: 'live', state: decision.state, storage: this.config.storage };
    if (decision.action === 'signed_out' && decision.state !== null) {
      return { kind: 'signed_out', state: decision.state, storage: this.config.storage };
    }
    return { kind: 'none' };
  }

  private async applyOutcome(outcome: RefreshOutcome): Promise<LiveState> {
    if (outcome.kind === 'none') {
      throw new BatonClientError('signed_out', 'There is no session');
    }
    this.session.adopt(outcome.state, 'local');
    // Another instance in this realm did the refresh into its own storage:
    // keep ours current too, or a restart would start from a spent token.
    if (outcome.storage !== this.config.storage && this.session.state === outcome.state) {
      await this.session.writeStorage(outcome.state);
    }
    if (outcome.kind === 'signed_out') throw this.signedOutError();
    this.backoff.reset();
    return this.session.live() ?? outcome.state;
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

  /** Background check (wake-up, retry timer): refresh if due; failures are reported by events only. */
  private async refreshIfDue(): Promise<void> {
    if (this.disposed || !this.restored) return;
    try {
      await this.session.readCurrent();
      const decision = this.decide('request', this.session.state, null);
      if (decision.action === 'refresh') await this.refresh(decision.from);
    } catch {
      // Reported through refreshFailed / signedOut.
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
    if (this.session.state === null) await this.session.peersHeardOrTimedOut;
    if (this.session.state !== null || this.config.mode === 'token') {
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

  private async signOutLocally(reason: SignOutReason): Promise<void> {
    const current = await this.session.readCurrent();
    await this.session.commit(tombstone(reason, nextSeq(current), current?.deviceToken));
    this.restored = true;
  }

  // -------------------------------------------------------------------------
  // Failures
  // -------------------------------------------------------------------------

  /** Records a failed refresh: backoff, `refreshFailed`, and a short background retry. */
  private refreshFailed(error: unknown): unknown {
    if (!(error instanceof BatonClientError) || !isKeepSessionError(error)) return error;
    const failure = this.backoff.fail(error, this.config.now());
    this.events.emit('refreshFailed', {
      error: failure.error,
      retryable: failure.error.retryable,
      retryInMs: failure.delayMs,
      attempt: failure.attempt,
    });
    if (!this.disposed) this.backoff.scheduleRetry(failure);
    return failure.error;
  }

  private signedOutError(): BatonClientError {
    const reason = this.session.state?.kind === 'signed_out' ? this.session.state.reason : undefined;
    return new BatonClientError('signed_out', 'Not signed in', reason === undefined ? {} : { reason });
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
