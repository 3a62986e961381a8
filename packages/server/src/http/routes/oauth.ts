import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AuthenticatedClient } from '../../core/clients.js';
import { BatonError } from '../../core/errors.js';
import type { FormBody } from '../body-parsers.js';
import { readClientCredentials } from '../client-auth.js';
import { NO_STORE, type RouteContext } from '../context.js';
import { dpopInput, dpopNonceHook } from '../dpop-header.js';
import type { RouteErrorConfig } from '../errors.js';
import type { RouteDoc } from '../openapi.js';
import { OAUTH_DOCS } from './oauth-docs.js';

/** `/oauth/*` follows the RFCs: `invalid_grant` is a 400 here (RFC 6749 §5.2), and there is no 415. */
const config: RouteErrorConfig = { surface: 'oauth' };

const FORM = /^application\/x-www-form-urlencoded\s*(;|$)/i;

const invalidRequest = (description: string) => new BatonError('invalid_request', description);

/**
 * The parameters of a form-encoded OAuth request, by name. Only the named
 * parameters are read: unknown extra ones are ignored (RFC 6749 §3.2), a
 * parameter sent without a value counts as omitted (§3.1), and a repeated
 * one is an `invalid_request` (§3.1: "MUST NOT be included more than once").
 */
function readParams<K extends string>(
  request: FastifyRequest,
  names: readonly K[],
): Partial<Record<K, string>> {
  if (!FORM.test(request.headers['content-type'] ?? ''))
    throw invalidRequest('The body must be application/x-www-form-urlencoded');
  const body = (request.body ?? {}) as FormBody;
  const out: Partial<Record<K, string>> = {};
  for (const name of names) {
    if (!Object.hasOwn(body, name)) continue;
    const value = body[name];
    // Our own parameter names only: an error never echoes request input.
    if (Array.isArray(value)) throw invalidRequest(`The ${name} parameter must not be repeated`);
    if (value !== undefined && value !== '') out[name] = value;
  }
  return out;
}

/**
 * The client of an OAuth request, identified and (for confidential clients)
 * authenticated. A request that names no client at all is `invalid_client`:
 * a refresh token is bound to its client, so the server must know which.
 * @see RFC 6749 §2.3, §3.2.1, §5.2
 */
async function requireClient(
  ctx: RouteContext,
  request: FastifyRequest,
  params: { client_id?: string; client_secret?: string },
): Promise<AuthenticatedClient> {
  const credentials = readClientCredentials(request.headers.authorization, params);
  if (!credentials)
    throw new BatonError(
      'invalid_client',
      'Identify the client: client_id for a public client, client authentication for a confidential one',
    );
  return ctx.service.clients.authenticate(credentials);
}

/**
 * The OAuth 2.0 endpoints: token (refresh grant only), revocation and
 * introspection. Every response, success or error, carries
 * `Cache-Control: no-store` and `Pragma: no-cache`.
 * @see RFC 6749 §5, RFC 7009, RFC 7662
 */
export function registerOAuthRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const { service } = ctx;
  const routeOptions = (openapi: RouteDoc) => ({ config: { ...config, openapi } });

  /**
   * `POST /oauth/token` with `grant_type=refresh_token`: the same rotation
   * as `/auth/refresh` (reuse detection, grace window), bound to the client.
   * A `DPoP` proof is verified when sent and required for a DPoP-bound
   * session; the access token stays a Bearer token (RFC 9449 §5).
   * There is no password grant (RFC 9700 §2.4): users log in at `/auth/login`.
   * @see RFC 6749 §6, §5.1, §5.2
   */
  app.post(
    '/oauth/token',
    { ...routeOptions(OAUTH_DOCS.token), onRequest: dpopNonceHook(ctx) },
    async (request, reply) => {
      reply.headers(NO_STORE);
      const p = readParams(request, ['grant_type', 'refresh_token', 'scope', 'client_id', 'client_secret']);
      if (p.grant_type === undefined) throw invalidRequest('grant_type is required');
      if (p.grant_type !== 'refresh_token')
        throw new BatonError('unsupported_grant_type', 'Only grant_type=refresh_token is supported');
      if (p.refresh_token === undefined) throw invalidRequest('refresh_token is required');
      const client = await requireClient(ctx, request, p);
      const tokens = await service.refresh({
        refreshToken: p.refresh_token,
        client,
        ...(p.scope !== undefined ? { scope: p.scope } : {}),
        userAgent: request.headers['user-agent'] ?? null,
        ip: request.ip,
        dpop: dpopInput(request, '/oauth/token'),
      });
      return reply.send({
        access_token: tokens.accessToken,
        token_type: tokens.tokenType,
        expires_in: tokens.expiresIn,
        refresh_token: tokens.refreshToken,
        ...(tokens.scope ? { scope: tokens.scope } : {}),
      });
    },
  );

  /**
   * `POST /oauth/revoke`: revoking a refresh or an access token ends its
   * session. 200 with an empty body for unknown or garbage tokens too. A
   * DPoP-bound session's refresh token needs a proof by its key (400
   * `invalid_dpop_proof` without one); a proof that is sent is verified.
   * @see RFC 7009 §2, RFC 9449 §5
   */
  app.post(
    '/oauth/revoke',
    { ...routeOptions(OAUTH_DOCS.revoke), onRequest: dpopNonceHook(ctx) },
    async (request, reply) => {
      reply.headers(NO_STORE);
      const p = readParams(request, ['token', 'token_type_hint', 'client_id', 'client_secret']);
      if (p.token === undefined) throw invalidRequest('token is required');
      const client = await requireClient(ctx, request, p);
      await service.revokeToken(p.token, client, {
        userAgent: request.headers['user-agent'] ?? null,
        ip: request.ip,
        dpop: dpopInput(request, '/oauth/revoke'),
      });
      return reply.code(200).send();
    },
  );

  /**
   * `POST /oauth/introspect`, for confidential clients (resource servers)
   * only: anything else is a 401. Inactive, unknown, expired and revoked
   * tokens all answer exactly `{"active": false}`.
   * @see RFC 7662 §2
   */
  app.post('/oauth/introspect', routeOptions(OAUTH_DOCS.introspect), async (request, reply) => {
    reply.headers(NO_STORE);
    const p = readParams(request, ['token', 'token_type_hint', 'client_id', 'client_secret']);
    const credentials = readClientCredentials(request.headers.authorization, p);
    if (!credentials || credentials.secret === null)
      throw new BatonError('invalid_client', 'Introspection needs a confidential client’s credentials');
    const client = await service.clients.authenticate(credentials);
    if (p.token === undefined) throw invalidRequest('token is required');
    return reply.send(await service.introspect(p.token, client));
  });
}
