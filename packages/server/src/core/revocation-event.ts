import type { SecurityEventRecord } from '../store/store.js';

/** Who ends a session for each reason: the user, an operator, or the client the token was issued to. */
export const REVOKED_BY = {
  logout: 'user',
  logout_all: 'user',
  revoked_by_user: 'user',
  admin: 'admin',
  token_revoked: 'client',
};

/** The `session_revoked` event of a revocation, written in its transaction. */
export function revocationEvent(
  at: number,
  reason: keyof typeof REVOKED_BY,
  who: { sessionId?: string; userId: string | null },
): SecurityEventRecord {
  return {
    type: 'session_revoked',
    at,
    userId: who.userId,
    sessionId: who.sessionId ?? null,
    detail: { reason, by: REVOKED_BY[reason] },
  };
}
