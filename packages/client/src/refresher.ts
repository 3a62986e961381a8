import { requestRefresh, revokeQuietly } from './auth-endpoints.js';
import type { RecordedFailure, RefreshBackoff } from './backoff.js';
import { runningFlight, singleFlight, sleep } from './coordination.js';
import type { DpopAgent } from './dpop-agent.js';
import type { DpopKey } from './dpop-proof.js';
import { BatonClientError } from './errors.js';
import type { AuthEvents } from './events.js';
import type { AuthHttpContext, TokenGrant } from './http.js';
import { type ClientConfig, REUSE_GRACE_MS } from './options.js';
import { type DecisionMoment, decideRefresh, nextSeq, type RefreshDecision } from './refresh-decision.js';
import { RefreshFlight } from './refresh-flight.js';
import { abortable } from './request.js';
import {
  type LiveState,
  liveState,
  type SessionState,
  type SignedOutState,
  tombstone,
} from './session-state.js';
import type { SharedSession } from './shared-session.js';
import type { TokenStorage } from './storage.js';
import type { TokenJitter } from './token-jitter.js';

/** Result of one refresh, shared by every instance in the realm that joined it. */
type RefreshOutcome =
  | { kind: 'live'; state: LiveState; storage: TokenStorage | undefined }
  | { kind: 'signed_out'; state: SignedOutState; storage: TokenStorage | undefined }
  /** Cookie mode at start-up: there was no session cookie. */
  | { kind: 'none' };

type Flight = RefreshFlight<RefreshOutcome>;

/** How a caller waits for {@link Refresher.refresh}. */
export interface RefreshOptions {
  /** The caller's signal: it cuts the caller's wait short, never the refresh. */
  signal?: AbortSignal | undefined;
  /**
   * The caller holds a token that still works (due, not expired): it waits
   * for a refresh only while nothing has failed, and never waits out a backoff.
   */
  hasFallback?: boolean;
  /** Internal: this call already retried a flight that failed for another client's missing key. */
  rejoined?: boolean;
}

/**
 * How long before the end of the server's reuse grace window a retry of a
 * refresh whose answer was lost must be sent: the window is measured from
 * when the server handled the first request, which is after we sent it, and
 * the retry needs time to get there.
 */
export const GRACE_SAFETY_MS = 2_000;

/**
 * The shortest timeout a retry inside the window of a possibly lost answer
 * gets: enough for a healthy round trip, short enough to leave room for
 * another try inside the window if this one stalls as well.
 */
export const LOST_RETRY_MIN_TIMEOUT_MS = 1_000;

/** Most attempts one flight makes, whatever the budget: a clock that does not move must not make it spin. */
export const MAX_ATTEMPTS_PER_FLIGHT = 8;

/** Failures after which the server may have rotated the token without our hearing the answer. */
function answerMayBeLost(error: BatonClientError): boolean {
  return error.code === 'timeout' || error.code === 'network_error' || error.code === 'invalid_response';
}

/** What a {@link Refresher} works with; the client owns them all. */
export interface RefresherParts {
  config: ClientConfig;
  http: AuthHttpContext;
  session: SharedSession;
  backoff: RefreshBackoff;
  events: AuthEvents;
  jitter: TokenJitter;
  dpop: DpopAgent;
  isDisposed: () => boolean;
}

/**
 * Runs refreshes: asks {@link decideRefresh} whether one is needed, runs at
 * most one per token in this realm and one at a time across tabs, settles
 * its answer against whatever other contexts wrote meanwhile, and records
 * failures in the backoff.
 */
export class Refresher {
  private readonly config: ClientConfig;
  private readonly http: AuthHttpContext;
  private readonly session: SharedSession;
  private readonly backoff: RefreshBackoff;
  private readonly events: AuthEvents;
  private readonly jitter: TokenJitter;
  private readonly dpop: DpopAgent;
  private readonly isDisposed: () => boolean;
  /** Flights whose attempts this instance records (once each, however many of its callers joined). */
  private readonly watched = new WeakMap<Flight, { count: number; stop: () => void }>();
  /** Failures already settled by {@link refreshFailed}, and the error they became. */
  private readonly failures = new WeakMap<object, unknown>();
  /** This context's one outstanding request to its peers for a refresh it cannot do (no key). */
  private peerWait: Promise<LiveState> | null = null;

  constructor(parts: RefresherParts) {
    this.config = parts.config;
    this.http = parts.http;
    this.session = parts.session;
    this.backoff = parts.backoff;
    this.events = parts.events;
    this.jitter = parts.jitter;
    this.dpop = parts.dpop;
    this.isDisposed = parts.isDisposed;
  }

