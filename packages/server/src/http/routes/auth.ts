import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { DEVICE_TTL_MS } from '../../core/device-token.js';
import { BatonError } from '../../core/errors.js';
import type { SessionRecord } from '../../store/store.js';
import { readClientCredentials } from '../client-auth.js';
import {
  bearerToken,
  NO_STORE,
  type RouteContext,
  requireAccessToken,
  TOKEN_RESPONSE_SCHEMA,
  tokenResponse,
} from '../context.js';
import {
  assertCsrfProof,
  assertSameSiteRequest,
  clearRefreshCookie,
  DEVICE_COOKIE,
  REFRESH_COOKIE,
  requestCookie,
  setDeviceCookie,
  setRefreshCookie,
} from '../cookies.js';
import { dpopInput, dpopNonceHook } from '../dpop-header.js';
import type { RouteErrorConfig } from '../errors.js';
import type { RouteDoc } from '../openapi.js';
import { refuseCrossSiteForms } from '../site-guard.js';
import { AUTH_DOCS } from './auth-docs.js';

const config: RouteErrorConfig = { surface: 'auth' };
/** Every state-changing `/auth/*` route: JSON only, no cross-site browser context (CSRF). */
const guarded = { config, preValidation: refuseCrossSiteForms };
/** A route's config with its `/openapi.json` entry (documentation only: never validated or serialised). */
const doc = (openapi: RouteDoc) => ({ config: { ...config, openapi } });

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
  dpop_bound: s.dpopJkt !== undefined,
});

function cookieToken(request: FastifyRequest): string | undefined {
  const value = requestCookie(request, REFRESH_COOKIE);
  return value === undefined || value === '' ? undefined : value;
}

