import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { authenticateClient } from '../../core/clients.js';
import { DEVICE_TTL_MS } from '../../core/device-token.js';
import { BatonError } from '../../core/errors.js';
import type { SessionRecord } from '../../store/store.js';
import { readClientCredentials } from '../client-auth.js';
import { bearerToken, NO_STORE, type RouteContext, requireAccessToken, tokenResponse } from '../context.js';
import {
  assertCsrfProof,
  clearRefreshCookie,
  DEVICE_COOKIE,
  REFRESH_COOKIE,
  setDeviceCookie,
  setRefreshCookie,
} from '../cookies.js';
import type { RouteErrorConfig } from '../errors.js';

const config: RouteErrorConfig = { invalidGrantStatus: 401 };

const email = { type: 'string', minLength: 1, maxLength: 320 } as const;
const password = { type: 'string', maxLength: 4096 } as const;

const iso = (ms: number) => new Date(ms).toISOString();
const sessionJson = (s: SessionRecord, currentId: string) => ({
  id: s.id,
  client_id: s.clientId,
  created_at: iso(s.createdAt),
  last_used_at: iso(s.lastUsedAt),
  expires_at: iso(Math.min(s.idleExpiresAt, s.expiresAt)),
  user_agent: s.userAgent,
  ip: s.ip,
  current: s.id === currentId,
});

function cookieToken(request: FastifyRequest): string | undefined {
  const value = request.cookies[REFRESH_COOKIE];
  return value === undefined || value === '' ? undefined : value;
}

