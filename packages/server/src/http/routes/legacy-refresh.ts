import type { FastifyInstance } from 'fastify';
import { BatonError } from '../../core/errors.js';
import { NO_STORE, type RouteContext } from '../context.js';
import { assertSameSiteRequest, requestCookie } from '../cookies.js';
import type { RouteErrorConfig } from '../errors.js';

const config: RouteErrorConfig = { surface: 'legacy' };

/**
 * The legacy tutorial route: `POST /api/v1/users/refresh-token` is the route
 * of the Express+MongoDB tutorial controller Baton grew from, kept with its
 * response shape for apps migrating from it. Same contract (cookie
 * `refreshToken` or body `refreshToken`, no custom header), but on Baton's
 * rotation: one-time tokens, reuse detection, hashed storage. Its cookies
 * are SameSite=Strict and a foreign `Origin` or `Sec-Fetch-Site:
 * cross-site` is refused, which is what stands in for the missing CSRF
 * header. It never reads a `DPoP` header: it binds nothing, and a
 * DPoP-bound session's token is refused here (401 `invalid_grant`, nothing
 * revoked), since this contract has no way to carry a proof.
 */
export function registerLegacyRefreshRoute(app: FastifyInstance, ctx: RouteContext): void {
  app.post<{ Body: { refreshToken?: string } | undefined }>(
    '/api/v1/users/refresh-token',
    {
      config,
      schema: { body: { type: 'object', properties: { refreshToken: { type: 'string', maxLength: 200 } } } },
    },
    async (request, reply) => {
      reply.headers(NO_STORE);
      assertSameSiteRequest(request, ctx.options.allowedOrigins);
      const cookie = requestCookie(request, 'refreshToken');
      const incoming = (cookie === '' ? undefined : cookie) ?? request.body?.refreshToken;
      if (incoming === undefined) throw new BatonError('invalid_grant', 'Unauthorized request');
      const tokens = await ctx.service.refresh({
        refreshToken: incoming,
        userAgent: request.headers['user-agent'] ?? null,
        ip: request.ip,
      });
      const cookieOptions = { httpOnly: true, secure: true, sameSite: 'strict', path: '/' } as const;
      const maxAge = Math.max(0, Math.floor((tokens.refreshExpiresAt - ctx.service.now()) / 1000));
      return reply
        .setCookie('accessToken', tokens.accessToken, { ...cookieOptions, maxAge: tokens.expiresIn })
        .setCookie('refreshToken', tokens.refreshToken, { ...cookieOptions, maxAge })
        .send({
          statusCode: 200,
          data: { accessToken: tokens.accessToken, refreshToken: tokens.refreshToken },
          message: 'Access token refreshed',
          success: true,
        });
    },
  );
}
