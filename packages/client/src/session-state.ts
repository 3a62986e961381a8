import type { SignOutReason } from './errors.js';
import type { TokenGrant } from './http.js';

/**
 * A live session as one client knows it. `expiresAt` and `obtainedAt` are on
 * the *local* clock: expiry is `obtainedAt + expires_in`, never the JWT's
 * `exp`, so a client clock that is minutes off changes nothing.
 */
export interface LiveState {
  v: 1;
  kind: 'session';
  /** Orders states across tabs; see `isNewer` in refresh-decision.ts. */
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
  /**
   * The RFC 7638 thumbprint of the DPoP key the session is bound to (RFC
   * 9449): refreshing it needs a proof by that key, so a context without
   * the key must not try.
   */
  dpopJkt?: string;
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
  if (typeof d['dpopJkt'] === 'string' && d['dpopJkt'] !== '') state.dpopJkt = d['dpopJkt'];
  return state;
}

function isDeviceToken(value: unknown): value is string {
  return typeof value === 'string' && value !== '';
}

function isFiniteNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}

/**
 * The state for a token response (login or refresh). Expiry is measured from
 * when the request was *sent*, on our own clock: the server issued the token
 * after that, so this errs early, never late, and the JWT's `exp` (the
 * server's clock) is never compared with ours. What the grant lacks
 * (session id, scope, DPoP binding) is carried over from `base`, the state it replaces.
 */
export function liveState(
  grant: TokenGrant,
  sentAt: number,
  seq: number,
  base: LiveState | null | undefined,
  deviceToken: string | undefined,
): LiveState {
  const state: LiveState = {
    v: 1,
    kind: 'session',
    seq,
    id: randomId(),
    accessToken: grant.accessToken,
    obtainedAt: sentAt,
    expiresAt: sentAt + grant.expiresIn * 1000,
  };
  if (grant.refreshToken !== undefined) state.refreshToken = grant.refreshToken;
  const sessionId = grant.sessionId ?? base?.sessionId;
  if (sessionId !== undefined) state.sessionId = sessionId;
  const scope = grant.scope ?? base?.scope;
  if (scope !== undefined) state.scope = scope;
  if (deviceToken !== undefined) state.deviceToken = deviceToken;
  // A refresh does not change the key a session is bound to.
  if (base?.dpopJkt !== undefined) state.dpopJkt = base.dpopJkt;
  return state;
}

/** A sign-out tombstone. `deviceToken` is carried into it: it outlives the session (see SignedOutState). */
export function tombstone(
  reason: SignOutReason,
  seq: number,
  deviceToken: string | undefined,
): SignedOutState {
  const state: SignedOutState = { v: 1, kind: 'signed_out', seq, id: randomId(), reason };
  if (deviceToken !== undefined) state.deviceToken = deviceToken;
  return state;
}
