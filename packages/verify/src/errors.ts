/**
 * Why a token was refused. Callers and tests switch on this, never on message text.
 *
 * - `token_too_large`: longer than `maxTokenBytes`; refused before any parsing (SECURITY 27).
 * - `token_malformed`: not three canonical base64url segments of JSON objects, or a `crit` header.
 * - `alg_not_allowed`: `none`, an HMAC algorithm, an algorithm outside `algorithms`,
 *   or one that differs from the key's own `alg`.
 * - `typ_invalid`: `typ` is not `at+jwt` (RFC 9068 §4), e.g. an ID token (`JWT`).
 * - `kid_unknown`: no `kid`, or a `kid` the issuer's JWKS does not publish (no try-every-key fallback).
 * - `signature_invalid`: the signature is missing or does not verify.
 * - `iss_invalid`: `iss` is not the configured issuer, byte for byte.
 * - `aud_invalid`: `aud` missing or naming none of the configured audiences.
 * - `token_expired`: `exp` is past, beyond the clock tolerance.
 * - `token_not_yet_valid`: `nbf` or `iat` is in the future, beyond the clock tolerance.
 * - `claim_invalid`: a claim RFC 9068 §2.2 requires is missing or has the wrong type.
 * - `token_inactive`: `checkSession` is on and the issuer's introspection says the session is over.
 * - `jwks_unavailable`: the issuer's metadata or key set could not be fetched (not the token's fault).
 * - `introspection_unavailable`: `checkSession` is on and introspection failed (not the token's fault).
 *
 * @see RFC 9068 §4, RFC 8725 §3, RFC 7662 §2.2
 */
export type VerifyErrorCode =
  | 'token_too_large'
  | 'token_malformed'
  | 'alg_not_allowed'
  | 'typ_invalid'
  | 'kid_unknown'
  | 'signature_invalid'
  | 'iss_invalid'
  | 'aud_invalid'
  | 'token_expired'
  | 'token_not_yet_valid'
  | 'claim_invalid'
  | 'token_inactive'
  | 'jwks_unavailable'
  | 'introspection_unavailable';

const UNAVAILABLE: ReadonlySet<VerifyErrorCode> = new Set(['jwks_unavailable', 'introspection_unavailable']);

/**
 * The one error `verify()` rejects with, like jose's `JOSEError` with its `code`.
 *
 * Messages are fixed sentences: they never contain the token or any value taken
 * from it, so they are safe to log and to send back in `error_description`
 * (RFC 6750 §3).
 * @see RFC 6750 §3.1
 */
export class VerifyError extends Error {
  override readonly name = 'VerifyError';
  /** Machine-readable reason; see {@link VerifyErrorCode}. */
  readonly code: VerifyErrorCode;

  constructor(code: VerifyErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }

  /**
   * True when the token itself was refused (answer 401 `invalid_token`, RFC 6750 §3.1);
   * false when the issuer could not be reached (answer 503, the token may be fine).
   */
  get isTokenError(): boolean {
    return !UNAVAILABLE.has(this.code);
  }
}
