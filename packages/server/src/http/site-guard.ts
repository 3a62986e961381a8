import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';
import { BatonError } from '../core/errors.js';

const JSON_TYPE = /^application\/json\s*(;|$)/i;

/**
 * The cheap half of the CSRF defence of the state-changing `/auth/*` routes,
 * run before the body is validated (a Fastify `preValidation` hook):
 *
 * - a body that is not `application/json` is a 415: a urlencoded or
 *   text/plain body is what an HTML form (a CORS "simple request", sent
 *   cross-site without a preflight) can post, and JSON is all the first-party
 *   API ever took from its own clients;
 * - `Sec-Fetch-Site: cross-site` and `Origin: null` (a sandboxed frame, a
 *   redirect chain, a `data:` page) are a 403.
 *
 * A request with neither header (the Node SDK, curl) passes. Whether an
 * `Origin` is allowed is decided by the route, which knows the client.
 * `/oauth/*` stays form-encoded (RFC 6749 §4.1.3) and the legacy route keeps
 * its own contract.
 * @see OWASP CSRF Prevention Cheat Sheet, "Verifying Origin With Standard Headers"
 */
export function refuseCrossSiteForms(
  request: FastifyRequest,
  _reply: FastifyReply,
  done: HookHandlerDoneFunction,
): void {
  // A callback hook: nothing here waits, so no promise per request.
  const type = request.headers['content-type'];
  if (type !== undefined && !JSON_TYPE.test(type))
    done(new BatonError('unsupported_media_type', 'The body must be application/json'));
  else if (request.headers['sec-fetch-site'] === 'cross-site')
    done(new BatonError('access_denied', 'Cross-site requests are not allowed'));
  else if (request.headers.origin === 'null')
    done(new BatonError('access_denied', 'This origin is not allowed'));
  else done();
}
