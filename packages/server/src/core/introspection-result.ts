/** Introspection answers (RFC 7662), shared by `sessions.ts` and the routes. */

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
