import type { FastifyInstance } from 'fastify';
import type { RouteContext } from '../context.js';

/** `GET /.well-known/jwks.json`: the public signing keys. @see RFC 7517 §5 */
export function registerWellKnownRoutes(app: FastifyInstance, ctx: RouteContext): void {
  app.get('/.well-known/jwks.json', async (_request, reply) => {
    // Verifiers may cache for five minutes: a new key is published well before it signs.
    return reply.header('cache-control', 'public, max-age=300').send(ctx.service.jwks());
  });
}
