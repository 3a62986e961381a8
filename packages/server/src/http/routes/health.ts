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

  // Each dependency on its own: without the store nothing works (503, take the
  // instance out of rotation); without Redis only the limits' sharing is lost
  // (200, degraded), so a Redis outage must not empty a whole pool.
  app.get('/readyz', async (_request, reply) => {
    const dialect = ctx.options.store.dialect;
    const started = performance.now();
    const storeUp = await ctx.service.checkStore().then(
      () => true,
      () => false,
    );
    const latency = Math.round((performance.now() - started) * 10) / 10;
    const redis = ctx.limits.redisStatus();
    const status = !storeUp ? 'unready' : redis === 'down' ? 'degraded' : 'ready';
    return reply
      .code(storeUp ? 200 : 503)
      .header('cache-control', 'no-store')
      .send({
        status,
        store: dialect,
        checks: {
          store: { status: storeUp ? 'up' : 'down', dialect, ...(storeUp ? { latency_ms: latency } : {}) },
          ...(redis ? { redis: { status: redis } } : {}),
        },
      });
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
