import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { BatonError } from '../../core/errors.js';
import type { RouteContext } from '../context.js';
import { HEALTH, READINESS } from '../openapi-shapes.js';

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
  const noStore = { 'cache-control': 'no-store' };
  app.get(
    '/healthz',
    {
      config: {
        openapi: {
          tag: 'operations',
          summary: 'Liveness: the process answers',
          responses: { 200: { description: 'Alive', body: HEALTH, headers: noStore } },
          errors: [],
        },
      },
    },
    async (_request, reply) => reply.header('cache-control', 'no-store').send({ status: 'ok' }),
  );

  // Each dependency on its own: without the store nothing works (503, take the
  // instance out of rotation); without Redis only the limits' sharing is lost
  // (200, degraded), so a Redis outage must not empty a whole pool.
  app.get(
    '/readyz',
    {
      config: {
        openapi: {
          tag: 'operations',
          summary: 'Readiness, per dependency',
          description:
            'Without the store nothing works (503: take the instance out of rotation); without Redis only the sharing of rate limits is lost (200, degraded).',
          responses: {
            200: { description: 'Ready, or degraded (Redis down)', body: READINESS, headers: noStore },
            503: { description: 'Unready: the store does not answer', body: READINESS, headers: noStore },
          },
          errors: [],
        },
      },
    },
    async (_request, reply) => {
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
    },
  );

  app.get(
    '/metrics',
    {
      config: {
        openapi: {
          tag: 'operations',
          summary: 'Prometheus metrics',
          description:
            'Behind the metrics bearer token when BATON_METRICS_TOKEN is set; otherwise open, so keep it internal.',
          security: [['metricsToken'], []],
          responses: {
            200: {
              description: 'The Prometheus text exposition format',
              body: { type: 'string' },
              contentType: 'text/plain; version=0.0.4; charset=utf-8',
              headers: noStore,
            },
          },
          errors: ['unauthorized'],
        },
      },
    },
    async (request, reply) => {
      const token = ctx.options.metricsToken;
      // The counters tell an attacker how their guessing goes and which Node runs here.
      if (token !== undefined && !hasBearer(request, token))
        throw new BatonError('unauthorized', 'The metrics need the metrics bearer token');
      const text = await ctx.metrics.registry.metrics();
      return reply
        .header('content-type', ctx.metrics.registry.contentType)
        .header('cache-control', 'no-store')
        .send(text);
    },
  );
}
