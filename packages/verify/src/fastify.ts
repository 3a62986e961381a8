import type { FastifyInstance, FastifyPluginAsync, onRequestHookHandler } from 'fastify';
import {
  authorizeBearer,
  type BearerOptions,
  type RequireAuthOptions,
  resolveRequireAuth,
  verifierFromOptions,
} from './bearer.js';
import type { AccessTokenClaims } from './claims.js';
import type { VerifierOptions } from './options.js';
import type { Verifier } from './verifier.js';

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * An `onRequest` hook that verifies the Bearer access token, sets `request.auth`,
     * or answers 401/403 per RFC 6750 §3.1. Added by the `@baton/verify/fastify` plugin.
     */
    requireAuth(options?: RequireAuthOptions): onRequestHookHandler;
    /** The verifier behind `requireAuth`. */
    batonVerifier: Verifier;
  }
  interface FastifyRequest {
    /** Claims of the verified access token; `null` on routes without `requireAuth`. */
    auth: AccessTokenClaims | null;
  }
}

/** Options of the {@link batonAuth} plugin: a verifier (or its options) and the challenge realm. */
export type FastifyAuthOptions = (VerifierOptions | { verifier: Verifier }) & BearerOptions;

// Options Fastify itself may place in a plugin's options object.
const FASTIFY_KEYS = new Set(['prefix', 'logLevel', 'logSerializers']);

function pickVerifier(options: FastifyAuthOptions): { verifier: Verifier; realm: string | undefined } {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError('batonAuth: options must be an object');
  }
  // Fastify passes its own plugin options (prefix, logLevel, …) alongside ours: leave them out.
  const rest: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(options)) if (!FASTIFY_KEYS.has(key)) rest[key] = value;
  return verifierFromOptions(rest, 'batonAuth');
}

async function plugin(fastify: FastifyInstance, options: FastifyAuthOptions): Promise<void> {
  const { verifier, realm } = pickVerifier(options);
  fastify.decorate('batonVerifier', verifier);
  fastify.decorateRequest('auth', null);
  fastify.decorate('requireAuth', (routeOptions?: RequireAuthOptions): onRequestHookHandler => {
    const resolved = resolveRequireAuth(routeOptions, 'requireAuth');
    // onRequest, not preHandler: refuse before the body is read or parsed.
    return async (request, reply) => {
      const outcome = await authorizeBearer(verifier, request.headers.authorization, resolved, realm);
      if (outcome.ok) {
        request.auth = outcome.claims;
        return;
      }
      const { status, headers, body } = outcome.refusal;
      return reply.code(status).headers(headers).send(body);
    };
  });
}

// Unencapsulated (what fastify-plugin does, without the dependency): the decorators are
// meant for the routes of the instance that registers the plugin.
Object.assign(plugin, {
  [Symbol.for('skip-override')]: true,
  [Symbol.for('fastify.display-name')]: '@baton/verify',
  [Symbol.for('plugin-meta')]: { name: '@baton/verify', fastify: '>=4' },
});

/**
 * Fastify plugin protecting routes with Baton access tokens (RFC 6750 bearer tokens,
 * verified per RFC 9068 §4). Decorates the instance with `requireAuth(options)`, an
 * `onRequest` hook, and requests with `auth`. Importing it loads no Fastify code.
 *
 * ```ts
 * await app.register(batonAuth, { issuer: 'https://auth.example.com', audience: 'https://api.example.com' });
 * app.get('/orders', { onRequest: app.requireAuth({ scopes: ['orders:read'] }) }, (req) => ({ user: req.auth?.sub }));
 * ```
 * @throws TypeError (at register) when `options` are invalid.
 * @see RFC 6750 §2.1, §3.1; RFC 9068 §4
 */
export const batonAuth: FastifyPluginAsync<FastifyAuthOptions> = plugin;

export type { RequireAuthOptions } from './bearer.js';
