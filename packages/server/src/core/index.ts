export { type AccessTokenClaims, signAccessToken, verifyAccessToken } from './access-token.js';
export {
  AuthenticatedClient,
  authenticateClient,
  CLIENT_SECRET_PREFIX,
  type ClientAuthMethod,
  type ClientCredentials,
  createClient,
  type NewClientInput,
  newClientSecret,
} from './clients.js';
export { type Clock, systemClock } from './clock.js';
export { DEVICE_TTL_MS, parseDeviceToken } from './device-token.js';
export { BatonError, type BatonErrorCode, isBatonError } from './errors.js';
export type { LoginLimiter } from './login-limiter.js';
export { ARGON2_OPTIONS, hashPassword, verifyPassword } from './passwords.js';
export { parseRefreshToken } from './refresh-token.js';
export type {
  ActiveToken,
  InactiveToken,
  IntrospectionResult,
  RefreshInput,
  RefreshTokenInfo,
  RevocationOutcome,
  Sessions,
} from './sessions.js';
export {
  describeSigningKeys,
  generateSigningKey,
  JWKS_MAX_AGE_SECONDS,
  jwkThumbprint,
  KeyRing,
  type PublicJwk,
  retireSigningKey,
  rotateSigningKey,
  type SigningAlgorithm,
  type SigningKeyState,
  type SigningKeyStatus,
} from './signing-keys.js';
export {
  type Accounts,
  type AdminUser,
  type Authenticated,
  createTokenService,
  DEFAULT_CLIENT_ID,
  type IssuedTokens,
  type LoginInput,
  type LoginResult,
  normalizeEmail,
  type PublicUser,
  type RefreshOutcome,
  type RequestContext,
  type TokenService,
  type TokenServiceEvent,
  type TokenServiceOptions,
  type TrustedDevice,
} from './token-service.js';
