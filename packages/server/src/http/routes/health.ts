import type { FastifyInstance } from 'fastify';
import { BatonError } from '../../core/errors.js';
import type { RouteContext } from '../context.js';

/** Liveness, readiness and Prometheus metrics. */
export function registerHealthRoutes(app: FastifyInstance, ctx: RouteContext): void {
  app.get('/healthz', async (_request, reply) =>
    reply.header('cache-control', 'no-store').send({ status: 'ok' }),
  );

  app.get('/readyz', async (_request, reply) => {
    try {
      await ctx.options.store.ping();
    } catch (err) {
      throw new BatonError('temporarily_unavailable', 'The store is not reachable', { cause: err });
    }
    return reply
      .header('cache-control', 'no-store')
      .send({ status: 'ready', store: ctx.options.store.dialect });
  });

  app.get('/metrics', async (_request, reply) => {
    const text = await ctx.metrics.registry.metrics();
    return reply
      .header('content-type', ctx.metrics.registry.contentType)
      .header('cache-control', 'no-store')
      .send(text);
  });
}
