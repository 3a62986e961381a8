/**
 * `@baton/verify`: offline verification of Baton access tokens (RFC 9068) for
 * resource servers. Express and Fastify adapters live in `@baton/verify/express`
 * and `@baton/verify/fastify`, so this entry point loads neither.
 * @packageDocumentation
 */
export {
  authorizeBearer,
  type BearerOptions,
  type BearerOutcome,
  type BearerRefusal,
  type RequireAuthOptions,
  type ResolvedRequireAuth,
  resolveRequireAuth,
} from './bearer.js';
export { type AccessTokenClaims, hasScopes, scopesOf } from './claims.js';
export { VerifyError, type VerifyErrorCode } from './errors.js';
export type { IntrospectionOptions, VerifierOptions, VerifyAlgorithm } from './options.js';
export { createVerifier, type Verifier, type VerifyCallOptions } from './verifier.js';