  /** The one call to the decision, with the timing of our newest state (the only token ever judged). */
  decide(
    moment: DecisionMoment,
    current: SessionState | null,
    incoming: SessionState | null,
  ): RefreshDecision {
    // Only `request` and `replace` judge a token's timing, and the token they judge is our newest.
    const newest = moment === 'request' || moment === 'replace' ? this.session.live() : null;
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

  /**
   * Replaces the token `from` (what a caller saw; null = cookie start-up). If
   * a newer token already exists it is returned without a request. Otherwise
   * one refresh runs per token in this realm (concurrent callers share it,
   * retries included) and one at a time across tabs. A refresh that fails
   * with a network error, a timeout, a 5xx or a 429 is retried with backoff
   * within `refreshRetryBudgetMs`.
   */
  async refresh(from: LiveState | null, options: RefreshOptions = {}): Promise<LiveState> {
    if (this.isDisposed()) throw new BatonClientError('disposed', 'This client was disposed');
    const key = this.flightKey(from);
    const deadline = this.config.now() + this.config.refreshRetryBudgetMs;
    let flight = runningFlight<Flight>(key);
    while (flight === undefined) {
      const decision = this.decide('replace', from, this.session.state);
      if (decision.action === 'use') return decision.state;
      if (decision.action === 'signed_out') throw this.signedOutError();
      // Backing off after failures: no request now. A caller with time left
      // in its budget waits the window out; one with a working token does not wait.
      const now = this.config.now();
      const waitMs = this.backoff.waitMs(now);
      if (waitMs > 0) {
        if (options.hasFallback === true || now + waitMs > deadline) this.backoff.assertReady(now);
        await abortable(sleep(waitMs), options.signal);
      } else {
        flight = singleFlight(key, () => this.startFlight(from));
      }
      flight ??= runningFlight<Flight>(key);
    }
    const unwatch = this.watch(flight);
    try {
      const wait = options.hasFallback === true ? Promise.race([flight.done, flight.stalled]) : flight.done;
      return await this.applyOutcome(await abortable(wait, options.signal));
    } catch (error) {
      if (isKeyMissing(error)) return await this.refreshElsewhere(from, error, options);
      throw this.refreshFailed(error, flight);
    } finally {
      unwatch();
    }
  }

  /**
   * The refresh stopped before anything was sent: the session is bound to a
   * key this context lacks. Sending it anyway would be refused and sign out
   * every tab, so the tabs that have the key are asked to refresh, and the
   * caller waits (bounded by `peerRefreshTimeoutMs`) for the state their
   * refresh produces; a caller with a token that still works goes ahead
   * with it while the request stands. Only when no answer comes is this a
   * failure, reported and backed off as before.
   */
  private async refreshElsewhere(
    from: LiveState | null,
    error: BatonClientError,
    options: RefreshOptions,
  ): Promise<LiveState> {
    const stuck = this.session.live();
    if (stuck === null) throw this.session.state?.kind === 'signed_out' ? this.signedOutError() : error;
    // In one realm client instances share flights (tabs never do): the one
    // that failed may have been another instance's, and this one has the key.
    if (options.rejoined !== true && (await this.dpop.holdsKeyFor(stuck))) {
      return this.refresh(from, { ...options, rejoined: true });
    }
    this.peerWait ??= this.waitForPeers(stuck, error);
    // A working token is used now; the request to the peers stands, and its answer is adopted when it comes.
    if (options.hasFallback === true) throw error;
    return abortable(this.peerWait, options.signal);
  }

  private waitForPeers(stuck: LiveState, error: BatonClientError): Promise<LiveState> {
    const waiting = (async () => {
      await this.session.requestPeerRefresh(stuck, this.config.peerRefreshTimeoutMs);
      if (this.isDisposed()) throw new BatonClientError('disposed', 'This client was disposed');
      const decision = this.decide('replace', stuck, this.session.state);
      if (decision.action === 'use') return decision.state;
      if (decision.action === 'signed_out') throw this.signedOutError();
      // Nobody with the key answered in time (none is open, or its refresh is failing).
      const failure = this.backoff.fail(error, this.config.now());
      this.emitFailure(failure);
      throw failure.error;
    })();
    const settled = () => {
      if (this.peerWait === waiting) this.peerWait = null;
    };
    // Handled here too: a caller with a working token does not await it.
    waiting.then(settled, settled);
    return waiting;
  }

  /** Starts a flight; this instance follows all of its attempts, even after its callers went ahead. */
  private startFlight(from: LiveState | null): Flight {
    const flight = new RefreshFlight<RefreshOutcome>((f) => this.performRefresh(from, f));
    const unwatch = this.watch(flight);
    flight.done.then(unwatch, (error: unknown) => {
      unwatch();
      this.refreshFailed(error, flight);
    });
    return flight;
  }

  /**
   * Records every failed attempt of `flight` in this instance's backoff and
   * events: once per instance, however many of its callers wait for it, for
   * as long as one of them does.
   */
  private watch(flight: Flight): () => void {
    let entry = this.watched.get(flight);
    if (entry === undefined) {
      const stop = flight.watch((failure) => {
        this.backoff.record(failure, this.config.now());
        this.emitFailure(failure);
      });
      entry = { count: 0, stop };
      this.watched.set(flight, entry);
    }
    const watching = entry;
    watching.count++;
    let stopped = false;
    return () => {
      if (stopped) return;
      stopped = true;
      if (--watching.count > 0) return;
      this.watched.delete(flight);
      watching.stop();
    };
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

  /**
   * One refresh under the cross-tab lock, retried there while it fails in a
   * way that can get better: the holder of the lock retries, and other tabs
   * wait for its result rather than each running retries of their own.
   */
  private performRefresh(from: LiveState | null, flight: Flight): Promise<RefreshOutcome> {
    const startedAt = this.config.now();
    const { refreshRetryBudgetMs: budget, refreshTimeoutMs } = this.config;
    // While we wait for the lock, the holder may tell us it is retrying.
    const stopHearing = this.session.onPeerRetrying((code) => flight.peerRetrying(code));
    const body = async (held: AbortSignal): Promise<RefreshOutcome> => {
      stopHearing();
      let slept = 0;
      let attempts = 0;
      let lostSince: number | undefined;
      let lostToken: string | undefined;
      for (;;) {
        // Re-read inside the lock (and before every retry): another tab may
        // have refreshed, signed in or out while we waited, and its state
        // (from storage, or from BroadcastChannel, which withLock has waited
        // for) is then adopted instead of spending a refresh.
        const decision = this.decide('replace', from, await this.session.readCurrent());
        if (decision.action !== 'refresh') return this.settled(decision);
        const base = decision.from;
        if (this.config.mode === 'token' && base?.refreshToken === undefined) return { kind: 'none' };
        if (base?.refreshToken !== lostToken) lostSince = undefined;
        const sentAt = this.config.now();
        // While an earlier answer may have been lost, the successor comes back
        // only inside the window: an attempt that stalls too must give up in
        // time for one more try inside it, not wait out its whole timeout.
        const timeoutMs =
          lostSince === undefined
            ? refreshTimeoutMs
            : Math.min(
                refreshTimeoutMs,
                Math.max(LOST_RETRY_MIN_TIMEOUT_MS, lostSince + REUSE_GRACE_MS - GRACE_SAFETY_MS - sentAt),
              );
        try {
          attempts++;
          return await this.attempt(base, timeoutMs);
        } catch (error) {
          if (!(error instanceof BatonClientError) || !error.retryable) throw error;
          // The server may have rotated the token without our hearing it: the
          // retry presents the same token, which it answers with the successor
          // only inside its reuse grace window, counted from the first send.
          // A bound session's retry, with a proof by its key, gets the
          // successor at any age (docs/dpop.md), so no deadline applies.
          if (answerMayBeLost(error) && lostSince === undefined && base?.dpopJkt === undefined) {
            lostSince = sentAt;
            lostToken = base?.refreshToken;
          }
          const notAfterMs =
            lostSince === undefined
              ? undefined
              : lostSince + REUSE_GRACE_MS - GRACE_SAFETY_MS - this.config.now();
          const failure = this.backoff.plan(
            error,
            notAfterMs !== undefined && notAfterMs > 0 ? notAfterMs : undefined,
          );
          flight.attemptFailed(failure);
          // A clock that stands still or goes back must not stretch the budget.
          const elapsed = Math.max(this.config.now() - startedAt, slept);
          if (
            budget === 0 ||
            elapsed + failure.delayMs > budget ||
            attempts >= MAX_ATTEMPTS_PER_FLIGHT ||
            this.isDisposed()
          )
            throw failure.error;
          this.session.announceRetrying(failure.error.code);
          await sleep(failure.delayMs);
          slept += failure.delayMs;
          // Past the lock's hold time it was let go: retrying now would run
          // outside it, alongside another tab's refresh of the same token.
          if (held.aborted || this.isDisposed()) throw failure.error;
        }
      }
    };
    // Held for the budget plus the last attempt (and storage around it).
    return this.session.withLock(body, { holdMs: budget + 2 * refreshTimeoutMs }).finally(stopHearing);
  }

  /** One `POST /auth/refresh` from `base` (timing out after `timeoutMs`), settled against whatever other contexts wrote meanwhile. */
  private async attempt(base: LiveState | null, timeoutMs: number): Promise<RefreshOutcome> {
    // Before anything is sent: a bound session is never refreshed without its key.
    const key = await this.dpop.keyFor(base);
    const sentAt = this.config.now();
    let grant: TokenGrant;
    const sender = this.dpop.sender(key);
    try {
      grant = await requestRefresh({ ...this.http, refreshTimeoutMs: timeoutMs }, base, sender);
    } catch (error) {
      if (!(error instanceof BatonClientError && error.code === 'invalid_grant')) throw error;
      return this.onInvalidGrant(base, key);
    }
    const latest = await this.session.readCurrent();
    const settle = this.decide('granted', base, latest);
    if (settle.action === 'signed_out') {
      // We just rotated a session that was signed out meanwhile: end it
      // again, or in cookie mode our response would have revived the cookie.
      // Signed by the same key: the grant's session is bound to it like the one refreshed.
      await revokeQuietly(this.http, grant, sender);
    }
    if (settle.action !== 'commit') return this.settled(settle);
    const next = liveState(
      grant,
      sentAt,
      nextSeq(latest, base),
      base,
      base?.deviceToken ?? latest?.deviceToken,
    );
    // Cookie mode at start-up (no base): the stored key signed it, so the session is bound to it.
    if (key !== null) next.dpopJkt = key.jkt;
    await this.session.commit(next);
    return { kind: 'live', state: next, storage: this.config.storage };
  }

  /** The server refused the refresh token. Before ending the session, check whether someone else already rotated it. */
  private async onInvalidGrant(base: LiveState | null, key: DpopKey | null): Promise<RefreshOutcome> {
    const latest = await this.session.readCurrent();
    const decision = this.decide('refused', base, latest);
    // Cookie mode at start-up: the stored key signed a probe the server refused, so whatever
    // session it was made for is over (or was never its own); a later login makes a new one.
    // Kept, it would be shown to the server on every page load, linking this browser's sessions.
    // Under the refresh lock, and only that key: a login in another tab stores a different one.
    if (base === null && key !== null && decision.action !== 'use') await this.dpop.forget(key.jkt);
    if (decision.action !== 'end_session' || base === null) return this.settled(decision);
    // The session is over, the device's proof of past logins is not: keep it.
    const state = tombstone('invalid_grant', nextSeq(latest, base), base.deviceToken ?? latest?.deviceToken);
    await this.session.commit(state);
    await this.dpop.forget(base.dpopJkt);
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

  /**
   * Settles a failed refresh for this instance: a failure not yet reported
   * attempt by attempt (a lock timeout, a 4xx) goes into the backoff and a
   * `refreshFailed` event; once the flight is over, a short background retry
   * is scheduled. Returns the error for the caller. Idempotent per error, as
   * both a caller and the flight's starter may settle the same one.
   */
  private refreshFailed(error: unknown, flight: Flight): unknown {
    if (!(error instanceof BatonClientError) || !isKeepSessionError(error)) return error;
    // Not a failure yet: the tabs with the key are asked first (refreshElsewhere), and it is recorded only if none answers.
    if (isKeyMissing(error)) return error;
    // A peer is retrying: nothing failed here, the caller goes ahead with its token.
    if (flight.isPeerStall(error)) return error;
    const done = this.failures.get(error);
    if (done !== undefined) return done;
    let failure = flight.reportedFailure(error);
    if (failure === undefined) {
      failure = this.backoff.fail(error, this.config.now());
      this.emitFailure(failure);
    }
    // Still retrying (a caller with a working token went ahead): the flight settles it later.
    if (flight.isRunning) return failure.error;
    this.failures.set(error, failure.error);
    if (!this.isDisposed()) this.backoff.scheduleRetry(failure);
    return failure.error;
  }

  private emitFailure(failure: RecordedFailure): void {
    this.events.emit('refreshFailed', {
      error: failure.error,
      retryable: failure.error.retryable,
      retryInMs: failure.delayMs,
      attempt: failure.attempt,
    });
  }

  /** `signed_out`, with the reason of our tombstone when we have one. */
  signedOutError(): BatonClientError {
    const reason = this.session.state?.kind === 'signed_out' ? this.session.state.reason : undefined;
    return new BatonClientError('signed_out', 'Not signed in', reason === undefined ? {} : { reason });
  }
}

/** The refresh was not sent: the session is bound to a DPoP key this context does not have. */
function isKeyMissing(error: unknown): error is BatonClientError {
  return error instanceof BatonClientError && error.code === 'dpop_unavailable';
}

/** Errors after which the session is kept: everything except "the session is over". */
export function isKeepSessionError(error: unknown): boolean {
  return error instanceof BatonClientError && error.code !== 'signed_out' && error.code !== 'disposed';
}
