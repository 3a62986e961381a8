import type { LiveState, SessionState, SignedOutState } from './session-state.js';

/**
 * If the local clock reads more than this much *before* the moment a token was
 * obtained, the clock was set back and the expiry arithmetic is meaningless:
 * refresh to re-anchor it.
 */
export const CLOCK_BACKWARDS_TOLERANCE_MS = 60_000;

/**
 * The default refresh margin: max(30 s, 10 % of the lifetime), but never more
 * than half the lifetime, so a deliberately short-lived token (a few seconds in
 * tests, or a strict deployment) is not refreshed on every single request.
 */
export function defaultMargin(lifetimeMs: number): number {
  return Math.min(Math.max(30_000, lifetimeMs * 0.1), lifetimeMs / 2);
}

/** Jitter added to the margin: up to 5 s or 5 % of the lifetime, whichever is smaller. */
export function maxJitter(lifetimeMs: number): number {
  return Math.min(5_000, lifetimeMs * 0.05);
}

/** How early a token is refreshed: the `refreshMarginMs` option (undefined = {@link defaultMargin}) and the jitter drawn for it. */
export interface RefreshTiming {
  refreshMarginMs: number | undefined;
  /** Jitter of the token being judged; the caller draws it once per token, so repeated decisions agree. */
  jitterMs: number;
}

/** `fresh`: use it. `due`: refresh, but it still works meanwhile. `expired`: it no longer works. */
export type TokenPhase = 'fresh' | 'due' | 'expired';

/** Where a token stands at local time `now`. Expiry is on the local clock only (see LiveState). */
export function tokenPhase(live: LiveState, now: number, timing: RefreshTiming): TokenPhase {
  const lifetime = live.expiresAt - live.obtainedAt;
  const margin =
    timing.refreshMarginMs === undefined
      ? defaultMargin(lifetime)
      : Math.min(timing.refreshMarginMs, lifetime / 2);
  // The clock was set back: our expiry arithmetic no longer holds. Refresh
  // to re-anchor it rather than trust a token that may be long expired.
  const clockSetBack = now < live.obtainedAt - CLOCK_BACKWARDS_TOLERANCE_MS;
  if (!clockSetBack && now < live.expiresAt - margin - timing.jitterMs) return 'fresh';
  return now >= live.expiresAt ? 'expired' : 'due';
}

/**
 * Whether `a` replaces `b`. Ordering uses a sequence number that every writer
 * increments, not wall-clock time: a clock set back by ten minutes would
 * otherwise make a fresh token look older than the spent one it replaced, and
 * the client would present a used refresh token, which the server treats as
 * theft. Ties on `seq` are broken by `id`, the same way in every tab.
 */
export function isNewer(a: SessionState, b: SessionState | null): boolean {
  if (b === null) return true;
  return a.seq > b.seq || (a.seq === b.seq && a.id > b.id);
}

/** The `seq` for a state we write: after every state we know of, so it outranks them all. */
export function nextSeq(
  ...known: [SessionState | null | undefined, ...(SessionState | null | undefined)[]]
): number {
  return Math.max(...known.map((state) => state?.seq ?? 0)) + 1;
}

/**
 * When the question is asked, and so what `current` and `incoming` are:
 *
 * - `arrived`: `incoming` came from storage or another tab; `current` is what
 *   this client holds.
 * - `request`: a request (or a wake-up) needs a token; `current` is what this
 *   client holds, `incoming` is unused.
 * - `replace`: a caller wants the token `current` replaced (it is due, or got
 *   a 401; null at cookie start-up); `incoming` is the newest state this
 *   client knows (possibly just read from storage).
 * - `granted`: the server answered a refresh of `current` with new tokens;
 *   `incoming` is the newest state known now.
 * - `refused`: the server refused `current`'s refresh token (`invalid_grant`);
 *   `incoming` is the newest state known now.
 */
export type DecisionMoment = 'arrived' | 'request' | 'replace' | 'granted' | 'refused';

