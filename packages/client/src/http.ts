import { parseRetryAfter } from './backoff.js';
import { startTimer } from './coordination.js';
import { BatonClientError } from './errors.js';

/** The fetch signature the client needs (the global one, undici's, or a test double). */
export type FetchLike = (input: Request | string | URL, init?: RequestInit) => Promise<Response>;

/** What the auth endpoints need to know about the client. */
export interface AuthHttpContext {
  baseUrl: string;
  mode: 'cookie' | 'token';
  fetch: FetchLike;
  /** Timeout of every auth request except refreshes. */
  timeoutMs: number;
  /** Timeout of `POST /auth/refresh`: kept inside the server's reuse grace window (see options.ts). */
  refreshTimeoutMs: number;
  now: () => number;
}

/** A token response (login or refresh), validated. */
export interface TokenGrant {
  accessToken: string;
  /** Seconds, as sent by the server. */
  expiresIn: number;
  refreshToken?: string;
  sessionId?: string;
  scope?: string;
  /**
   * Token mode, login only: the server's `device_token` (`bdv_…`), proof that
   * this device logged in before (docs/http-api.md, "Device tokens").
   */
  deviceToken?: string;
}

/**
 * Longest device token the client keeps. The server's are about 70
 * characters; anything far longer is not one of them, and keeping it would
 * only bloat every stored state.
 */
const MAX_DEVICE_TOKEN_LENGTH = 512;

/** The header that, with the Origin check, is the CSRF proof of cookie mode (SECURITY.md 29). */
export const CSRF_HEADER = 'X-Baton-CSRF';

/**
 * POSTs JSON to an auth endpoint with a timeout. In cookie mode it carries
 * the CSRF header and `credentials: 'include'` (so a baseUrl on another
 * origin of the same site still gets its cookie). Network failures and
 * timeouts become retryable BatonClientErrors; HTTP errors are returned, for
 * the caller to map with {@link errorFromResponse}.
 */
export async function postAuth(
  ctx: AuthHttpContext,
  path: string,
  body: Record<string, unknown>,
  headers: Record<string, string> = {},
): Promise<Response> {
  const abort = new AbortController();
  const timer = startTimer(() => abort.abort(), ctx.timeoutMs);
  const init: RequestInit = {
    method: 'POST',
    headers: {
      'Content-Type': 'application/json',
      Accept: 'application/json',
      ...(ctx.mode === 'cookie' ? { [CSRF_HEADER]: '1' } : {}),
      ...headers,
    },
    body: JSON.stringify(body),
    cache: 'no-store',
    signal: abort.signal,
  };
  if (ctx.mode === 'cookie') init.credentials = 'include';
  try {
    // baseUrl has no trailing slash; appending keeps a path prefix (`https://x/baton`) that URL resolution would drop.
    return await ctx.fetch(`${ctx.baseUrl}${path}`, init);
  } catch (error) {
    if (abort.signal.aborted) {
      throw new BatonClientError('timeout', `${path} did not answer within ${ctx.timeoutMs} ms`, {
        retryable: true,
        cause: error,
      });
    }
    throw new BatonClientError('network_error', `${path} could not be reached`, {
      retryable: true,
      cause: error,
    });
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Reads a JSON body; a body that is not JSON (a proxy's HTML error page)
 * yields undefined. Also used for success bodies, so the timeout above
 * does not cover a body that trickles in — the lock's hold timeout does.
 */
export async function readJson(response: Response): Promise<unknown> {
  try {
    return await response.json();
  } catch {
    return undefined;
  }
}

/**
 * Maps an error response to a BatonClientError: 5xx and 429 are retryable
 * (with their `Retry-After`); any other status carries the server's
 * `error` code (`invalid_grant`, `invalid_credentials`, `email_taken`, …).
 * The message uses the server's description, never request data.
 */
export async function errorFromResponse(
  response: Response,
  path: string,
  now: number,
): Promise<BatonClientError> {
  const status = response.status;
  const json = await readJson(response);
  const body = typeof json === 'object' && json !== null ? (json as Record<string, unknown>) : {};
  const description =
    typeof body['error_description'] === 'string' ? body['error_description'].slice(0, 200) : '';
  const message = `${path} answered ${status}${description ? `: ${description}` : ''}`;
  if (status >= 500 || status === 429) {
    // 503 may carry Retry-After as well as 429 (RFC 9110 §10.2.3).
    const retryAfterMs = parseRetryAfter(
      response.headers.get('Retry-After'),
      response.headers.get('Date'),
      now,
    );
    return new BatonClientError(status === 429 ? 'too_many_requests' : 'server_error', message, {
      status,
      retryable: true,
      ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
    });
  }
  const code =
    typeof body['error'] === 'string' && /^[a-z][a-z0-9_]{0,63}$/.test(body['error'])
      ? body['error']
      : 'request_failed';
  return new BatonClientError(code, message, { status });
}

/**
 * Validates a token response. In token mode a missing refresh token is an
 * error; in cookie mode one that *is* present is ignored and not kept, so it
 * never lands in storage even if a misconfigured server sends it. The same
 * holds for `device_token`, which is optional in token mode (the browser's
 * HttpOnly cookie carries it in cookie mode).
 */
export function parseTokenGrant(json: unknown, mode: 'cookie' | 'token', path: string): TokenGrant {
  const bad = (what: string) =>
    // Retryable: a refresh the server did perform is answered again within its grace window.
    new BatonClientError('invalid_response', `${path} returned an invalid token response (${what})`, {
      status: 200,
      retryable: true,
    });
  if (typeof json !== 'object' || json === null) throw bad('not JSON');
  const body = json as Record<string, unknown>;
  const accessToken = body['access_token'];
  const expiresIn = body['expires_in'];
  if (typeof accessToken !== 'string' || accessToken === '') throw bad('access_token');
  if (typeof expiresIn !== 'number' || !Number.isFinite(expiresIn) || expiresIn <= 0) throw bad('expires_in');
  if (typeof body['token_type'] === 'string' && body['token_type'].toLowerCase() !== 'bearer')
    throw bad('token_type');
  const grant: TokenGrant = { accessToken, expiresIn };
  if (mode === 'token') {
    const refreshToken = body['refresh_token'];
    if (typeof refreshToken !== 'string' || refreshToken === '') throw bad('refresh_token');
    grant.refreshToken = refreshToken;
    // Optional: a server without device trust (or a refresh response) has
    // none, and a missing or odd one must not fail a login that worked.
    const deviceToken = body['device_token'];
    if (
      typeof deviceToken === 'string' &&
      deviceToken !== '' &&
      deviceToken.length <= MAX_DEVICE_TOKEN_LENGTH
    )
      grant.deviceToken = deviceToken;
  }
  if (typeof body['session_id'] === 'string') grant.sessionId = body['session_id'];
  if (typeof body['scope'] === 'string') grant.scope = body['scope'];
  return grant;
}
