import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { BatonError, type BatonErrorCode } from '../core/errors.js';
import { type ErrorSurface, renderError } from './error-catalogue.js';

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

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The contract the route's errors follow (see {@link RouteErrorConfig}). */
    surface?: ErrorSurface;
  }
}

/** What a route declares in its Fastify `config` for the error handler. */
export interface RouteErrorConfig {
  /** The contract its errors follow (see {@link ErrorSurface}); default `baton`. */
  surface?: ErrorSurface;
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

/**
 * The one error handler: every error leaves as the catalogue renders it for
 * the route's surface (`{error, error_description}`, status, headers).
 * @see RFC 6749 §5.2, RFC 6750 §3.1
 */
export function sendError(err: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const e = toBatonError(err);
  const config = request.routeOptions?.config as RouteErrorConfig | undefined;
  const rendered = renderError(e, config?.surface);
  if (rendered.status >= 500) request.log.error({ err: e.cause ?? e }, 'request failed');
  return reply.code(rendered.status).headers(rendered.headers).send(rendered.body);
}