/** The input of {@link decideRefresh}. */
export interface DecisionInput {
  moment: DecisionMoment;
  current: SessionState | null;
  incoming: SessionState | null;
  /** Local clock, milliseconds. */
  now: number;
  timing: RefreshTiming;
}

/** What {@link decideRefresh} says to do. */
export type RefreshDecision =
  /** `arrived`: the incoming state is newer; make it current. */
  | { action: 'adopt'; state: SessionState }
  /** `arrived`: the incoming state is not newer; ignore it. */
  | { action: 'keep' }
  /** Send this token; no refresh is needed (or someone else already did it). */
  | { action: 'use'; state: LiveState }
  /**
   * Refresh from `from` (null: cookie start-up, the cookie alone). `fallback`
   * is a token that still works if the refresh fails (`request` only: a due
   * but unexpired token).
   */
  | { action: 'refresh'; from: LiveState | null; fallback: LiveState | null }
  /** The session is over (`state`: the tombstone, when one is known). */
  | { action: 'signed_out'; state: SignedOutState | null }
  /** `granted`: nothing replaced our base meanwhile; store the new tokens. */
  | { action: 'commit' }
  /** `refused`: nothing replaced our base meanwhile; the session is over, write the tombstone. */
  | { action: 'end_session' }
  /** `refused` at cookie start-up: there was no session cookie, so nothing to end. */
  | { action: 'none' };

/**
 * The one place that answers "is a newer state already there, and what do we
 * do about it?" for every route a state takes: storage, another tab, a
 * request, a refresh and its answer. Pure: no I/O, no clock, no randomness,
 * so it is tested as a table.
 */
export function decideRefresh(input: DecisionInput): RefreshDecision {
  const { current, incoming } = input;
  switch (input.moment) {
    case 'arrived':
      return incoming !== null && isNewer(incoming, current)
        ? { action: 'adopt', state: incoming }
        : { action: 'keep' };
    case 'request': {
      if (current === null || current.kind === 'signed_out') return { action: 'signed_out', state: current };
      const phase = tokenPhase(current, input.now, input.timing);
      if (phase === 'fresh') return { action: 'use', state: current };
      // Due but not expired: the token still works, so a failed refresh costs the request nothing.
      return { action: 'refresh', from: current, fallback: phase === 'due' ? current : null };
    }
    case 'replace': {
      const replaced = incoming !== null && (current === null || isNewer(incoming, current));
      if (replaced && incoming.kind === 'signed_out') return { action: 'signed_out', state: incoming };
      if (
        replaced &&
        incoming.kind === 'session' &&
        tokenPhase(incoming, input.now, input.timing) === 'fresh'
      ) {
        return { action: 'use', state: incoming };
      }
      // Refresh from the newest refresh token we know of: spending an older
      // one would look like a replay to the server.
      const base =
        incoming?.kind === 'session' && (current === null || !isNewer(current, incoming))
          ? incoming
          : current?.kind === 'session'
            ? current
            : null;
      return { action: 'refresh', from: base, fallback: null };
    }
    case 'granted':
      // Compare and set: if the session was replaced while we refreshed (a
      // login or a logout elsewhere), theirs wins and our tokens are dropped.
      // A cookie start-up (no base) has nothing to be outranked by.
      if (current !== null && incoming !== null && isNewer(incoming, current)) {
        return incoming.kind === 'signed_out'
          ? { action: 'signed_out', state: incoming }
          : { action: 'use', state: incoming };
      }
      return { action: 'commit' };
    case 'refused':
      // Someone else may have rotated the token first: only if nobody did is the session over.
      if (incoming !== null && (current === null || isNewer(incoming, current))) {
        return incoming.kind === 'signed_out'
          ? { action: 'signed_out', state: incoming }
          : { action: 'use', state: incoming };
      }
      return current === null ? { action: 'none' } : { action: 'end_session' };
  }
}
