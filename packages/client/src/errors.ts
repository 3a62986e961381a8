/**
 * Codes the client itself produces. Server error codes (`invalid_credentials`,
 * `email_taken`, `access_denied`, …) are passed through as they are, so
 * callers can switch on `code` for both.
 */
export type BatonClientErrorCode =
  /** The refresh token was refused: the session is over. */
  | 'invalid_grant'
  /** There is no session (never signed in, signed out here or in another tab). */
  | 'signed_out'
  /** The request never got an HTTP answer (offline, DNS, connection reset). */
  | 'network_error'
  /** An auth request, or the wait for the cross-tab refresh lock, took too long. */
  | 'timeout'
  /** The server answered 5xx. */
  | 'server_error'
  /** The server answered 429. */
  | 'too_many_requests'
  /** The server answered something that is not a valid token response. */
  | 'invalid_response'
  /** A 4xx without an error code the client recognises. */
  | 'request_failed'
  /** The client was disposed. */
  | 'disposed'
  /**
   * The session is bound to a DPoP key (RFC 9449) that this context does not
   * have (IndexedDB blocked, `dpop: false`): it is not refreshed from here,
   * and it is kept. The server's `invalid_dpop_proof` and `use_dpop_nonce`
   * pass through as they are, and keep the session too.
   */
  | 'dpop_unavailable';

/** Why a session ended, as reported by the `signedOut` event. */
export type SignOutReason =
  /** `logout()` was called (here or in another tab). */
  | 'logout'
  /** `logoutAll()` was called (here or in another tab). */
  | 'logout_all'
  /** The server refused the refresh token: expired, revoked, or replayed elsewhere. */
  | 'invalid_grant';

/** Extra facts an error may carry; none of them is ever a token or a password. */
export interface BatonClientErrorDetails {
  /** HTTP status, when the server answered. */
  status?: number;
  /** Whether trying again later can succeed (network, timeout, 5xx, 429). */
  retryable?: boolean;
  /** How long the client will wait before its next refresh attempt. */
  retryAfterMs?: number;
  /** For `signed_out`: why the session ended, when known. */
  reason?: SignOutReason;
  /** The underlying error (a fetch TypeError, an AbortError, …). */
  cause?: unknown;
}

/**
 * The one error class of `@baton/client`. Switch on `code`, never on the
 * message; `retryable` tells whether the session is still intact and a later
 * attempt can succeed.
 */
export class BatonClientError extends Error {
  /** A client code, or the server's `error` code passed through. */
  readonly code: BatonClientErrorCode | (string & {});
  /** HTTP status, when the server answered. */
  readonly status: number | undefined;
  /** True when the session is kept and a later attempt can succeed. */
  readonly retryable: boolean;
  /** The delay before the client's next refresh attempt, when it is backing off. */
  readonly retryAfterMs: number | undefined;
  /** For `signed_out`: why the session ended, when known. */
  readonly reason: SignOutReason | undefined;

  constructor(
    code: BatonClientErrorCode | (string & {}),
    message: string,
    details: BatonClientErrorDetails = {},
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'BatonClientError';
    this.code = code;
    this.status = details.status;
    this.retryable = details.retryable ?? false;
    this.retryAfterMs = details.retryAfterMs;
    this.reason = details.reason;
  }
}

/** True for an error the client produced (or passed through from the server). */
export function isBatonClientError(value: unknown): value is BatonClientError {
  return value instanceof BatonClientError;
}
