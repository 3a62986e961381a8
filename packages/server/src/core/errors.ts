/**
 * Every error code Baton can answer with. Where OAuth defines one
 * (RFC 6749 §5.2, RFC 6750 §3.1, RFC 7009, RFC 7662, RFC 9449 §12.2) its
 * name is used.
 */
export type BatonErrorCode =
  | 'invalid_request'
  | 'invalid_client'
  | 'invalid_grant'
  | 'unauthorized_client'
  | 'unsupported_grant_type'
  | 'unsupported_token_type'
  | 'invalid_scope'
  | 'invalid_dpop_proof'
  | 'use_dpop_nonce'
  | 'invalid_token'
  | 'unauthorized'
  | 'insufficient_scope'
  | 'access_denied'
  | 'invalid_credentials'
  | 'email_taken'
  | 'not_found'
  | 'method_not_allowed'
  | 'payload_too_large'
  | 'headers_too_large'
  | 'request_timeout'
  | 'unsupported_media_type'
  | 'too_many_requests'
  | 'temporarily_unavailable'
  | 'server_error';

/** Extra facts an error carries for the HTTP layer (never secrets). */
export interface BatonErrorOptions {
  /** Seconds until a rate-limited caller may try again (`Retry-After`). */
  retryAfter?: number;
  /** The underlying failure, kept for logs, never sent to clients. */
  cause?: unknown;
}

/**
 * The one error type of Baton. Callers and tests switch on `code`, never on
 * the message, which is a human-readable `error_description` that must never
 * contain a token, password or hash.
 */
export class BatonError extends Error {
  override readonly name = 'BatonError';
  readonly code: BatonErrorCode;
  readonly retryAfter: number | undefined;

  constructor(code: BatonErrorCode, description: string, options: BatonErrorOptions = {}) {
    super(description, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retryAfter = options.retryAfter;
  }
}

/** True when `err` is a {@link BatonError}, optionally with the given code. */
export function isBatonError(err: unknown, code?: BatonErrorCode): err is BatonError {
  return err instanceof BatonError && (code === undefined || err.code === code);
}
