import type { FastifyInstance } from 'fastify';
import type { RouteContext } from '../context.js';

/** Liveness, readiness and Prometheus metrics. */
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

  app.get('/metrics', async (_request, reply) => {
    const text = await ctx.metrics.registry.metrics();
    return reply
      .header('content-type', ctx.metrics.registry.contentType)
      .header('cache-control', 'no-store')
      .send(text);
  });
}
