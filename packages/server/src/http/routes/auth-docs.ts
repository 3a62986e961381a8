import { DEVICE_COOKIE } from '../cookies.js';
import type { DocumentedResponse, RouteDoc } from '../openapi.js';
import { AUTH_TOKENS, LOGIN_TOKENS, ME, SESSION_PAGE, USER } from '../openapi-shapes.js';

const noContent = (description: string): Readonly<Record<number, DocumentedResponse>> => ({
  204: { description, headers: { 'cache-control': 'no-store', 'set-cookie': 'Clears the refresh cookie' } },
});

const tokenHeaders = {
  'cache-control': 'no-store',
  'dpop-nonce': 'The current DPoP nonce (RFC 9449 §8)',
  'set-cookie': 'Cookie mode: the refresh cookie',
};

/** A route that needs an access token: Authorization: Bearer, and an allowed Origin from browsers. */
const withAccessToken = {
  security: [['bearer']],
  headers: ['origin'],
} as const satisfies Partial<RouteDoc>;

/** The `/auth/*` routes' entries in `/openapi.json`, by route. */
export const AUTH_DOCS = {
  register: {
    tag: 'auth',
    summary: 'Register a user',
    description:
      'Creates an account. Any client’s page may host the form, so a browser Origin may be the server’s or any client’s.',
    headers: ['origin'],
    responses: { 201: { description: 'The new user', body: { type: 'object', properties: { user: USER } } } },
    errors: ['email_taken', 'access_denied'],
  },
  login: {
    tag: 'auth',
    summary: 'Sign in: a session with an access token and a refresh token',
    description:
      'Token mode (default) returns the refresh token in the body; cookie mode (`mode: "cookie"`, public browser clients) sets it as an HttpOnly cookie and needs the X-Baton-CSRF header. A confidential client authenticates with Basic or client_secret_post. A DPoP proof binds the new session to its key (RFC 9449).',
    security: [[], ['dpop'], ['clientBasic'], ['clientBasic', 'dpop']],
    headers: ['origin', 'x-baton-csrf'],
    cookies: { [DEVICE_COOKIE]: { type: 'string', description: 'The device token, if the body has none' } },
    responses: { 200: { description: 'The tokens', body: LOGIN_TOKENS, headers: tokenHeaders } },
    errors: [
      'invalid_credentials',
      'invalid_client',
      'invalid_scope',
      'access_denied',
      'invalid_dpop_proof',
      'use_dpop_nonce',
    ],
  },
  refresh: {
    tag: 'auth',
    summary: 'Rotate a refresh token',
    description:
      'One-time use: the answer carries its successor. Presenting a used token again outside the grace window revokes the whole session (reuse detection). The token comes from the body, or in cookie mode from the cookie with the X-Baton-CSRF header. A DPoP-bound session refreshes only with a proof by its key.',
    security: [[], ['dpop'], ['refreshCookie'], ['refreshCookie', 'dpop']],
    headers: ['origin', 'x-baton-csrf'],
    responses: { 200: { description: 'The new tokens', body: AUTH_TOKENS, headers: tokenHeaders } },
    errors: ['invalid_grant', 'invalid_scope', 'access_denied', 'invalid_dpop_proof', 'use_dpop_nonce'],
  },
  logout: {
    tag: 'auth',
    summary: 'End a session',
    description:
      'By refresh token (body, or the cookie with X-Baton-CSRF) or by access token. Idempotent: an already ended session answers 204 too. A confidential client’s token is revoked only with its credentials. A DPoP-bound session’s refresh token ends it only with a proof by its key (400 invalid_dpop_proof without one, and the session lives on); a proof that is sent is verified. Logout by access token reads no proof.',
    security: [[], ['dpop'], ['refreshCookie'], ['refreshCookie', 'dpop'], ['bearer'], ['clientBasic']],
    headers: ['origin', 'x-baton-csrf'],
    responses: {
      204: {
        description: 'The session is ended',
        headers: {
          'cache-control': 'no-store',
          'dpop-nonce': 'The current DPoP nonce (RFC 9449 §8)',
          'set-cookie': 'Clears the refresh cookie',
        },
      },
    },
    errors: [
      'invalid_token',
      'invalid_client',
      'unauthorized_client',
      'access_denied',
      'invalid_dpop_proof',
      'use_dpop_nonce',
    ],
  },
  logoutAll: {
    tag: 'auth',
    summary: 'End every session of the user',
    ...withAccessToken,
    responses: noContent('Every session of the user is ended'),
    errors: ['unauthorized', 'invalid_token', 'access_denied'],
  },
  sessions: {
    tag: 'auth',
    summary: 'List the user’s live sessions, a page at a time',
    ...withAccessToken,
    responses: {
      200: {
        description: 'A page of sessions',
        body: SESSION_PAGE,
        headers: { 'cache-control': 'no-store' },
      },
    },
    errors: ['unauthorized', 'invalid_token'],
  },
  revokeSession: {
    tag: 'auth',
    summary: 'End one of the user’s sessions',
    ...withAccessToken,
    responses: noContent('The session is ended'),
    errors: ['unauthorized', 'invalid_token', 'access_denied', 'not_found'],
  },
  password: {
    tag: 'auth',
    summary: 'Change the password',
    description: 'Ends every other session of the user; the current one stays.',
    ...withAccessToken,
    responses: { 204: { description: 'The password is changed', headers: { 'cache-control': 'no-store' } } },
    errors: ['unauthorized', 'invalid_token', 'access_denied'],
  },
  me: {
    tag: 'auth',
    summary: 'The user and session of an access token',
    security: [['bearer']],
    responses: {
      200: { description: 'The user and session', body: ME, headers: { 'cache-control': 'no-store' } },
    },
    errors: ['unauthorized', 'invalid_token'],
  },
} as const satisfies Record<string, RouteDoc>;
