import type { NextFunction, Request, RequestHandler, Response } from 'express';
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

declare global {
  // Express types its requests through this global namespace; augmenting it types req.auth.
  namespace Express {
    interface Request {
      /** Claims of the verified access token, set by `requireAuth()` from `@baton/verify/express`. */
      auth?: AccessTokenClaims;
    }
  }
}

/**
 * An Express request that passed `requireAuth()`: `auth` is set. Express types
 * every handler of a route with one request type, so a middleware cannot narrow
 * it for the next handler; {@link withAuth} is where that narrowing happens.
 */
export type AuthedRequest<
  P = Request['params'],
  ResBody = unknown,
  ReqBody = unknown,
  ReqQuery = Request['query'],
  Locals extends Record<string, unknown> = Record<string, unknown>,
> = Request<P, ResBody, ReqBody, ReqQuery, Locals> & { auth: AccessTokenClaims };

/** Options of {@link batonAuth}: a verifier (or its options) and the challenge realm. */
export type ExpressAuthOptions = (VerifierOptions | { verifier: Verifier }) & BearerOptions;

/** What {@link batonAuth} returns. */
export interface ExpressAuth {
  /** The verifier the middleware uses. */
  readonly verifier: Verifier;
  /**
   * Express middleware: verify the Bearer access token, set `req.auth` to its claims,
   * or answer 401/403 per RFC 6750 §3.1. Wrap the next handler in {@link withAuth}
   * to have `req.auth` typed as set.
   * @throws TypeError when `options` are invalid (at route definition, not per request).
   */
  requireAuth(options?: RequireAuthOptions): RequestHandler;
}

function pickVerifier(options: ExpressAuthOptions): { verifier: Verifier; realm: string | undefined } {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError('batonAuth: options must be an object');
  }
  return verifierFromOptions(options as unknown as Record<string, unknown>, 'batonAuth');
}

/**
 * Protect Express routes with Baton access tokens (RFC 6750 bearer tokens, verified
 * per RFC 9068 §4). Works with Express 4 and 5; importing it loads no Express code.
 *
 * ```ts
 * const { requireAuth } = batonAuth({ issuer: 'https://auth.example.com', audience: 'https://api.example.com' });
 * app.get('/orders', requireAuth({ scopes: ['orders:read'] }), withAuth((req, res) => res.json({ user: req.auth.sub })));
 * ```
 * @throws TypeError when `options` are invalid.
 * @see RFC 6750 §2.1, §3.1; RFC 9068 §4
 */
export function batonAuth(options: ExpressAuthOptions): ExpressAuth {
  const { verifier, realm } = pickVerifier(options);
  return Object.freeze({
    verifier,
    requireAuth(routeOptions?: RequireAuthOptions): RequestHandler {
      const resolved = resolveRequireAuth(routeOptions, 'requireAuth');
      return (req: Request, res: Response, next: NextFunction): void => {
        authorizeBearer(verifier, req.headers.authorization, resolved, realm).then((outcome) => {
          if (outcome.ok) {
            req.auth = outcome.claims;
            next();
            return;
          }
          const { status, headers, body } = outcome.refusal;
          res.status(status).set(headers).json(body);
        }, next);
      };
    },
  });
}

/**
 * Type a route handler that runs after `requireAuth()` with `req.auth` set
 * (not optional), so it type-checks under `strict` without a `!`. At run time
 * it checks that claim: a handler reached without `requireAuth()` in front of
 * it is a wiring mistake, and it fails closed (passes a TypeError to `next`,
 * which Express answers with a 500) instead of running unauthenticated.
 *
 * ```ts
 * app.get('/api/me', requireAuth(), withAuth((req, res) => res.json({ user: req.auth.sub })));
 * ```
 */
export function withAuth<
  P = Request['params'],
  ResBody = unknown,
  ReqBody = unknown,
  ReqQuery = Request['query'],
  Locals extends Record<string, unknown> = Record<string, unknown>,
>(
  handler: (
    req: AuthedRequest<P, ResBody, ReqBody, ReqQuery, Locals>,
    res: Response<ResBody, Locals>,
    next: NextFunction,
  ) => unknown,
): RequestHandler<P, ResBody, ReqBody, ReqQuery, Locals> {
  if (typeof handler !== 'function') throw new TypeError('withAuth: handler must be a function');
  return (req, res, next) => {
    if (req.auth === undefined) {
      next(new TypeError('withAuth: req.auth is not set; put requireAuth() in front of this handler'));
      return;
    }
    return handler(req as AuthedRequest<P, ResBody, ReqBody, ReqQuery, Locals>, res, next);
  };
}

export type { RequireAuthOptions } from './bearer.js';
