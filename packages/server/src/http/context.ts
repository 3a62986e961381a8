import type { FastifyRequest } from 'fastify';
import { BatonError } from '../core/errors.js';
import type { Authenticated, IssuedTokens, TokenService } from '../core/token-service.js';
import type { Metrics } from './metrics.js';
import type { ResolvedServerOptions } from './options.js';
import type { Limits } from './rate-limits.js';

/** What every route group is given. */
export interface RouteContext {
  service: TokenService;
  options: ResolvedServerOptions;
  limits: Limits;
  metrics: Metrics;
}

/** Headers every token response carries (RFC 6749 §5.1). */
export const NO_STORE = { 'cache-control': 'no-store', pragma: 'no-cache' } as const;

const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;

/**
 * The access token of a request, from `Authorization: Bearer` only (never
 * from a query string, RFC 6750 §2.3 is not supported on purpose: URLs leak
 * into logs). Null when absent.
 */
export function bearerToken(request: FastifyRequest): string | null {
  const header = request.headers.authorization;
  if (header === undefined || header === '') return null;
  const match = BEARER.exec(header);
  if (!match) throw new BatonError('invalid_token', 'The Authorization header is not a Bearer token');
  return match[1]!;
}

/** Authenticates a request by its access token; 401 without one. @see RFC 6750 §3.1 */
export async function requireAccessToken(ctx: RouteContext, request: FastifyRequest): Promise<Authenticated> {
  const token = bearerToken(request);
  if (token === null) throw new BatonError('unauthorized', 'An access token is required');
  return ctx.service.authenticate(token);
}

/**
 * The token response's shape for Fastify's response serialiser: a compiled
 * fast-json-stringify function writes it instead of `JSON.stringify`. The
 * properties are listed in the order {@link tokenResponse} writes them, so
 * the bytes are the same.
 */
export const TOKEN_RESPONSE_SCHEMA = {
  type: 'object',
  properties: {
    access_token: { type: 'string' },
    token_type: { type: 'string' },
    expires_in: { type: 'number' },
    refresh_token: { type: 'string' },
    scope: { type: 'string' },
    session_id: { type: 'string' },
  },
} as const;

/** The JSON token response; `includeRefreshToken` is false in cookie mode. @see RFC 6749 §5.1 */
export function tokenResponse(tokens: IssuedTokens, includeRefreshToken: boolean): Record<string, unknown> {
  return {
    access_token: tokens.accessToken,
    token_type: tokens.tokenType,
    expires_in: tokens.expiresIn,
    ...(includeRefreshToken ? { refresh_token: tokens.refreshToken } : {}),
    ...(tokens.scope ? { scope: tokens.scope } : {}),
    session_id: tokens.sessionId,
  };
}
