import type { FastifyInstance } from 'fastify';
import { JWKS_MAX_AGE_SECONDS } from '../../core/signing-keys.js';
import type { RouteContext } from '../context.js';

/** Both documents change rarely and are public: caches may keep them this long. */
const PUBLIC_CACHE = `public, max-age=${JWKS_MAX_AGE_SECONDS}`;

/** The `/.well-known/*` documents: JWKS and authorization-server metadata. */
export function registerWellKnownRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const issuer = ctx.options.issuer;
  // Endpoints are issuer-relative; a trailing slash on the issuer must not double up.
  const base = issuer.replace(/\/+$/, '');

  /**
   * `GET /.well-known/jwks.json`: the public signing keys, including upcoming
   * and retired-but-still-verifiable ones. Verifiers may cache it for
   * {@link JWKS_MAX_AGE_SECONDS}: a rotated key is published at least that
   * long before it signs.
   * @see RFC 7517 §5
   */
  app.get('/.well-known/jwks.json', async (_request, reply) => {
    return reply.header('cache-control', PUBLIC_CACHE).send(ctx.service.jwks());
  });

  /**
   * `GET /.well-known/oauth-authorization-server`: what standard OAuth
   * client libraries discover. `issuer` is the configured issuer byte for
   * byte (§3.3). No member is an empty array: `scopes_supported` is left out
   * when no client has scopes, and `response_types_supported` is left out
   * because Baton has no authorization endpoint (an empty list is not allowed
   * and any other would be false).
   * @see RFC 8414 §2, §3, RFC 9449 §5.1
   */
  app.get('/.well-known/oauth-authorization-server', async (_request, reply) => {
    const scopes = await ctx.service.clients.supportedScopes();
    const withSecret = ['client_secret_basic', 'client_secret_post'];
    return reply.header('cache-control', PUBLIC_CACHE).send({
      issuer,
      token_endpoint: `${base}/oauth/token`,
      revocation_endpoint: `${base}/oauth/revoke`,
      introspection_endpoint: `${base}/oauth/introspect`,
      jwks_uri: `${base}/.well-known/jwks.json`,
      grant_types_supported: ['refresh_token'],
      token_endpoint_auth_methods_supported: [...withSecret, 'none'],
      revocation_endpoint_auth_methods_supported: [...withSecret, 'none'],
      introspection_endpoint_auth_methods_supported: withSecret,
      ...(scopes.length > 0 ? { scopes_supported: scopes } : {}),
      // RFC 9449 §5.1: proofs are accepted (and sessions bound) with these; access tokens stay Bearer.
      dpop_signing_alg_values_supported: [...ctx.service.dpop.algs],
    });
  });
}
