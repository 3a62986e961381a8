import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { BatonError, type BatonErrorCode } from '../core/errors.js';

const STATUS: Record<BatonErrorCode, number> = {
  invalid_request: 400,
  invalid_client: 401,
  invalid_grant: 400,
  unauthorized_client: 400,
  unsupported_grant_type: 400,
  unsupported_token_type: 400,
  invalid_scope: 400,
  invalid_token: 401,
  unauthorized: 401,
  insufficient_scope: 403,
  access_denied: 403,
  invalid_credentials: 401,
  email_taken: 409,
  not_found: 404,
  method_not_allowed: 405,
  payload_too_large: 413,
  unsupported_media_type: 415,
  too_many_requests: 429,
  temporarily_unavailable: 503,
  server_error: 500,
};

/** Fastify's own error codes that are the client's fault, mapped to ours. */
const FASTIFY_CODES: Record<string, [BatonErrorCode, string]> = {
  FST_ERR_CTP_BODY_TOO_LARGE: ['payload_too_large', 'The request body is too large'],
  FST_ERR_CTP_INVALID_MEDIA_TYPE: ['unsupported_media_type', 'Unsupported Content-Type'],
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: ['invalid_request', 'Content-Length does not match the body'],
  FST_ERR_CTP_EMPTY_JSON_BODY: ['invalid_request', 'The JSON body is empty'],
  FST_ERR_CTP_INVALID_JSON_BODY: ['invalid_request', 'The body is not valid JSON'],
  FST_ERR_BAD_URL: ['invalid_request', 'The URL is malformed'],
  FST_ERR_ASYNC_CONSTRAINT: ['invalid_request', 'The request is malformed'],
};

/** Per-route switches read by the error handler (`config` of a Fastify route). */
export interface RouteErrorConfig {
  /** `invalid_grant` answers 401 on `/auth/*` (as the seed does) but 400 on `/oauth/*` (RFC 6749 §5.2). */
  invalidGrantStatus?: 400 | 401;
  /** Adds the seed's `{statusCode, message, success: false}` members for apps migrating from it. */
  seedShape?: boolean;
}

/** Converts anything thrown into a BatonError; unknown failures become a bare `server_error`. */
export function toBatonError(err: unknown): BatonError {
  if (err instanceof BatonError) return err;
  const fe = err as FastifyError;
  if (fe && Array.isArray(fe.validation)) {
    const first = fe.validation[0];
    const where = fe.validationContext ?? 'body';
    const path = first?.instancePath ? `${where}${first.instancePath.replaceAll('/', '.')}` : where;
    const missing = (first?.params as { missingProperty?: string } | undefined)?.missingProperty;
    const detail = missing ? `${where}.${missing} is required` : `${path} ${first?.message ?? 'is invalid'}`;
    return new BatonError('invalid_request', detail);
  }
  const mapped = fe?.code ? FASTIFY_CODES[fe.code] : undefined;
  if (mapped) return new BatonError(mapped[0], mapped[1]);
  if (fe && typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    // Any other client error from Fastify or a plugin: keep its status class, not its text (it may echo input).
    return new BatonError('invalid_request', 'The request is malformed');
  }
  return new BatonError('server_error', 'Internal server error', { cause: err });
}

/** The HTTP status for an error on a given route. */
export function statusOf(err: BatonError, config: RouteErrorConfig | undefined): number {
  if (err.code === 'invalid_grant' && config?.invalidGrantStatus) return config.invalidGrantStatus;
  return STATUS[err.code];
}

/**
 * The one error handler: every error leaves as `{error, error_description}`
 * with the status and headers its code implies (RFC 6749 §5.2, RFC 6750 §3.1).
 */
export function sendError(err: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const e = toBatonError(err);
  const config = request.routeOptions?.config as RouteErrorConfig | undefined;
  const status = statusOf(e, config);
  if (status >= 500) request.log.error({ err: e.cause ?? e }, 'request failed');
  reply.code(status);
  reply.header('content-type', 'application/json; charset=utf-8');
  reply.header('cache-control', 'no-store');
  reply.header('pragma', 'no-cache');
  if (e.code === 'invalid_token') {
    reply.header(
      'www-authenticate',
      `Bearer realm="baton", error="invalid_token", error_description="${e.message.replaceAll('"', "'")}"`,
    );
  } else if (e.code === 'invalid_client') {
    // RFC 6749 §5.2: a 401 for client authentication names the scheme the client should use.
    reply.header('www-authenticate', 'Basic realm="baton"');
  } else if (e.code === 'unauthorized') {
    reply.header('www-authenticate', 'Bearer realm="baton"');
  } else if (e.code === 'insufficient_scope') {
    reply.header('www-authenticate', `Bearer realm="baton", error="insufficient_scope"`);
  }
  if (e.retryAfter !== undefined) reply.header('retry-after', String(Math.max(1, Math.ceil(e.retryAfter))));
  const body: Record<string, unknown> = {
    error: e.code,
    error_description: status >= 500 ? 'Internal server error' : e.message,
  };
  if (config?.seedShape)
    Object.assign(body, { statusCode: status, message: body.error_description, success: false });
  return reply.send(body);
}
