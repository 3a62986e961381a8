import type { FastifyReply, FastifyRequest } from 'fastify';
import { BatonError } from '../core/errors.js';

/**
 * The refresh-token cookie of cookie mode. `__Secure-` rather than
 * `__Host-`: the cookie is scoped to `/auth` so it is never sent to the
 * app's other routes, and `__Host-` would force `Path=/`.
 */
export const REFRESH_COOKIE = '__Secure-baton_rt';
/** Path the refresh cookie is scoped to. */
export const REFRESH_COOKIE_PATH = '/auth';
/** The custom header that proves a cookie request came from our own script (CSRF). */
export const CSRF_HEADER = 'x-baton-csrf';

/**
 * One cookie of the request, parsed only when a route asks: the cookie
 * plugin's per-request parse hook is off (`app.ts`), so a token-mode
 * request pays nothing for cookies it does not carry. Same parser.
 */
export function requestCookie(request: FastifyRequest, name: string): string | undefined {
  const header = request.headers.cookie;
  return header === undefined ? undefined : request.server.parseCookie(header)[name];
}

/** Sets the refresh cookie (HttpOnly, Secure, SameSite=Strict, no Domain). */
export function setRefreshCookie(reply: FastifyReply, token: string, expiresAt: number, now: number): void {
  reply.setCookie(REFRESH_COOKIE, token, {
    path: REFRESH_COOKIE_PATH,
    httpOnly: true,
    secure: true,
    sameSite: 'strict',
    maxAge: Math.max(0, Math.floor((expiresAt - now) / 1000)),
  });
}

/** Clears the refresh cookie (`Max-Age=0`). */
export function clearRefreshCookie(reply: FastifyReply): void {
  reply.setCookie(REFRESH_COOKIE, '', {
    path: REFRESH_COOKIE_PATH,
    httpOnly: true,
    secure: true,
    sameSite: 'strict',
    maxAge: 0,
  });
}

/**
 * The device cookie: proof that this browser logged in to an account
 * successfully before, so its logins are not caught by that account's
 * shared failure lockout. `__Host-` (so `Path=/`, Secure, no Domain): no
 * sibling subdomain can plant or overwrite it, and it carries nothing that
 * authenticates a request by itself.
 */
export const DEVICE_COOKIE = '__Host-baton_device';

/** Sets the device cookie (HttpOnly, Secure, SameSite=Strict, `Path=/`, no Domain). */
export function setDeviceCookie(reply: FastifyReply, token: string, maxAgeMs: number): void {
  reply.setCookie(DEVICE_COOKIE, token, {
    path: '/',
    httpOnly: true,
    secure: true,
    sameSite: 'strict',
    maxAge: Math.max(0, Math.floor(maxAgeMs / 1000)),
  });
}

/**
 * Refuses requests whose browser context says they come from another site:
 * a `Sec-Fetch-Site: cross-site`, or an `Origin` outside the allow-list.
 * (An absent `Origin` is a non-browser client or a same-origin GET.)
 * @see OWASP CSRF Prevention Cheat Sheet, "Verifying Origin With Standard Headers"
 */
export function assertSameSiteRequest(request: FastifyRequest, allowedOrigins: readonly string[]): void {
  const site = request.headers['sec-fetch-site'];
  if (site === 'cross-site') throw new BatonError('access_denied', 'Cross-site requests are not allowed');
  const origin = request.headers.origin;
  if (origin !== undefined && !allowedOrigins.includes(origin)) {
    throw new BatonError('access_denied', 'This origin is not allowed');
  }
}

/**
 * The CSRF proof cookie mode needs: same-site context plus our custom
 * header, which a cross-site form or a simple request cannot carry (it
 * would need a CORS preflight that we do not grant).
 */
export function assertCsrfProof(request: FastifyRequest, allowedOrigins: readonly string[]): void {
  assertSameSiteRequest(request, allowedOrigins);
  const proof = request.headers[CSRF_HEADER];
  if (typeof proof !== 'string' || proof === '') {
    throw new BatonError('access_denied', `Cookie requests need the ${CSRF_HEADER} header`);
  }
}
