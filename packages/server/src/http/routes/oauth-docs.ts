import type { RouteDoc } from '../openapi.js';
import { INTROSPECTION, type JsonSchema, OAUTH_TOKENS } from '../openapi-shapes.js';

const param = (description: string): JsonSchema => ({ type: 'string', description });

/** client_secret_post (RFC 6749 §2.3.1), or just the id of a public client. */
const clientParams = {
  client_id: param('The client; a public client only names itself'),
  client_secret: param('client_secret_post: the confidential client’s secret (or use Basic)'),
};

const tokenParams = {
  token: param('The token: a refresh token (`brt_…`) or an access token'),
  token_type_hint: param('refresh_token or access_token; optional, Baton tells them apart'),
  ...clientParams,
};

const noStore = { 'cache-control': 'no-store', pragma: 'no-cache' };

/** The `/oauth/*` routes' entries in `/openapi.json`. @see RFC 6749, RFC 7009, RFC 7662 */
export const OAUTH_DOCS = {
  token: {
    tag: 'oauth',
    summary: 'Token endpoint: the refresh_token grant',
    description:
      'The same rotation as /auth/refresh (reuse detection, grace window), bound to the client: a public client names itself with client_id, a confidential one authenticates. There is no password grant (RFC 9700 §2.4). @see RFC 6749 §6, §5.1, §5.2',
    security: [[], ['dpop'], ['clientBasic'], ['clientBasic', 'dpop']],
    form: {
      properties: {
        grant_type: { type: 'string', enum: ['refresh_token'] },
        refresh_token: param('The refresh token to rotate'),
        scope: param('Narrow the scope (never widen it)'),
        ...clientParams,
      },
      required: ['grant_type', 'refresh_token'],
    },
    responses: {
      200: {
        description: 'The new tokens',
        body: OAUTH_TOKENS,
        headers: { ...noStore, 'dpop-nonce': 'The current DPoP nonce (RFC 9449 §8)' },
      },
    },
    errors: [
      'invalid_grant',
      'invalid_client',
      'unauthorized_client',
      'unsupported_grant_type',
      'invalid_scope',
      'invalid_dpop_proof',
      'use_dpop_nonce',
    ],
  },
  revoke: {
    tag: 'oauth',
    summary: 'Revocation endpoint',
    description:
      'Revoking a refresh or an access token ends its session. Unknown or garbage tokens answer 200 too. The refresh token of a DPoP-bound session is revoked only with a proof by its key: without one, 400 invalid_dpop_proof and the session lives on (the token is valid, its sender is not its holder). A proof that is sent is verified. @see RFC 7009 §2, RFC 9449 §5',
    security: [[], ['dpop'], ['clientBasic']],
    form: { properties: tokenParams, required: ['token'] },
    responses: {
      200: {
        description: 'Revoked, or nothing to revoke',
        headers: { ...noStore, 'dpop-nonce': 'The current DPoP nonce (RFC 9449 §8)' },
      },
    },
    errors: [
      'invalid_client',
      'unauthorized_client',
      'unsupported_token_type',
      'invalid_dpop_proof',
      'use_dpop_nonce',
    ],
  },
  introspect: {
    tag: 'oauth',
    summary: 'Introspection endpoint, for confidential clients',
    description:
      'Inactive, unknown, expired and revoked tokens all answer exactly {"active": false}. @see RFC 7662 §2',
    security: [['clientBasic']],
    form: { properties: tokenParams, required: ['token'] },
    responses: { 200: { description: 'The token’s state', body: INTROSPECTION, headers: noStore } },
    errors: ['invalid_client'],
  },
} as const satisfies Record<string, RouteDoc>;
