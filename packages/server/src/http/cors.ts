import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { BatonError } from '../core/errors.js';
import type { RouteContext } from './context.js';

/**
 * How a route answers pages on other origins:
 * - `credentialed`: the browser-facing API (`/auth/*`, `/oauth/token`,
 *   `/oauth/revoke`). An allowed origin gets itself echoed back with
 *   `Access-Control-Allow-Credentials: true`; any other origin gets nothing.
 * - `public`: the `/.well-known/*` documents, readable by any page
 *   (`Access-Control-Allow-Origin: *`, never with credentials).
 *
 * Everything else (introspection, which is server to server; the seed's
 * legacy route; health, metrics, the demo page) sends no CORS headers.
 */
export type CorsPolicy = 'credentialed' | 'public';

/** The CORS policy of a route pattern or path, or undefined for none. */
export function corsPolicyOf(route: string): CorsPolicy | undefined {
  if (route.startsWith('/auth/') || route === '/oauth/token' || route === '/oauth/revoke')
    return 'credentialed';
  if (route.startsWith('/.well-known/')) return 'public';
  return undefined;
}

/**
 * The request headers a page may send: JSON bodies, the access token, a
 * DPoP proof, the cookie mode's CSRF header. Nothing else is ever read.
 */
export const CORS_ALLOWED_HEADERS = 'content-type, authorization, dpop, x-baton-csrf';
/**
 * The response headers a page may read beyond the safelisted ones: the
 * client reads `DPoP-Nonce` and `Date` (proof freshness, RFC 9449 §8) and
 * `Retry-After` (backoff); `WWW-Authenticate` says why a token was refused.
 */
export const CORS_EXPOSED_HEADERS = 'DPoP-Nonce, Date, WWW-Authenticate, Retry-After';
/** How long a browser may cache a preflight answer (seconds). */
export const CORS_MAX_AGE_SECONDS = 600;

/** Adds `names` to the response's `Vary` without dropping what is there. */
function vary(reply: FastifyReply, names: string): void {
  const current = reply.getHeader('vary');
  reply.header('vary', current === undefined || current === '' ? names : `${String(current)}, ${names}`);
}

/**
 * CORS for pages on other origins, in one place: a preflight answer in an
 * `onRequest` hook (no OPTIONS routes exist, so it runs for the unmatched
 * request before the 404/405 handler) and the grant on every actual
 * response, errors included, in an `onSend` hook.
 *
 * An origin is allowed when it is one of the server's (`allowedOrigins`) or
 * of any registered client. A preflight carries no token, so it cannot know
 * the session's client: the per-client check stays with the actual request
 * (`assertSameSiteRequest`), which refuses with 403 as before. `Origin:
 * null` (sandboxed frames, `data:` pages) is never granted anything.
 * `methodsOf(path)` lists the methods the app has for a path.
 *
 * Register it after the hook that refuses repeated headers and counts the
 * per-IP limit, so preflights are checked and counted like any request.
 * @see https://fetch.spec.whatwg.org/#http-cors-protocol
 */
export function registerCors(
  app: FastifyInstance,
  ctx: RouteContext,
  methodsOf: (path: string) => readonly string[],
): void {
  const own = ctx.options.allowedOrigins;
  async function originAllowed(origin: string): Promise<boolean> {
    if (origin === 'null') return false;
    if (own.includes(origin)) return true;
    return (await ctx.service.clients.browserOrigins(null)).includes(origin);
  }
  // Requests answered here as preflights: onSend must not add the actual-response grant to them.
  const preflights = new WeakSet<FastifyRequest>();

  async function preflight(request: FastifyRequest, reply: FastifyReply) {
    const origin = request.headers.origin;
    const asked = request.headers['access-control-request-method'];
    // Not a preflight: the 405 it got before.
    if (origin === undefined || asked === undefined) return;
    const path = request.url.split('?')[0]!;
    const policy = corsPolicyOf(path);
    const methods = policy === undefined ? [] : methodsOf(path);
    if (methods.length === 0) return;
    preflights.add(request);
    vary(reply, 'Origin, Access-Control-Request-Method, Access-Control-Request-Headers');
    if (policy === 'credentialed') {
      // Refused in Baton's error shape (403 JSON) with no CORS header: the browser stops there.
      if (!(await originAllowed(origin))) throw new BatonError('access_denied', 'This origin is not allowed');
      reply.header('access-control-allow-origin', origin);
      reply.header('access-control-allow-credentials', 'true');
      reply.header('access-control-allow-headers', CORS_ALLOWED_HEADERS);
    } else {
      reply.header('access-control-allow-origin', '*');
    }
    reply.header('access-control-allow-methods', methods.join(', '));
    reply.header('access-control-max-age', String(CORS_MAX_AGE_SECONDS));
    return reply.code(204).send();
  }

  async function grant(reply: FastifyReply, origin: string) {
    let allowed = false;
    try {
      allowed = await originAllowed(origin);
    } catch {
      // The clients could not be read: grant nothing, and leave the response as it is.
    }
    if (!allowed) return;
    reply.header('access-control-allow-origin', origin);
    reply.header('access-control-allow-credentials', 'true');
    reply.header('access-control-expose-headers', CORS_EXPOSED_HEADERS);
  }

  // Callback hooks that return a promise only when they wait (a preflight, an Origin to
  // look up): a request without Origin costs no promise here. Fastify goes on at done()
  // or when the promise settles.
  app.addHook('onRequest', (request, reply, done) => {
    if (request.method !== 'OPTIONS') return done();
    return preflight(request, reply);
  });

  app.addHook('onSend', (request, reply, payload, done) => {
    if (preflights.has(request)) return done(null, payload);
    const policy = corsPolicyOf(request.routeOptions.url ?? request.url.split('?')[0]!);
    if (policy === undefined) return done(null, payload);
    if (policy === 'public') {
      reply.header('access-control-allow-origin', '*');
      return done(null, payload);
    }
    // The answer depends on Origin, for every request: a shared cache must not mix them up.
    vary(reply, 'Origin');
    const origin = request.headers.origin;
    if (origin === undefined) return done(null, payload);
    return grant(reply, origin);
  });
}
