/**
 * The JSON shapes Baton's routes answer with, as JSON Schema (2020-12, the
 * dialect of OpenAPI 3.1). They describe the routes in `/openapi.json` only:
 * they are never handed to Fastify as response schemas, which would
 * serialise through them and drop any member they fail to list.
 */

/** A JSON Schema object, as the OpenAPI document carries it. */
export type JsonSchema = Readonly<Record<string, unknown>>;

const str = (description: string): JsonSchema => ({ type: 'string', description });
const int = (description: string): JsonSchema => ({ type: 'integer', description });
const dateTime = (description: string): JsonSchema => ({ type: 'string', format: 'date-time', description });

const object = (properties: Record<string, JsonSchema>, required: readonly string[] = []): JsonSchema => ({
  type: 'object',
  properties,
  ...(required.length > 0 ? { required: [...required] } : {}),
});

/** A user as `/auth/register` and `/auth/me` show it. */
export const USER = object(
  {
    id: str('The user id'),
    email: str('The normalised email address'),
    created_at: dateTime('Registered at'),
  },
  ['id', 'email', 'created_at'],
);

const tokenMembers = {
  access_token: str('The access token, a JWT (RFC 9068)'),
  token_type: {
    type: 'string',
    enum: ['Bearer'],
    description: 'Always Bearer (RFC 9449 §5: even with DPoP)',
  },
  expires_in: int('Seconds until the access token expires'),
  refresh_token: str('The next refresh token (`brt_…`); the one presented is now used'),
  scope: str('The granted scope, when the session has one'),
};

/**
 * The token response of `/auth/login` and `/auth/refresh`. In cookie mode
 * `refresh_token` is absent: it travels only in the HttpOnly cookie.
 * @see RFC 6749 §5.1
 */
export const AUTH_TOKENS = object(
  { ...tokenMembers, session_id: str('The session (token family) these tokens belong to') },
  ['access_token', 'token_type', 'expires_in', 'session_id'],
);

/** `/auth/login`'s answer: the token response plus the device token (not in cookie mode). */
export const LOGIN_TOKENS = object(
  {
    ...(AUTH_TOKENS.properties as Record<string, JsonSchema>),
    device_token: str(
      'Proof that this device signed in before (`bdv_…`); send it with later logins. Cookie mode sets it as a cookie instead',
    ),
  },
  AUTH_TOKENS.required as string[],
);

/** `/oauth/token`'s answer. @see RFC 6749 §5.1 */
export const OAUTH_TOKENS = object(tokenMembers, [
  'access_token',
  'token_type',
  'expires_in',
  'refresh_token',
]);

/** One session of `GET /auth/sessions`. */
export const SESSION = object(
  {
    id: str('The session id'),
    client_id: str('The client the session belongs to'),
    created_at: dateTime('Signed in at'),
    last_used_at: dateTime('Last refreshed at'),
    expires_at: dateTime('When it ends unless refreshed (idle or absolute limit, whichever is first)'),
    user_agent: { type: ['string', 'null'], description: 'The User-Agent at sign-in' },
    ip: { type: ['string', 'null'], description: 'The client IP at sign-in' },
    current: { type: 'boolean', description: 'Whether this is the session of the access token used' },
    dpop_bound: { type: 'boolean', description: 'Whether refreshing needs a DPoP proof (RFC 9449)' },
  },
  [
    'id',
    'client_id',
    'created_at',
    'last_used_at',
    'expires_at',
    'user_agent',
    'ip',
    'current',
    'dpop_bound',
  ],
);

/** A page of sessions, most recently used first. */
export const SESSION_PAGE = object(
  {
    sessions: { type: 'array', items: SESSION },
    next_cursor: {
      type: ['string', 'null'],
      description: 'Pass as `cursor` for the next page; null on the last',
    },
  },
  ['sessions', 'next_cursor'],
);

/** `GET /auth/me`. */
export const ME = object(
  {
    user: USER,
    session_id: str('The session of the access token'),
    client_id: str('The client of the access token'),
    scope: str('The access token’s scope, when it has one'),
  },
  ['user', 'session_id', 'client_id'],
);