/** The `/auth/*` routes: the first-party API (docs/http-api.md). */
export function registerAuthRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const { service, options } = ctx;
  const origins = options.allowedOrigins;
  const onRequest = dpopNonceHook(ctx);

  async function originsFor(clientId: string | undefined): Promise<readonly string[]> {
    if (clientId === undefined) return origins;
    const extra = await service.clients.browserOrigins(clientId);
    return extra.length > 0 ? [...origins, ...extra] : origins;
  }

  /**
   * The origins a browser request may come from: the server's, plus those of
   * the client concerned (`clientOf`, looked up only when the request's
   * Origin is not one of the server's own, so most requests cost nothing).
   */
  async function allowedOrigins(
    request: FastifyRequest,
    clientOf: () => Promise<string | undefined> | string | undefined,
  ): Promise<readonly string[]> {
    const origin = request.headers.origin;
    if (origin === undefined || origins.includes(origin)) return origins;
    return originsFor(await clientOf());
  }

  /** The client of the session a refresh token belongs to, through core; undefined for a bad token. */
  const sessionClientOf = (refreshToken: string | undefined) => async () =>
    refreshToken === undefined ? undefined : (await service.refreshTokenInfo(refreshToken))?.session.clientId;

  /** Refuses a browser request from an origin neither the server nor the token's client allows. */
  async function assertSiteOfAccessToken(request: FastifyRequest, clientId: string): Promise<void> {
    assertSameSiteRequest(request, await allowedOrigins(request, () => clientId));
  }

  /**
   * The client a request authenticated with a secret (Basic or
   * client_secret_post), if any. A public client only names itself, which
   * proves nothing, so that counts as none.
   */
  async function clientOfRequest(request: FastifyRequest) {
    const body = (request.body ?? {}) as { client_id?: string; client_secret?: string };
    // Other Authorization schemes (Bearer) are not client authentication and are left alone here.
    const authorization = request.headers.authorization;
    const credentials = readClientCredentials(
      authorization !== undefined && /^Basic(\s|$)/i.test(authorization) ? authorization : undefined,
      { client_id: body.client_id, client_secret: body.client_secret },
    );
    return credentials !== null && credentials.secret !== null
      ? service.clients.authenticate(credentials)
      : undefined;
  }

  app.post<{ Body: { email: string; password: string } }>(
    '/auth/register',
    {
      ...guarded,
      ...doc(AUTH_DOCS.register),
      schema: { body: { type: 'object', required: ['email', 'password'], properties: { email, password } } },
    },
    async (request, reply) => {
      // Registration names no client: any client's page may host the sign-up form.
      const origin = request.headers.origin;
      if (origin !== undefined && !origins.includes(origin))
        assertSameSiteRequest(request, [...origins, ...(await service.clients.browserOrigins(null))]);
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
      ...guarded,
      ...doc(AUTH_DOCS.login),
      onRequest,
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
      // Before anything is counted or set: a cross-site login would plant the attacker's device cookie.
      assertSameSiteRequest(request, await allowedOrigins(request, () => body.client_id));
      // A confidential client (a trusted backend) logs users in with its credentials: Basic or client_secret.
      const client = await clientOfRequest(request);
      if (client !== undefined && cookieMode)
        throw new BatonError('invalid_request', 'Cookie mode is for browser apps (public clients)');
      const clientId = client?.id ?? body.client_id;
      if (cookieMode) assertCsrfProof(request, await originsFor(clientId));
      // The body's device token wins over the cookie; core decides whether it counts.
      const tokens = await service.login({
        email: body.email,
        password: body.password,
        ...(client !== undefined ? { client } : {}),
        ...(body.client_id !== undefined ? { clientId: body.client_id } : {}),
        ...(body.scope !== undefined ? { scope: body.scope } : {}),
        deviceToken: body.device_token ?? requestCookie(request, DEVICE_COOKIE),
        userAgent: request.headers['user-agent'] ?? null,
        ip: request.ip,
        dpop: dpopInput(request, '/auth/login'),
      });
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
      ...guarded,
      ...doc(AUTH_DOCS.refresh),
      onRequest,
      schema: {
        body: { type: 'object', properties: { refresh_token: { type: 'string', maxLength: 200 } } },
        response: { 200: TOKEN_RESPONSE_SCHEMA },
      },
    },
    async (request, reply) => {
      reply.headers(NO_STORE);
      const fromBody = request.body?.refresh_token;
      const fromCookie = fromBody === undefined ? cookieToken(request) : undefined;
      if (fromBody === undefined && fromCookie === undefined) {
        throw new BatonError('invalid_grant', 'No refresh token was presented');
      }
      // The session's client's origins count too, or its own pages could never refresh.
      const allowed = await allowedOrigins(request, sessionClientOf(fromBody ?? fromCookie));
      // A cookie rides along on every same-site request: it only counts with the CSRF proof.
      if (fromCookie !== undefined) assertCsrfProof(request, allowed);
      else assertSameSiteRequest(request, allowed);
      const tokens = await service.refresh({
        refreshToken: fromBody ?? fromCookie,
        userAgent: request.headers['user-agent'] ?? null,
        ip: request.ip,
        dpop: dpopInput(request, '/auth/refresh'),
      });
      if (fromCookie !== undefined)
        setRefreshCookie(reply, tokens.refreshToken, tokens.refreshExpiresAt, service.now());
      return reply.send(tokenResponse(tokens, fromCookie === undefined));
    },
  );

  app.post<{ Body: { refresh_token?: string; client_id?: string; client_secret?: string } | undefined }>(
    '/auth/logout',
    {
      ...guarded,
      ...doc(AUTH_DOCS.logout),
      onRequest,
      schema: {
        body: {
          type: 'object',
          properties: {
            refresh_token: { type: 'string', maxLength: 200 },
            client_id: { type: 'string', minLength: 1, maxLength: 200 },
            client_secret: { type: 'string', minLength: 1, maxLength: 512 },
          },
        },
      },
    },
    async (request, reply) => {
      const fromBody = request.body?.refresh_token;
      const fromCookie = fromBody === undefined ? cookieToken(request) : undefined;
      // A DPoP-bound session ends only with its key's proof, as it refreshes (core decides).
      const from = {
        userAgent: request.headers['user-agent'] ?? null,
        ip: request.ip,
        dpop: dpopInput(request, '/auth/logout'),
      };
      if (fromBody !== undefined) {
        assertSameSiteRequest(request, await allowedOrigins(request, sessionClientOf(fromBody)));
        // A confidential client's token is revoked only with its credentials (core decides).
        await service.revokeRefreshToken(fromBody, await clientOfRequest(request), from);
      } else if (fromCookie !== undefined) {
        assertCsrfProof(request, await allowedOrigins(request, sessionClientOf(fromCookie)));
        await service.revokeRefreshToken(fromCookie, undefined, from);
      } else {
        // Access tokens are not DPoP-bound (docs/dpop.md): this path reads no proof.
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
        await assertSiteOfAccessToken(request, auth.claims.client_id);
        await service.revokeSession(auth.claims.sid, 'logout');
      }
      clearRefreshCookie(reply);
      return reply.code(204).headers(NO_STORE).send();
    },
  );

  app.post('/auth/logout-all', { ...guarded, ...doc(AUTH_DOCS.logoutAll) }, async (request, reply) => {
    const auth = await requireAccessToken(ctx, request);
    await assertSiteOfAccessToken(request, auth.claims.client_id);
    await service.logoutAll(auth.claims.sub);
    clearRefreshCookie(reply);
    return reply.code(204).headers(NO_STORE).send();
  });

  app.get<{ Querystring: { limit?: string; cursor?: string } }>(
    '/auth/sessions',
    {
      ...doc(AUTH_DOCS.sessions),
      schema: {
        querystring: {
          type: 'object',
          properties: {
            // Query values are strings (no type coercion here): digits only; core checks the range.
            limit: { type: 'string', pattern: '^[1-9][0-9]{0,2}$' },
            cursor: { type: 'string', minLength: 1, maxLength: 200 },
          },
        },
      },
    },
    async (request, reply) => {
      const auth = await requireAccessToken(ctx, request);
      const { limit, cursor } = request.query;
      const page = await service.listSessionsPage(auth.claims.sub, {
        ...(limit !== undefined ? { limit: Number(limit) } : {}),
        ...(cursor !== undefined ? { cursor } : {}),
      });
      return reply.headers(NO_STORE).send({
        sessions: page.sessions.map((s) => sessionJson(s, auth.claims.sid)),
        next_cursor: page.nextCursor,
      });
    },
  );

  app.delete<{ Params: { id: string } }>(
    '/auth/sessions/:id',
    {
      ...guarded,
      ...doc(AUTH_DOCS.revokeSession),
      schema: { params: { type: 'object', properties: { id: { type: 'string', maxLength: 100 } } } },
    },
    async (request, reply) => {
      const auth = await requireAccessToken(ctx, request);
      await assertSiteOfAccessToken(request, auth.claims.client_id);
      await service.revokeUserSession(auth.claims.sub, request.params.id);
      if (request.params.id === auth.claims.sid) clearRefreshCookie(reply);
      return reply.code(204).headers(NO_STORE).send();
    },
  );

  app.post<{ Body: { current_password: string; new_password: string } }>(
    '/auth/password',
    {
      ...guarded,
      ...doc(AUTH_DOCS.password),
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
      await assertSiteOfAccessToken(request, auth.claims.client_id);
      await service.changePassword({
        userId: auth.claims.sub,
        sessionId: auth.claims.sid,
        currentPassword: request.body.current_password,
        newPassword: request.body.new_password,
        ip: request.ip,
      });
      return reply.code(204).headers(NO_STORE).send();
    },
  );

  app.get('/auth/me', doc(AUTH_DOCS.me), async (request: FastifyRequest, reply: FastifyReply) => {
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
