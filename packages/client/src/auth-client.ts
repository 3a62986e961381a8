import type { AuthClient, BatonUser, SessionInfo } from './auth-client-types.js';
import { requestLogin, requestLogout, requestRegister } from './auth-endpoints.js';
import { RefreshBackoff } from './backoff.js';
import { withDeadline } from './coordination.js';
import { DpopAgent, type DpopStatus } from './dpop-agent.js';
import { BatonClientError, type SignOutReason } from './errors.js';
import { type AuthClientEventName, type AuthClientEvents, AuthEvents } from './events.js';
import { type AuthHttpContext, errorFromResponse } from './http.js';
import { type AuthClientOptions, assertCredentials, type ClientConfig, validateOptions } from './options.js';
import { isNewer, nextSeq } from './refresh-decision.js';
import { isKeepSessionError, Refresher } from './refresher.js';
import { abortable, buildRequest, callSignal, isStreamBody, withBearer } from './request.js';
import { type LiveState, liveState, tombstone } from './session-state.js';
import { SharedSession } from './shared-session.js';
import { TokenJitter } from './token-jitter.js';
import { watchWakeUps } from './wake-up.js';

export type { AuthClient, BatonUser, SessionInfo } from './auth-client-types.js';
export type { DpopStatus, DpopUnavailableReason } from './dpop-agent.js';
export type { AuthClientEventName, AuthClientEvents, EventSource } from './events.js';
export type { AuthClientOptions, AuthMode } from './options.js';

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
    get dpop(): DpopStatus {
      return client.dpopStatus();
    },
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
  private readonly refresher: Refresher;
  private readonly dpop: DpopAgent;
  private readonly stopWakeUps: () => void;

  constructor(private readonly config: ClientConfig) {
    this.http = {
      baseUrl: config.authBase,
      mode: config.mode,
      fetch: config.fetch,
      timeoutMs: config.timeoutMs,
      refreshTimeoutMs: config.refreshTimeoutMs,
      now: config.now,
    };
    this.dpop = new DpopAgent(config, this.events);
    this.backoff = new RefreshBackoff(config.random, () => void this.refreshIfDue());
    this.session = new SharedSession(config, this.events, (next) => {
      this.backoff.reset();
      if (next.kind === 'session') this.restored = true;
    });
    this.refresher = new Refresher({
      config,
      http: this.http,
      session: this.session,
      backoff: this.backoff,
      events: this.events,
      jitter: new TokenJitter(config.random),
      dpop: this.dpop,
      isDisposed: () => this.disposed,
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
    // A tab without the key of our bound session asks us to refresh it.
    this.session.onRefreshRequest((asked) => void this.answerRefreshRequest(asked));
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
    return requestRegister(this.http, credentials);
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
      // One key per session, made now: the login's proof binds the new
      // session to it (RFC 9449 §5). Null: an unbound session (and
      // dpopUnavailable said why).
      const key = await this.dpop.newKey();
      const sentAt = this.config.now();
      const grant = await requestLogin(
        this.http,
        credentials,
        { clientId: this.config.clientId, scope: credentials.scope, deviceToken },
        this.dpop.sender(key),
      );
      // Stored before the state is shared, so a tab that adopts the state finds the key.
      if (key !== null) await this.dpop.keep(key);
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
      if (key !== null) state.dpopJkt = key.jkt;
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
      // A bound session ends only with its key's proof (RFC 9449 §5). Without
      // the key here, an unsigned logout would be refused (and recorded like
      // a thief's attempt): sign out locally only, and the server session
      // lives until its idle timeout (docs/client.md).
      const key = await this.dpop.keyFor(live).catch(() => undefined);
      if (key !== undefined) {
        const answer = await requestLogout(this.http, live, this.dpop.sender(key));
        if (answer !== undefined) revoked = answer;
      }
      // Cookie mode before the state is known signs with the stored key: that key goes too.
      await this.signOutLocally('logout', key?.jkt);
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
    // Passed to fetch itself, not only through the Request (see callSignal).
    const { signal, done } = callSignal(input, init);
    try {
      // Aborted before it began: nobody waits for this call, so it starts no
      // refresh (fetch itself rejects such a call with the signal's reason).
      if (signal.aborted) throw signal.reason;
      const carried = await abortable(this.freshToken(signal), signal);
      const response = await this.config.fetch(withBearer(request, carried.accessToken, replayable), {
        signal,
      });
      if (response.status !== 401 || !replayable) return response;
      // The request remembers the token it carried: if another request or tab
      // already replaced that token, `refresh` hands back the newer one without
      // a network round trip; otherwise it refreshes once (shared with every
      // other request that got a 401 for the same token). One replay only: a
      // second 401 goes to the caller.
      // The 401's body is not returned from here on: release its connection.
      await response.body?.cancel().catch(() => {});
      const next = await this.refresher.refresh(carried, { signal });
      return await this.config.fetch(withBearer(request, next.accessToken, false), { signal });
    } finally {
      done();
    }
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

  dpopStatus(): DpopStatus {
    return this.dpop.status(this.session.state);
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

  /** A token to send now: the current one, or a refreshed one when it is due. */
  private async freshToken(signal?: AbortSignal): Promise<LiveState> {
    await this.ensureRestored();
    // Signed out as far as we know: another context may have signed in
    // through a shared storage without us hearing of it (a missed event).
    if (this.session.live() === null && this.config.storage !== undefined) await this.session.readCurrent();
    const decision = this.refresher.decide('request', this.session.state, null);
    if (decision.action === 'use') return decision.state;
    if (decision.action !== 'refresh') throw this.refresher.signedOutError();
    try {
      // Due but not expired: the current token still works, so this call
      // waits for the refresh only while nothing has failed.
      return await this.refresher.refresh(decision.from, { signal, hasFallback: decision.fallback !== null });
    } catch (error) {
      // Due but not expired: a failed refresh (offline, 503, backing off)
      // costs this request nothing; its retries go on in the background.
      const after = this.refresher.decide('request', this.session.state, null);
      if (isKeepSessionError(error)) {
        if (after.action === 'use') return after.state;
        if (after.action === 'refresh' && after.fallback !== null) return after.fallback;
      }
      throw error;
    }
  }

  /** Background check (wake-up, retry timer): refresh if due; failures are reported by events only. */
  private async refreshIfDue(): Promise<void> {
    if (this.disposed || !this.restored) return;
    try {
      await this.session.readCurrent();
      const decision = this.refresher.decide('request', this.session.state, null);
      if (decision.action === 'refresh') await this.refresher.refresh(decision.from);
    } catch {
      // Reported through refreshFailed / signedOut. Whatever it was, a
      // pending retryable failure keeps a retry scheduled.
      if (!this.disposed) this.backoff.rescheduleIfIdle(this.config.now());
    }
  }

  /**
   * Another context asked for a refresh of `asked`, a bound session whose
   * key it lacks. If `asked` is still our newest state and we hold its key,
   * our own refresh runs (joining one already under way, one at a time
   * across tabs), and its new state or tombstone reaches the asker like any
   * other. If we know a newer state, the asker missed it: we send it again.
   * Contexts without the key stay silent.
   */
  private async answerRefreshRequest(asked: LiveState): Promise<void> {
    if (this.disposed) return;
    try {
      const current = await this.session.readCurrent();
      if (current === null || this.disposed) return;
      if (current.seq !== asked.seq || current.id !== asked.id) {
        if (isNewer(current, asked)) this.session.share(current);
        return;
      }
      if (current.kind !== 'session' || !(await this.dpop.holdsKeyFor(current))) return;
      await this.refresher.refresh(current);
    } catch {
      // Reported through refreshFailed / signedOut, like any refresh of ours.
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
      await this.refresher.refresh(null);
      this.restored = true;
    } catch (error) {
      if (error instanceof BatonClientError && error.code === 'signed_out') this.restored = true;
      else throw error;
    }
  }

  // -------------------------------------------------------------------------
  // Signing out
  // -------------------------------------------------------------------------

  /** Writes a tombstone after the newest state, so every tab signs out and nothing older revives the session. */
  private async signOutLocally(reason: SignOutReason, signedWith?: string): Promise<void> {
    const current = await this.session.readCurrent();
    await this.session.commit(tombstone(reason, nextSeq(current), current?.deviceToken));
    // The key dies with its session: a later login makes a new one. Kept, it
    // would link this browser's sessions (every proof shows its public key).
    const bound = current?.kind === 'session' ? current.dpopJkt : undefined;
    await this.dpop.forget(bound ?? signedWith);
    this.restored = true;
  }

  private assertAlive(): void {
    if (this.disposed) throw new BatonClientError('disposed', 'This client was disposed');
  }
}

function sessionInfo(state: LiveState): SessionInfo {
  return {
    sessionId: state.sessionId,
    expiresAt: state.expiresAt,
    obtainedAt: state.obtainedAt,
    scope: state.scope,
  };
}