/** `POST /oauth/introspect`: inactive tokens answer exactly `{"active": false}`. @see RFC 7662 §2.2 */
export const INTROSPECTION = object(
  {
    active: { type: 'boolean' },
    token_type: { type: 'string', enum: ['Bearer'], description: 'Access tokens only' },
    scope: str('Space-separated scope'),
    client_id: str('The client the token was issued to'),
    sub: str('The user'),
    exp: int('Expiry, seconds since the epoch'),
    iat: int('Issued at, seconds since the epoch'),
    iss: str('The issuer'),
    aud: str('Access tokens only'),
    jti: str('Access tokens only'),
    sid: str('The session (token family)'),
  },
  ['active'],
);

/** `GET /.well-known/jwks.json`. @see RFC 7517 §5 */
export const JWKS = object(
  {
    keys: {
      type: 'array',
      items: object(
        {
          kty: str('EC or OKP'),
          crv: str('P-256 or Ed25519'),
          x: str('Public key coordinate'),
          y: str('Public key coordinate (EC only)'),
          kid: str('Key id, the `kid` of the tokens it signed'),
          alg: { type: 'string', enum: ['ES256', 'EdDSA'] },
          use: { type: 'string', enum: ['sig'] },
        },
        ['kty', 'crv', 'x', 'kid', 'alg', 'use'],
      ),
    },
  },
  ['keys'],
);

const list = (description: string): JsonSchema => ({ type: 'array', items: { type: 'string' }, description });

/** `GET /.well-known/oauth-authorization-server`. @see RFC 8414 §2 */
export const SERVER_METADATA = object(
  {
    issuer: str('The issuer, byte for byte as configured'),
    token_endpoint: str('`/oauth/token`'),
    revocation_endpoint: str('`/oauth/revoke`'),
    introspection_endpoint: str('`/oauth/introspect`'),
    jwks_uri: str('`/.well-known/jwks.json`'),
    grant_types_supported: list('refresh_token only'),
    token_endpoint_auth_methods_supported: list('client_secret_basic, client_secret_post, none'),
    revocation_endpoint_auth_methods_supported: list('client_secret_basic, client_secret_post, none'),
    introspection_endpoint_auth_methods_supported: list('client_secret_basic, client_secret_post'),
    scopes_supported: list('Left out when no client has scopes'),
    dpop_signing_alg_values_supported: list('RFC 9449 §5.1'),
  },
  ['issuer', 'token_endpoint', 'jwks_uri', 'grant_types_supported'],
);

/** `GET /healthz`. */
export const HEALTH = object({ status: { type: 'string', enum: ['ok'] } }, ['status']);

const dependency = (extra: Record<string, JsonSchema>): JsonSchema =>
  object({ status: { type: 'string', enum: ['up', 'down'] }, ...extra }, ['status']);

/** `GET /readyz`: ready, degraded (Redis down, limits per process) or unready (store down, 503). */
export const READINESS = object(
  {
    status: { type: 'string', enum: ['ready', 'degraded', 'unready'] },
    store: str('The store’s dialect: sqlite or postgres'),
    checks: object(
      {
        store: dependency({ dialect: str('sqlite or postgres'), latency_ms: { type: 'number' } }),
        redis: dependency({}),
      },
      ['store'],
    ),
  },
  ['status', 'store', 'checks'],
);

/** The legacy tutorial route's success body. */
export const LEGACY_TOKENS = object(
  {
    statusCode: { type: 'integer', enum: [200] },
    data: object({ accessToken: str('The access token'), refreshToken: str('The next refresh token') }, [
      'accessToken',
      'refreshToken',
    ]),
    message: str('Access token refreshed'),
    success: { type: 'boolean', enum: [true] },
  },
  ['statusCode', 'data', 'message', 'success'],
);

/**
 * The error body, with the codes a response status may carry on one route.
 * @see RFC 6749 §5.2, RFC 6750 §3.1
 */
export function errorBody(codes: readonly string[], legacy: boolean): JsonSchema {
  const base = {
    error: { type: 'string', enum: [...codes] },
    error_description: str('What went wrong, for people; never a token, password or hash'),
  };
  if (!legacy) return object(base, ['error', 'error_description']);
  return object(
    {
      ...base,
      statusCode: int('The HTTP status again'),
      message: str('The error_description again'),
      success: { type: 'boolean', enum: [false] },
    },
    ['error', 'error_description', 'statusCode', 'message', 'success'],
  );
}
