import type { SignOutReason } from './errors.js';

/**
 * A live session as one client knows it. `expiresAt` and `obtainedAt` are on
 * the *local* clock: expiry is `obtainedAt + expires_in`, never the JWT's
 * `exp`, so a client clock that is minutes off changes nothing.
 */
export interface LiveState {
  v: 1;
  kind: 'session';
  /** Orders states across tabs; see {@link isNewer}. */
  seq: number;
  /** Random tie-breaker for two states with the same `seq`. */
  id: string;
  accessToken: string;
  /** Token mode only: in cookie mode the refresh token never reaches JavaScript. */
  refreshToken?: string;
  sessionId?: string;
  scope?: string;
  /** Local `now()` when the request that produced the token was sent. */
  obtainedAt: number;
  /** Local `now()` at which the access token expires. */
  expiresAt: number;
  /** Token mode: the server's device token; see {@link SignedOutState.deviceToken}. */
  deviceToken?: string;
}

/** A tombstone: the session ended. Kept (not deleted) so that it can win against older states. */
export interface SignedOutState {
  v: 1;
  kind: 'signed_out';
  seq: number;
  id: string;
  reason: SignOutReason;
  /**
   * Token mode: the device token of the last successful login on this
   * device. Every state carries it forward, tombstones included, because it
   * proves a past login rather than a session: it must outlive sign-outs so
   * the next login is exempt from an attacker's account lockout. Riding on
   * the state, it is ordered, stored and shared between tabs like the rest.
   */
  deviceToken?: string;
}

/** What is stored under the storage key and sent between tabs. */
export type SessionState = LiveState | SignedOutState;

/**
 * Whether `a` replaces `b`. Ordering uses a sequence number that every writer
 * increments, not wall-clock time: a clock set back by ten minutes would
 * otherwise make a fresh token look older than the spent one it replaced, and
 * the client would present a used refresh token, which the server treats as
 * theft.
 */
export function isNewer(a: SessionState, b: SessionState | null): boolean {
  if (b === null) return true;
  return a.seq > b.seq || (a.seq === b.seq && a.id > b.id);
}

/** The newer of two states (either may be missing). */
export function newest(a: SessionState | null, b: SessionState | null): SessionState | null {
  if (a === null) return b;
  if (b === null) return a;
  return isNewer(b, a) ? b : a;
}

/**
 * A random id: names a client on the BroadcastChannel and breaks ties between
 * states. Not a secret. Deliberately not drawn from the injectable `random`
 * (which tests pin for deterministic jitter): two tabs must never share one.
 */
export function randomId(): string {
  const bytes = new Uint8Array(9);
  const crypto = (globalThis as { crypto?: { getRandomValues?: (a: Uint8Array) => Uint8Array } }).crypto;
  if (typeof crypto?.getRandomValues === 'function') crypto.getRandomValues(bytes);
  else for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(Math.random() * 256);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

const SIGN_OUT_REASONS: readonly string[] = ['logout', 'logout_all', 'invalid_grant'];

/**
 * Parses a stored or received state. Anything malformed (an older format,
 * another library's key, a truncated write) reads as "nothing stored" rather
 * than throwing: a corrupt entry must not break the page.
 */
export function parseState(value: unknown): SessionState | null {
  let data: unknown = value;
  if (typeof value === 'string') {
    try {
      data = JSON.parse(value);
    } catch {
      return null;
    }
  }
  if (typeof data !== 'object' || data === null) return null;
  const d = data as Record<string, unknown>;
  if (d['v'] !== 1 || !isFiniteNumber(d['seq']) || typeof d['id'] !== 'string') return null;
  if (d['kind'] === 'signed_out') {
    if (typeof d['reason'] !== 'string' || !SIGN_OUT_REASONS.includes(d['reason'])) return null;
    const tombstone: SignedOutState = {
      v: 1,
      kind: 'signed_out',
      seq: d['seq'],
      id: d['id'],
      reason: d['reason'] as SignOutReason,
    };
    // Optional: states written before device tokens existed have none and still load.
    if (isDeviceToken(d['deviceToken'])) tombstone.deviceToken = d['deviceToken'];
    return tombstone;
  }
  if (d['kind'] !== 'session') return null;
  if (typeof d['accessToken'] !== 'string' || d['accessToken'] === '') return null;
  if (!isFiniteNumber(d['obtainedAt']) || !isFiniteNumber(d['expiresAt'])) return null;
  const state: LiveState = {
    v: 1,
    kind: 'session',
    seq: d['seq'],
    id: d['id'],
    accessToken: d['accessToken'],
    obtainedAt: d['obtainedAt'],
    expiresAt: d['expiresAt'],
  };
  if (typeof d['refreshToken'] === 'string') state.refreshToken = d['refreshToken'];
  if (typeof d['sessionId'] === 'string') state.sessionId = d['sessionId'];
  if (typeof d['scope'] === 'string') state.scope = d['scope'];
  if (isDeviceToken(d['deviceToken'])) state.deviceToken = d['deviceToken'];
  return state;
}

function isDeviceToken(value: unknown): value is string {
  return typeof value === 'string' && value !== '';
}

function isFiniteNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}

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

/**
 * If the local clock reads more than this much *before* the moment a token was
 * obtained, the clock was set back and the expiry arithmetic is meaningless:
 * refresh to re-anchor it.
 */
export const CLOCK_BACKWARDS_TOLERANCE_MS = 60_000;
