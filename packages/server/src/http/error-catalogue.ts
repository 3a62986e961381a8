import { BatonError, type BatonErrorCode } from '../core/errors.js';

/**
 * Which contract a route answers errors under (its Fastify `config.surface`):
 * - `baton`: Baton's own routes, the default;
 * - `auth`: `/auth/*`, where a bad refresh token is a 401, as in the
 *   tutorial controller Baton grew from;
 * - `oauth`: `/oauth/*`, by the letter of RFC 6749 §5.2 (a bad grant is a
 *   400, and there is no 415);
 * - `legacy`: the legacy tutorial route, which also keeps that controller's
 *   body members.
 */
export type ErrorSurface = 'baton' | 'auth' | 'oauth' | 'legacy';

/** How one surface departs from an entry's defaults. */
export interface SurfaceOverride {
  status?: number;
  /** Answer as this code instead, with this description (a standard without the code). */
  as?: { code: BatonErrorCode; description: string };
}

/** One row of the catalogue. */
export interface ErrorEntry {
  /** The HTTP status, unless the surface's column says otherwise. */
  status: number;
  /** The `error` member on the wire when it is not the code itself. */
  error?: string;
  /** The `WWW-Authenticate` challenge the code carries. @see RFC 6750 §3, RFC 6749 §5.2 */
  challenge?: (err: BatonError) => string;
  /** Per-surface departures. */
  surfaces?: Partial<Record<ErrorSurface, SurfaceOverride>>;
}

/** The body shape of a surface: the OAuth one, or with the tutorial controller's members added. */
export const SURFACE_BODY: Readonly<Record<ErrorSurface, 'oauth' | 'legacy'>> = {
  baton: 'oauth',
  auth: 'oauth',
  oauth: 'oauth',
  legacy: 'legacy',
};

const bearerError = (err: BatonError) =>
  `Bearer realm="baton", error="${err.code}", error_description="${err.message.replaceAll('"', "'")}"`;

/** A bad grant: 400 by RFC 6749 §5.2, 401 where the tutorial controller answered 401. */
const grantStatus = { auth: { status: 401 }, legacy: { status: 401 }, oauth: { status: 400 } };

/**
 * The one error catalogue: for every code, its status, its challenge and
 * how each surface departs from them. The error handler, the parser-error
 * handler and the drain refusal all answer from this table.
 * @see RFC 6749 §5.2, RFC 6750 §3.1, RFC 7009 §2.2.1, RFC 7662 §2.3, RFC 9449 §5, §8
 */
export const ERROR_CATALOGUE: Readonly<Record<BatonErrorCode, ErrorEntry>> = {
  invalid_request: { status: 400 },
  // RFC 6749 §5.2: a 401 for client authentication names the scheme the client should use.
  invalid_client: { status: 401, challenge: () => 'Basic realm="baton"' },
  invalid_grant: { status: 400, surfaces: grantStatus },
  unauthorized_client: { status: 400 },
  unsupported_grant_type: { status: 400 },
  unsupported_token_type: { status: 400 },
  invalid_scope: { status: 400 },
  // RFC 9449 §5, §8: a token request with a bad proof, or one that needs a fresh nonce, is a 400 on
  // every surface (the nonce itself travels in the DPoP-Nonce header the DPoP-aware routes set).
  invalid_dpop_proof: { status: 400 },
  use_dpop_nonce: { status: 400 },
  invalid_token: { status: 401, challenge: bearerError },
  unauthorized: { status: 401, challenge: () => 'Bearer realm="baton"' },
  insufficient_scope: { status: 403, challenge: () => 'Bearer realm="baton", error="insufficient_scope"' },
  access_denied: { status: 403 },
  invalid_credentials: { status: 401 },
  email_taken: { status: 409 },
  not_found: { status: 404 },
  method_not_allowed: { status: 405 },
  payload_too_large: { status: 413 },
  // RFC 9110 §15.5.16; RFC 6749 §5.2 has no such code, so the body says invalid_request.
  headers_too_large: { status: 431, error: 'invalid_request' },
  // RFC 9110 §15.5.9: the request did not arrive in time; the body says invalid_request too.
  request_timeout: { status: 408, error: 'invalid_request' },
  unsupported_media_type: {
    status: 415,
    surfaces: {
      oauth: {
        as: { code: 'invalid_request', description: 'The body must be application/x-www-form-urlencoded' },
      },
    },
  },
  too_many_requests: { status: 429 },
  temporarily_unavailable: { status: 503 },
  server_error: { status: 500 },
};

/** An error as it leaves: status, headers and JSON body. */
export interface RenderedError {
  status: number;
  headers: Record<string, string>;
  body: Record<string, unknown>;
}

/**
 * Looks an error up in the catalogue for a surface. Everything an error
 * answer carries comes from here: `{error, error_description}`, the status,
 * `Cache-Control: no-store` (it may answer a token request, RFC 6749 §5.2),
 * the challenge and `Retry-After`. A 5xx never describes its cause.
 */
export function renderError(thrown: BatonError, surface: ErrorSurface = 'baton'): RenderedError {
  const as = ERROR_CATALOGUE[thrown.code].surfaces?.[surface]?.as;
  const err = as
    ? new BatonError(as.code, as.description, {
        ...(thrown.retryAfter !== undefined ? { retryAfter: thrown.retryAfter } : {}),
      })
    : thrown;
  const entry = ERROR_CATALOGUE[err.code];
  const status = entry.surfaces?.[surface]?.status ?? entry.status;
  const headers: Record<string, string> = {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
    pragma: 'no-cache',
  };
  const challenge = entry.challenge?.(err);
  if (challenge !== undefined) headers['www-authenticate'] = challenge;
  if (err.retryAfter !== undefined) headers['retry-after'] = String(Math.max(1, Math.ceil(err.retryAfter)));
  const body: Record<string, unknown> = {
    error: entry.error ?? err.code,
    error_description: status >= 500 ? 'Internal server error' : err.message,
  };
  if (SURFACE_BODY[surface] === 'legacy')
    Object.assign(body, { statusCode: status, message: body.error_description, success: false });
  return { status, headers, body };
}
