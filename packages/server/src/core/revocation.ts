import type { Store } from '../store/store.js';
import { issuedAudiences } from './clients.js';
import { BatonError } from './errors.js';
import { parseRefreshToken } from './refresh-token.js';
import type { TokenService } from './token-service.js';

/** What {@link revokeToken} did. */
export type RevocationOutcome = 'revoked' | 'already_revoked' | 'unknown';

/**
 * Revokes a token on behalf of the client it was issued to.
 *
 * - A refresh token (any generation) ends its whole session.
 * - An access token ends its session too: Baton's access tokens are
 *   stateless JWTs that cannot be revoked one by one, and a session whose
 *   access token had to be revoked should not keep refreshing. Verifiers
 *   that check only the JWT accept it until it expires; introspection and
 *   Baton's own routes refuse it at once.
 * - Unknown, malformed, expired or foreign-issuer tokens are not an error
 *   (RFC 7009 §2.2: the client could not act on one): `unknown`.
 * - A genuine token issued to another client is refused
 *   (`unauthorized_client`), as RFC 7009 §2.1 requires.
 *
 * The formats of refresh and access tokens are disjoint, so
 * `token_type_hint` is not needed to find either (§2.1 makes it a hint only).
 * @see RFC 7009 §2.1, §2.2
 */
export async function revokeToken(
  service: TokenService,
  store: Store,
  token: string,
  clientId: string,
): Promise<RevocationOutcome> {
  if (parseRefreshToken(token)) {
    const found = await service.refreshTokenInfo(token);
    if (!found) return 'unknown';
    if (found.session.clientId !== clientId)
      throw new BatonError('unauthorized_client', 'The token was not issued to this client');
    return (await service.revokeSession(found.session.id, 'token_revoked')) ? 'revoked' : 'already_revoked';
  }
  if (token.split('.').length !== 3) return 'unknown';
  let sid: string;
  try {
    // The session is looked up whatever its state: revoking twice is fine.
    const { claims } = await service.authenticate(token, {
      checkSession: false,
      audiences: await issuedAudiences(store, service.issuer),
    });
    if (claims.client_id !== clientId)
      throw new BatonError('unauthorized_client', 'The token was not issued to this client');
    sid = claims.sid;
  } catch (err) {
    if (err instanceof BatonError && err.code === 'invalid_token') return 'unknown';
    throw err;
  }
  return (await service.revokeSession(sid, 'token_revoked')) ? 'revoked' : 'already_revoked';
}
