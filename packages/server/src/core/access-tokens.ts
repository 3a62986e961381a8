import type { ClientRecord, SessionRecord } from '../store/store.js';
import {
  type AccessTokenClaims,
  decodeAccessToken,
  newJti,
  signAccessToken,
  verifyAccessToken,
} from './access-token.js';
import { toEpochSeconds } from './clock.js';
import { type CoreContext, liveness } from './context.js';
import { BatonError } from './errors.js';
import type { KeyRing, PublicJwk } from './signing-keys.js';

/** The pair handed to a client after login or refresh. */
export interface IssuedTokens {
  accessToken: string;
  tokenType: 'Bearer';
  /** Seconds until the access token expires. */
  expiresIn: number;
  refreshToken: string;
  sessionId: string;
  clientId: string;
  scope: string | null;
  /** When the session (and so the refresh token) ends at the latest, ms: for cookie Max-Age. */
  refreshExpiresAt: number;
}

/** A verified access token and the live session behind it. */
export interface Authenticated {
  claims: AccessTokenClaims;
  session: SessionRecord;
}

/** Options of {@link AccessTokens.authenticate}. */
export interface AuthenticateOptions {
  /** False to accept a token of an ended session (logout, revocation are idempotent). Default true. */
  checkSession?: boolean;
  /** The audiences accepted; default the issuer only. */
  audiences?: readonly string[];
}

/** Issuing and checking access tokens with the key ring. @see RFC 9068 */
export interface AccessTokens {
  /** Signs the access token of a session and pairs it with `refreshToken`. */
  issue(
    session: SessionRecord,
    client: ClientRecord,
    refreshToken: string,
    scope: string | null,
    t: number,
  ): IssuedTokens;
  /**
   * Verifies an access token and, unless `checkSession` is false, that its
   * session is still alive and its client still exists, so logout,
   * revocation and client deletion bite on Baton's own routes. Throws
   * `invalid_token`.
   * @see RFC 6750 §3.1
   */
  authenticate(accessToken: string, opts?: AuthenticateOptions): Promise<Authenticated>;
  /** The JWKS to publish. @see RFC 7517 §5 */
  jwks(): { keys: PublicJwk[] };
}

/** Creates the access-token half of the service over a key ring. */
export function createAccessTokens(ctx: CoreContext, keys: KeyRing, leeway?: number): AccessTokens {
  const { store, now, issuer, cfg } = ctx;
  return {
    issue(session, client, refreshToken, scope, t) {
      const ttl = client.accessTtl ?? cfg.accessTtl;
      // An access token never outlives its session.
      const exp = Math.min(t + ttl, session.expiresAt);
      const claims: AccessTokenClaims = {
        iss: issuer,
        sub: session.userId,
        aud: client.audience ?? issuer,
        exp: toEpochSeconds(exp),
        iat: toEpochSeconds(t),
        jti: newJti(),
        sid: session.id,
        client_id: client.id,
        ...(scope ? { scope } : {}),
      };
      return {
        accessToken: signAccessToken(keys.signingKey(t), claims),
        tokenType: 'Bearer',
        expiresIn: Math.max(0, claims.exp - claims.iat),
        refreshToken,
        sessionId: session.id,
        clientId: client.id,
        scope,
        refreshExpiresAt: session.expiresAt,
      };
    },

    async authenticate(accessToken, opts = {}) {
      const t = now();
      // A kid we have not seen may belong to a key another instance created a
      // moment ago: reload once (rate-limited in the key ring, so a flood of
      // made-up kids cannot become a flood of store reads).
      const decoded = decodeAccessToken(accessToken);
      if (!keys.find(decoded.kid, t)) await keys.reloadForUnknownKid();
      const claims = verifyAccessToken(decoded, {
        keys,
        issuer,
        audiences: opts.audiences ?? [issuer],
        now: t,
        ...(leeway !== undefined ? { leeway } : {}),
      });
      const session = await store.findSession(claims.sid);
      if (!session || session.userId !== claims.sub)
        throw new BatonError('invalid_token', 'The session of this token is unknown');
      if (opts.checkSession !== false) {
        const dead = liveness(session, t);
        if (dead) throw new BatonError('invalid_token', dead);
        // Deleting a client revokes its sessions, but an instance that had
        // not yet seen the deletion may have started one since: a session
        // counts only while its client exists (through the client cache).
        if (!(await ctx.findClient(session.clientId)))
          throw new BatonError('invalid_token', 'The client of this session no longer exists');
      }
      return { claims, session };
    },

    jwks() {
      return keys.jwks(now());
    },
  };
}
