import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';
import type { DpopInput } from '../core/dpop.js';
import type { RouteContext } from './context.js';

/**
 * The request's `DPoP` header for core to verify, or undefined without one.
 * The URI a proof must name is built in core from the issuer and `path`
 * (the route's own path), never from `Host` or the request target, which a
 * client or a proxy could spell another way. Repeats were already refused
 * (`app.ts`, single-valued headers).
 * @see RFC 9449 §4.1, §4.3
 */
export function dpopInput(request: FastifyRequest, path: string): DpopInput | undefined {
  const proof = request.headers.dpop;
  if (proof === undefined) return undefined;
  return { proof: Array.isArray(proof) ? proof.join(',') : proof, method: request.method, path };
}

/**
 * A route hook that puts the current server nonce on every response of a
 * DPoP-aware route, errors included, so a client can use it on its next
 * proof (and must, after `use_dpop_nonce`).
 * @see RFC 9449 §8, §8.2
 */
export function dpopNonceHook(ctx: RouteContext) {
  // A callback hook: nothing here waits, so no promise per request.
  return (_request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => {
    reply.header('dpop-nonce', ctx.service.dpop.nonce());
    done();
  };
}
