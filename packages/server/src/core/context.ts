import type { ClientRecord, PruneKind, SessionRecord, Store } from '../store/store.js';
import type { Clock } from './clock.js';
import { BatonError } from './errors.js';

/** What the token service reports to observers. Never carries secrets. */
export type TokenServiceEvent =
  | {
      kind: 'refresh';
      outcome: RefreshOutcome | 'invalid' | 'reuse_detected';
      sessionId?: string;
      clientId?: string;
    }
  | { kind: 'login'; outcome: 'success' | 'failure'; userId?: string; clientId?: string }
  | { kind: 'session_revoked'; reason: string; sessionId?: string; userId?: string; count: number }
  /** A pruning run finished (`baton prune` or the job); `deleted` counts rows by kind. */
  | { kind: 'pruned'; deleted: Record<PruneKind, number> }
  /**
   * A request's proof of possession was refused (DPoP, RFC 9449): for the
   * `baton_proof_refusals_total` metric. `reason` is a short code, never the proof.
   */
  | { kind: 'proof_refused'; reason: string };

/** How a successful refresh was served. */
export type RefreshOutcome = 'rotated' | 'grace_replay';

/** Where a request came from, kept on the session. */
export interface RequestContext {
  userAgent?: string | null;
  ip?: string | null;
}

/** The lifetimes the service runs with, validated (ms). */
export interface LifetimeConfig {
  accessTtl: number;
  refreshIdleTtl: number;
  sessionMaxTtl: number;
  reuseGrace: number;
}

/**
 * What every core module is given by `createTokenService`: the store, the
 * clock, the event sink and the settings. Internal to core: routes and the
 * CLI see only the `TokenService` interface.
 */
export interface CoreContext {
  store: Store;
  now: Clock;
  issuer: string;
  cfg: LifetimeConfig;
  emit: (event: TokenServiceEvent) => void;
  /** The client by id, through a short cache (see `token-service.ts`). */
  findClient: (id: string) => Promise<ClientRecord | null>;
}

/** An `invalid_grant` error (RFC 6749 §5.2). */
export const invalidGrant = (description: string) => new BatonError('invalid_grant', description);

/** Why a session no longer counts at `t`, or null while it is alive. */
export function liveness(session: SessionRecord, t: number): string | null {
  if (session.revokedAt !== null) return 'The session has been revoked';
  if (session.expiresAt <= t) return 'The session has expired';
  if (session.idleExpiresAt <= t) return 'The session has expired after inactivity';
  return null;
}

/**
 * The scope a request may have: the granted one when nothing is asked for,
 * else the requested subset; asking for more is `invalid_scope`.
 * @see RFC 6749 §3.3, §6
 */
export function narrowScope(granted: string | null, requested: string | undefined): string | null {
  if (requested === undefined) return granted;
  const have = new Set((granted ?? '').split(' ').filter(Boolean));
  const want = requested.split(' ').filter(Boolean);
  if (want.some((s) => !have.has(s)))
    throw new BatonError('invalid_scope', 'The requested scope exceeds the granted scope');
  return want.length ? [...new Set(want)].join(' ') : null;
}
