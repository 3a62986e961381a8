import { compactVerify, errors as joseErrors } from 'jose';
import { type AccessTokenClaims, checkClaims } from './claims.js';
import { VerifyError } from './errors.js';
import { SessionChecker } from './introspection.js';
import { isCanonicalBase64url, isEs256SignatureInRange, parseCompactJws } from './jws.js';
import { KeySet } from './key-set.js';
import { resolveOptions, type VerifierOptions } from './options.js';

/** Per-call options of {@link Verifier.verify}. */
export interface VerifyCallOptions {
  /** Override the verifier's `checkSession` for this call (needs `introspection` configured). */
  checkSession?: boolean;
}

/** Verifies Baton access tokens; made by {@link createVerifier}. */
export interface Verifier {
  /** The configured issuer. */
  readonly issuer: string;
  /**
   * Verify an access token per RFC 9068 §4 and RFC 8725; resolve its claims or
   * reject with a {@link VerifyError} whose `code` says why.
   */
  verify(token: string, options?: VerifyCallOptions): Promise<AccessTokenClaims>;
}

// RFC 9068 §4 and RFC 7515 §4.1.9: media types compare case-insensitively, and the
// "application/" prefix may be omitted.
const AT_JWT = new Set(['at+jwt', 'application/at+jwt']);

/**
 * Create a verifier of Baton access tokens (RFC 9068 §4) for a resource server,
 * following the JWT best current practices of RFC 8725.
 *
 * Keys come from the issuer's JWKS (found through RFC 8414 metadata, or `jwksUri`),
 * cached and re-fetched on an unknown `kid` at most once per `jwksCooldown`.
 * Construction does no I/O; the first `verify()` fetches the keys.
 *
 * @throws TypeError when `options` are invalid.
 * @see RFC 9068 §4, RFC 8725 §3, RFC 7515, RFC 7519 §7.2
 */
export function createVerifier(options: VerifierOptions): Verifier {
  const opts = resolveOptions(options);
  const keys = new KeySet(opts);
  const sessions = opts.introspection ? new SessionChecker(opts, keys) : undefined;

  async function verify(token: string, call?: VerifyCallOptions): Promise<AccessTokenClaims> {
    const checkSession = call?.checkSession ?? opts.checkSession;
    if (checkSession && !sessions) {
      throw new TypeError('verify: checkSession needs introspection: { clientId, clientSecret }');
    }
    if (typeof token !== 'string' || token === '') {
      throw new VerifyError('token_malformed', 'The token is not a non-empty string');
    }
    // Before any split, decode or regex: an attacker's 1 MB "token" costs one length check.
    if (token.length > opts.maxTokenBytes) {
      throw new VerifyError('token_too_large', 'The token is longer than allowed');
    }
    const { header, payload, signature } = parseCompactJws(token);

    // RFC 8725 §2.1, §3.1: the token does not get to choose its algorithm. `none` in any
    // spelling ("None", "nOnE") and every HMAC algorithm are refused outright: with only
    // public keys here, HS256 "verified" with a public key's bytes is forgeable by anyone.
    const alg = header.alg;
    if (typeof alg !== 'string' || /^none$/i.test(alg) || /^hs/i.test(alg) || !opts.algorithms.has(alg)) {
      throw new VerifyError('alg_not_allowed', 'The token algorithm is not allowed');
    }
    // RFC 9068 §4, RFC 8725 §3.11: explicit typing keeps ID tokens (typ JWT) and other
    // JWTs signed by the same keys from passing as access tokens.
    if (typeof header.typ !== 'string' || !AT_JWT.has(header.typ.toLowerCase())) {
      throw new VerifyError('typ_invalid', 'The token typ is not at+jwt');
    }
    // RFC 7515 §4.1.11: we understand no extensions, so any critical one means refuse.
    if (header.crit !== undefined) {
      throw new VerifyError('token_malformed', 'The token has critical header parameters');
    }
    // No kid means no key: there is no "try every key" fallback, which would turn one
    // forgery attempt into N signature checks and blur which key vouched for the token.
    const kid = header.kid;
    if (typeof kid !== 'string' || kid === '') {
      throw new VerifyError('kid_unknown', 'The token has no kid');
    }
    // Header jwk, jku, x5u and x5c are deliberately never read (RFC 8725 §3.10): keys
    // come from the configured JWKS only, so no token can pick its own key or make us fetch.

    if (signature === '') throw new VerifyError('signature_invalid', 'The token has no signature');
    if (!isCanonicalBase64url(signature)) {
      throw new VerifyError('token_malformed', 'The token signature is not canonical base64url');
    }

    const key = await keys.get(kid);
    if (!key) throw new VerifyError('kid_unknown', 'The token kid is not in the issuer key set');
    // Pin the algorithm to the key: an ES256 key verifies ES256 tokens only.
    if (key.alg !== alg) {
      throw new VerifyError('alg_not_allowed', 'The token algorithm does not match its key');
    }
    // Both (r, s) and (r, n − s) are valid ES256 (RFC 7518 §3.4); the token's identity is
    // its jti, never its signature bytes, so only the shape and range are checked here.
    if (alg === 'ES256' && !isEs256SignatureInRange(Buffer.from(signature, 'base64url'))) {
      throw new VerifyError('signature_invalid', 'The token signature is not a valid ES256 signature');
    }
    try {
      await compactVerify(token, key.key, { algorithms: [key.alg] });
    } catch (error) {
      if (error instanceof joseErrors.JWSSignatureVerificationFailed) {
        throw new VerifyError('signature_invalid', 'The token signature does not verify');
      }
      throw new VerifyError('token_malformed', 'The token is not a valid JWS');
    }

    const claims = checkClaims(payload as Record<string, unknown>, opts);
    if (checkSession && sessions) await sessions.check(token, claims);
    return claims;
  }

  return Object.freeze({ issuer: opts.issuer, verify });
}