/** The `/auth/*` routes: the first-party API of DESIGN.md. */
export function registerAuthRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const { service, limits, options } = ctx;
  const origins = options.allowedOrigins;

  async function originsFor(clientId: string | undefined): Promise<readonly string[]> {
    if (clientId === undefined) return origins;
    const client = await service.findClient(clientId);
    return client && client.allowedOrigins.length > 0 ? [...origins, ...client.allowedOrigins] : origins;
  }

  app.post<{ Body: { email: string; password: string } }>(
    '/auth/register',
    {
      config,
      schema: { body: { type: 'object', required: ['email', 'password'], properties: { email, password } } },
    },
    async (request, reply) => {
      const user = await service.register({ email: request.body.email, password: request.body.password });
      return reply
        .code(201)
        .send({ user: { id: user.id, email: user.email, created_at: iso(user.createdAt) } });
    },
  );

  app.post<{
    Body: {
      email: string;
      password: string;
      client_id?: string;
      client_secret?: string;
      mode?: 'token' | 'cookie';
      scope?: string;
      device_token?: string;
    };
  }>(
    '/auth/login',
    {
      config,
      schema: {
        body: {
          type: 'object',
          required: ['email', 'password'],
          properties: {
            email,
            password,
            client_id: { type: 'string', minLength: 1, maxLength: 200 },
            client_secret: { type: 'string', minLength: 1, maxLength: 512 },
            mode: { type: 'string', enum: ['token', 'cookie'] },
            scope: { type: 'string', maxLength: 1000 },
            // No maxLength: an overlong or malformed device token is ignored like an absent one, not refused.
            device_token: { type: 'string' },
          },
        },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const cookieMode = body.mode === 'cookie';
      // A confidential client (a trusted backend) logs users in with its credentials: Basic or client_secret.
      // Other Authorization schemes are not client authentication and are left alone here.
      const authorization = request.headers.authorization;
      const credentials = readClientCredentials(
        authorization !== undefined && /^Basic(\s|$)/i.test(authorization) ? authorization : undefined,
        { client_id: body.client_id, client_secret: body.client_secret },
      );
      let clientId = body.client_id;
      let clientAuthenticated = false;
      if (credentials !== null && credentials.secret !== null) {
        clientId = (await authenticateClient((id) => options.store.findClient(id), credentials)).id;
        clientAuthenticated = true;
        if (cookieMode)
          throw new BatonError('invalid_request', 'Cookie mode is for browser apps (public clients)');
      }
      if (cookieMode) assertCsrfProof(request, await originsFor(clientId));
      const account = body.email.trim().toLowerCase();
      // A device that logged in to this very account before is counted on its
      // own bucket, so an attacker's failures cannot lock its owner out. Looked
      // up by the token's id, then compared with the email typed: a device of
      // another account, or a made-up token, changes nothing, whether or not
      // the account exists. No token, no query. The body wins over the cookie.
      const presented = body.device_token ?? request.cookies[DEVICE_COOKIE];
      const found = presented === undefined ? null : await service.findTrustedDevice(presented);
      const device = found !== null && found.email === account ? found : null;
      await limits.assertLoginAllowed(account, request.ip, device?.id);
      let tokens: Awaited<ReturnType<typeof service.login>>;
      try {
        tokens = await service.login({
          email: body.email,
          password: body.password,
          ...(clientId !== undefined ? { clientId } : {}),
          clientAuthenticated,
          ...(body.scope !== undefined ? { scope: body.scope } : {}),
          userAgent: request.headers['user-agent'] ?? null,
          ip: request.ip,
          device,
        });
      } catch (err) {
        if (err instanceof BatonError && err.code === 'invalid_credentials')
          await limits.loginFailed(account, request.ip, device?.id);
        throw err;
      }
      await limits.loginSucceeded(account, device?.id);
      if (cookieMode) setRefreshCookie(reply, tokens.refreshToken, tokens.refreshExpiresAt, service.now());
      setDeviceCookie(reply, tokens.deviceToken, DEVICE_TTL_MS);
      // In cookie mode the page never reads a long-lived secret: the device token travels only in its cookie.
      return reply.headers(NO_STORE).send({
        ...tokenResponse(tokens, !cookieMode),
        ...(cookieMode ? {} : { device_token: tokens.deviceToken }),
      });
    },
  );

  app.post<{ Body: { refresh_token?: string } | undefined }>(
    '/auth/refresh',
    {
      config,
      schema: { body: { type: 'object', properties: { refresh_token: { type: 'string', maxLength: 200 } } } },
    },
    async (request, reply) => {
      reply.headers(NO_STORE);
      const fromBody = request.body?.refresh_token;
      const fromCookie = fromBody === undefined ? cookieToken(request) : undefined;
      if (fromBody === undefined && fromCookie === undefined) {
        throw new BatonError('invalid_grant', 'No refresh token was presented');
      }
      // A cookie rides along on every same-site request: it only counts with the CSRF proof.
      if (fromCookie !== undefined) assertCsrfProof(request, origins);
      const tokens = await service.refresh({
        refreshToken: fromBody ?? fromCookie,
        userAgent: request.headers['user-agent'] ?? null,
        ip: request.ip,
      });
      if (fromCookie !== undefined)
        setRefreshCookie(reply, tokens.refreshToken, tokens.refreshExpiresAt, service.now());
      return reply.send(tokenResponse(tokens, fromCookie === undefined));
    },
  );

  app.post<{ Body: { refresh_token?: string } | undefined }>(
    '/auth/logout',
    {
      config,
      schema: { body: { type: 'object', properties: { refresh_token: { type: 'string', maxLength: 200 } } } },
    },
    async (request, reply) => {
      const fromBody = request.body?.refresh_token;
      const fromCookie = fromBody === undefined ? cookieToken(request) : undefined;
      if (fromBody !== undefined) {
        await service.revokeRefreshToken(fromBody, 'logout');
      } else if (fromCookie !== undefined) {
        assertCsrfProof(request, origins);
        await service.revokeRefreshToken(fromCookie, 'logout');
      } else {
        const accessToken = bearerToken(request);
        if (accessToken === null) {
          throw new BatonError(
            'invalid_request',
            'Send the refresh token (body or cookie) or an access token',
          );
        }
        // A genuine access token ends its own session, even one already ended (logout is idempotent);
        // a bad one is `invalid_token`, and a store failure stays a server error, not a 401.
        const auth = await service.authenticate(accessToken, { checkSession: false });
        await service.revokeSession(auth.claims.sid, 'logout');
      }
      clearRefreshCookie(reply);
      return reply.code(204).headers(NO_STORE).send();
    },
  );

  app.post('/auth/logout-all', { config }, async (request, reply) => {
    const auth = await requireAccessToken(ctx, request);
    await service.logoutAll(auth.claims.sub);
    clearRefreshCookie(reply);
    return reply.code(204).headers(NO_STORE).send();
  });

  app.get('/auth/sessions', { config }, async (request, reply) => {
    const auth = await requireAccessToken(ctx, request);
    const sessions = await service.listSessions(auth.claims.sub);
    return reply.headers(NO_STORE).send({ sessions: sessions.map((s) => sessionJson(s, auth.claims.sid)) });
  });

  app.delete<{ Params: { id: string } }>(
    '/auth/sessions/:id',
    {
      config,
      schema: { params: { type: 'object', properties: { id: { type: 'string', maxLength: 100 } } } },
    },
    async (request, reply) => {
      const auth = await requireAccessToken(ctx, request);
      await service.revokeUserSession(auth.claims.sub, request.params.id);
      if (request.params.id === auth.claims.sid) clearRefreshCookie(reply);
      return reply.code(204).headers(NO_STORE).send();
    },
  );

  app.post<{ Body: { current_password: string; new_password: string } }>(
    '/auth/password',
    {
      config,
      schema: {
        body: {
          type: 'object',
          required: ['current_password', 'new_password'],
          properties: { current_password: password, new_password: password },
        },
      },
    },
    async (request, reply) => {
      const auth = await requireAccessToken(ctx, request);
      // Guessing the current password through a stolen access token is a login attempt like any other.
      await limits.assertLoginAllowed(auth.claims.sub, request.ip);
      try {
        await service.changePassword({
          userId: auth.claims.sub,
          sessionId: auth.claims.sid,
          currentPassword: request.body.current_password,
          newPassword: request.body.new_password,
          ip: request.ip,
        });
      } catch (err) {
        if (err instanceof BatonError && err.code === 'access_denied')
          await limits.loginFailed(auth.claims.sub, request.ip);
        throw err;
      }
      return reply.code(204).headers(NO_STORE).send();
    },
  );

  app.get('/auth/me', { config }, async (request: FastifyRequest, reply: FastifyReply) => {
    const auth = await requireAccessToken(ctx, request);
    const user = await service.getUser(auth.claims.sub);
    if (!user) throw new BatonError('invalid_token', 'The user of this token no longer exists');
    return reply.headers(NO_STORE).send({
      user: { id: user.id, email: user.email, created_at: iso(user.createdAt) },
      session_id: auth.claims.sid,
      client_id: auth.claims.client_id,
      ...(auth.claims.scope ? { scope: auth.claims.scope } : {}),
    });
  });
}
