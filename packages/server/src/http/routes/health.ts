import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { BatonError } from '../../core/errors.js';
import type { RouteContext } from '../context.js';

const digest = (text: string) => createHash('sha256').update(text, 'utf8').digest();

/**
 * Whether a request carries `Authorization: Bearer <token>`. Both sides are
 * hashed first, so the comparison is constant-time whatever the lengths.
 * @see RFC 6750 §2.1
 */
function hasBearer(request: FastifyRequest, token: string): boolean {
  const header = request.headers.authorization ?? '';
  const match = /^Bearer +(\S+) *$/i.exec(header);
  return match !== null && timingSafeEqual(digest(match[1]!), digest(token));
}

/** Liveness, readiness and Prometheus metrics (behind `metricsToken` when one is set). */
export function registerHealthRoutes(app: FastifyInstance, ctx: RouteContext): void {
  app.get('/healthz', async (_request, reply) =>
    reply.header('cache-control', 'no-store').send({ status: 'ok' }),
  );

  app.get('/readyz', async (_request, reply) => {
    const { dialect } = await ctx.service.checkStore();
    return reply.header('cache-control', 'no-store').send({ status: 'ready', store: dialect });
  });

  app.get('/metrics', async (request, reply) => {
    const token = ctx.options.metricsToken;
    // The counters tell an attacker how their guessing goes and which Node runs here.
    if (token !== undefined && !hasBearer(request, token))
      throw new BatonError('unauthorized', 'The metrics need the metrics bearer token');
    const text = await ctx.metrics.registry.metrics();
    return reply
      .header('content-type', ctx.metrics.registry.contentType)
      .header('cache-control', 'no-store')
      .send(text);
  });
}
