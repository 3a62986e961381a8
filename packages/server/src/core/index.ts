export { type AccessTokenClaims, signAccessToken, verifyAccessToken } from './access-token.js';
export { type Clock, systemClock } from './clock.js';
export { BatonError, type BatonErrorCode, isBatonError } from './errors.js';
export { ARGON2_OPTIONS, hashPassword, verifyPassword } from './passwords.js';
export { parseRefreshToken } from './refresh-token.js';
export {
  generateSigningKey,
  jwkThumbprint,
  KeyRing,
  type PublicJwk,
  type SigningAlgorithm,
} from './signing-keys.js';
export {
  type Authenticated,
  createTokenService,
  DEFAULT_CLIENT_ID,
  type IssuedTokens,
  normalizeEmail,
  type PublicUser,
  type RefreshOutcome,
  type RequestContext,
  type TokenService,
  type TokenServiceEvent,
  type TokenServiceOptions,
} from './token-service.js';
