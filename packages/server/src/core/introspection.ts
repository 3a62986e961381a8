import type { Store } from '../store/store.js';
import { issuedAudiences } from './clients.js';
import { toEpochSeconds } from './clock.js';
import { BatonError } from './errors.js';
import { parseRefreshToken } from './refresh-token.js';
import type { TokenService } from './token-service.js';

/** The answer for anything that is not an active token: exactly this, nothing more. @see RFC 7662 §2.2 */
export interface InactiveToken {
  active: false;
}

/** The members of an active token's introspection answer, as they apply to its kind. @see RFC 7662 §2.2 */
export interface ActiveToken {
  active: true;
  /** `Bearer` for access tokens; absent for refresh tokens (RFC 6749 §5.1 defines access-token types only). */
  token_type?: 'Bearer';
  scope?: string;
  client_id: string;
  sub: string;
  /** Expiry (seconds since the epoch). For a refresh token: when its session ends unless used again. */
  exp: number;
  iat: number;
  iss: string;
  /** Access tokens only. */
  aud?: string;
  /** Access tokens only. */
  jti?: string;
  /** The session (token family). */
  sid: string;
}

/** An introspection answer. @see RFC 7662 §2.2 */
export type IntrospectionResult = ActiveToken | InactiveToken;

const INACTIVE: InactiveToken = Object.freeze({ active: false });

/**
 * Introspects a token for a resource server or client. Refresh tokens
 * (`brt_…`) and access tokens (JWTs) have disjoint formats, so the
 * `token_type_hint` is not needed to find either.
 *
 * A refresh token is active while it is its session's current one and the
 * session is alive. An access token is active while its signature, issuer,
 * audience (any the server issues for) and expiry check out *and* its
 * session is alive: a revoked session makes its unexpired access tokens
 * inactive at once, which local JWT verification alone cannot do.
 * @see RFC 7662 §2.1, §2.2
 */
export async function introspectToken(
  service: TokenService,
  store: Store,
  token: string,
): Promise<IntrospectionResult> {
  if (parseRefreshToken(token)) {
    const found = await service.refreshTokenInfo(token);
    if (!found?.active) return INACTIVE;
    const s = found.session;
    return {
      active: true,
      ...(s.scope ? { scope: s.scope } : {}),
      client_id: s.clientId,
      sub: s.userId,
      exp: toEpochSeconds(Math.min(s.idleExpiresAt, s.expiresAt)),
      iat: toEpochSeconds(found.token.createdAt),
      iss: service.issuer,
      sid: s.id,
    };
  }
  if (token.split('.').length !== 3) return INACTIVE;
  try {
    const { claims } = await service.authenticate(token, {
      audiences: await issuedAudiences(store, service.issuer),
    });
    return {
      active: true,
      token_type: 'Bearer',
      ...(claims.scope ? { scope: claims.scope } : {}),
      client_id: claims.client_id,
      sub: claims.sub,
      exp: claims.exp,
      iat: claims.iat,
      iss: claims.iss,
      aud: claims.aud,
      jti: claims.jti,
      sid: claims.sid,
    };
  } catch (err) {
    // A bad token is simply inactive; a store failure is not an answer about the token.
    if (err instanceof BatonError && err.code === 'invalid_token') return INACTIVE;
    throw err;
  }
}
