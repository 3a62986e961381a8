import type { RefreshTokenState, SessionRecord } from '../store/store.js';
import { type CoreContext, invalidGrant, liveness, type RequestContext } from './context.js';
import type { VerifiedDpop } from './dpop.js';
import { BatonError } from './errors.js';

/**
 * The sender checks of a DPoP-bound session (RFC 9449 §5): a refresh, a
 * logout or a revocation by a token whose request lacks a proof by the
 * session's key is refused and recorded as a security event, and nothing is
 * revoked, so a thief who copied the token but cannot have the key can
 * neither use it nor sign its owner out.
 */
export function createSenderChecks({ store, now, emit }: CoreContext) {
  /** Records a bound session's token presented without its key's proof (for `action`). Revokes nothing. */
  async function recordWrongSender(
    session: SessionRecord,
    proof: VerifiedDpop | undefined,
    t: number,
    ctx: RequestContext,
    action: 'refresh' | 'logout' | 'revoke',
  ): Promise<void> {
    const type = proof ? 'dpop_key_mismatch' : 'dpop_proof_missing';
    await store.recordSecurityEvent({
      type,
      at: t,
      userId: session.userId,
      sessionId: session.id,
      clientId: session.clientId,
      ip: ctx.ip ?? null,
      detail: { action },
    });
    emit({ kind: 'proof_refused', reason: type });
  }

  /**
   * A bound session's token without its key's proof: refused and recorded,
   * but nothing is revoked, so a thief without the key can neither use the
   * token nor sign its owner out.
   */
  async function wrongSender(
    state: RefreshTokenState,
    proof: VerifiedDpop | undefined,
    t: number,
    ctx: RequestContext,
  ): Promise<never> {
    emit({ kind: 'refresh', outcome: 'invalid', sessionId: state.session.id });
    await recordWrongSender(state.session, proof, t, ctx, 'refresh');
    throw invalidGrant(
      proof
        ? 'This session is bound to another DPoP key'
        : 'This session is bound to a DPoP key: refresh it with a DPoP proof by that key',
    );
  }

  /**
   * Ending a live bound session takes its key's proof, as refreshing it does:
   * otherwise a thief who copied the token, but cannot have the key, could
   * still sign the owner out. Refused as `invalid_dpop_proof`, not
   * `invalid_grant` (the token is valid, only not for this sender) and not
   * RFC 7009's silent 200 (a client that lost its proof must not believe it
   * signed out); recorded, and nothing is revoked. A session already over
   * has nothing left to protect: ending it again stays a no-op.
   * @see RFC 9449 §5
   */
  async function assertMayEnd(
    session: SessionRecord,
    proof: VerifiedDpop | undefined,
    ctx: RequestContext,
    action: 'logout' | 'revoke',
  ): Promise<void> {
    if (session.dpopJkt === undefined || proof?.jkt === session.dpopJkt) return;
    const t = now();
    if (liveness(session, t) !== null) return;
    await recordWrongSender(session, proof, t, ctx, action);
    throw new BatonError(
      'invalid_dpop_proof',
      proof
        ? 'This session is bound to another DPoP key: send a DPoP proof by that key to end it'
        : 'This session is bound to a DPoP key: send a DPoP proof by that key to end it',
    );
  }
  return { wrongSender, assertMayEnd };
}
