import { requestRefresh, revokeQuietly } from './auth-endpoints.js';
import type { RefreshBackoff } from './backoff.js';
import { singleFlight } from './coordination.js';
import { BatonClientError } from './errors.js';
import type { AuthEvents } from './events.js';
import type { AuthHttpContext, TokenGrant } from './http.js';
import type { ClientConfig } from './options.js';
import { type DecisionMoment, decideRefresh, nextSeq, type RefreshDecision } from './refresh-decision.js';
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

/** What a {@link Refresher} works with; the client owns them all. */
export interface RefresherParts {
  config: ClientConfig;
  http: AuthHttpContext;
  session: SharedSession;
  backoff: RefreshBackoff;
  events: AuthEvents;
  jitter: TokenJitter;
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
  private readonly isDisposed: () => boolean;

  constructor(parts: RefresherParts) {
    this.config = parts.config;
    this.http = parts.http;
    this.session = parts.session;
    this.backoff = parts.backoff;
    this.events = parts.events;
    this.jitter = parts.jitter;
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
   * one refresh runs per token in this realm (concurrent callers share it) and
   * one at a time across tabs.
   */
  async refresh(from: LiveState | null): Promise<LiveState> {
    if (this.isDisposed()) throw new BatonClientError('disposed', 'This client was disposed');
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
        grant = await requestRefresh(this.http, base);
      } catch (error) {
        if (!(error instanceof BatonClientError && error.code === 'invalid_grant')) throw error;
        return this.onInvalidGrant(base);
      }
      const latest = await this.session.readCurrent();
      const settle = this.decide('granted', base, latest);
      if (settle.action === 'signed_out') {
        // We just rotated a session that was signed out meanwhile: end it
        // again, or in cookie mode our response would have revived the cookie.
        await revokeQuietly(this.http, grant);
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
    if (!this.isDisposed()) this.backoff.scheduleRetry(failure);
    return failure.error;
  }

  /** `signed_out`, with the reason of our tombstone when we have one. */
  signedOutError(): BatonClientError {
    const reason = this.session.state?.kind === 'signed_out' ? this.session.state.reason : undefined;
    return new BatonClientError('signed_out', 'Not signed in', reason === undefined ? {} : { reason });
  }
}

/** Errors after which the session is kept: everything except "the session is over". */
export function isKeepSessionError(error: unknown): boolean {
  return error instanceof BatonClientError && error.code !== 'signed_out' && error.code !== 'disposed';
}
