import { type AccessTokenClaims, hasScopes } from './claims.js';
import { VerifyError } from './errors.js';
import type { VerifierOptions } from './options.js';
import { createVerifier, type Verifier } from './verifier.js';

/** Options of `requireAuth()` in the Express and Fastify adapters. */
export interface RequireAuthOptions {
  /** Scopes the token must all carry (RFC 6749 §3.3); missing ones answer 403 `insufficient_scope`. */
  scopes?: readonly string[];
  /** Override the verifier's `checkSession` for this route. */
  checkSession?: boolean;
}

/** Options shared by the Express and Fastify adapters. */
export interface BearerOptions {
  /** `realm` for the `WWW-Authenticate` challenge (RFC 6750 §3); omitted by default. */
  realm?: string;
}

/** A refusal, ready to be written by any framework. */
export interface BearerRefusal {
  readonly status: 400 | 401 | 403 | 503;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: { readonly error: string; readonly error_description: string };
}

/** The outcome of {@link authorizeBearer}. */
export type BearerOutcome =
  | { readonly ok: true; readonly claims: AccessTokenClaims }
  | { readonly ok: false; readonly refusal: BearerRefusal };

/** Validated `requireAuth` options. */
export interface ResolvedRequireAuth {
  readonly scopes: readonly string[];
  readonly checkSession: boolean | undefined;
}

const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/;

/** Validate `requireAuth` options at route definition time; throws `TypeError` on misuse. */
export function resolveRequireAuth(options: unknown, where: string): ResolvedRequireAuth {
  if (options === undefined) return { scopes: [], checkSession: undefined };
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new TypeError(`${where}: options must be an object`);
  }
  const o = options as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (key !== 'scopes' && key !== 'checkSession') throw new TypeError(`${where}: unknown option "${key}"`);
  }
  let scopes: string[] = [];
  if (o.scopes !== undefined) {
    // RFC 6749 §3.3 scope-token: printable ASCII without space, quote or backslash.
    if (!Array.isArray(o.scopes) || o.scopes.some((s) => typeof s !== 'string' || !SCOPE_TOKEN.test(s))) {
      throw new TypeError(`${where}: scopes must be an array of scope tokens (no spaces or quotes)`);
    }
    scopes = [...(o.scopes as string[])];
  }
  if (o.checkSession !== undefined && typeof o.checkSession !== 'boolean') {
    throw new TypeError(`${where}: checkSession must be a boolean`);
  }
  return Object.freeze({
    scopes: Object.freeze(scopes),
    checkSession: o.checkSession as boolean | undefined,
  });
}

/** Validate adapter options; throws `TypeError` on misuse. */
export function resolveBearerOptions(realm: unknown, where: string): string | undefined {
  if (realm === undefined) return undefined;
  if (typeof realm !== 'string' || !/^[\x20\x21\x23-\x5B\x5D-\x7E]*$/.test(realm)) {
    throw new TypeError(`${where}: realm must be a string of printable ASCII without quotes or backslashes`);
  }
  return realm;
}

// RFC 6750 §3: error_description is limited to %x20-21 / %x23-5B / %x5D-7E, so quotes and
// backslashes never need escaping, and nothing can break out of the header value.
const quotable = (text: string) => text.replace(/[^\x20\x21\x23-\x5B\x5D-\x7E]/g, '');

function challenge(realm: string | undefined, params: ReadonlyArray<readonly [string, string]>): string {
  const all: Array<readonly [string, string]> = realm === undefined ? [] : [['realm', realm]];
  all.push(...params);
  if (all.length === 0) return 'Bearer';
  return 'Bearer ' + all.map(([k, v]) => `${k}="${quotable(v)}"`).join(', ');
}

function refuse(
  status: BearerRefusal['status'],
  error: string,
  description: string,
  wwwAuthenticate: string | undefined,
): BearerOutcome {
  const headers: Record<string, string> = { 'cache-control': 'no-store' };
  if (wwwAuthenticate !== undefined) headers['www-authenticate'] = wwwAuthenticate;
  return { ok: false, refusal: { status, headers, body: { error, error_description: description } } };
}

/**
 * Authenticate a request by its `Authorization: Bearer` header (RFC 6750 §2.1) and
 * answer per RFC 6750 §3.1:
 * - no credentials, or another scheme: 401 with a bare `WWW-Authenticate: Bearer`
 *   (no error code, as §3.1 asks when the client did not attempt Bearer);
 * - `Bearer` with nothing after it: 400 `invalid_request`;
 * - a refused token: 401 `invalid_token` with an `error_description`;
 * - a valid token lacking a scope: 403 `insufficient_scope` with the `scope` needed;
 * - the issuer unreachable: 503 `temporarily_unavailable` (the token may be fine).
 *
 * Framework-neutral; the Express and Fastify adapters write its refusal.
 * @see RFC 6750 §2.1, §3, §3.1
 */
export async function authorizeBearer(
  verifier: Verifier,
  authorization: string | undefined,
  options: ResolvedRequireAuth,
  realm: string | undefined,
): Promise<BearerOutcome> {
  const match =
    authorization === undefined ? null : /^([A-Za-z0-9!#$%&'*+.^_`|~-]+)(?: +(.*))?$/s.exec(authorization);
  // The auth-scheme is case-insensitive (RFC 9110 §11.1).
  if (match?.[1]?.toLowerCase() !== 'bearer') {
    return refuse(401, 'unauthorized', 'An access token is required', challenge(realm, []));
  }
  const token = match[2]?.trim() ?? '';
  if (token === '') {
    return refuse(
      400,
      'invalid_request',
      'The Authorization header has no token',
      challenge(realm, [
        ['error', 'invalid_request'],
        ['error_description', 'The Authorization header has no token'],
      ]),
    );
  }
  let claims: AccessTokenClaims;
  try {
    claims = await verifier.verify(
      token,
      options.checkSession === undefined ? undefined : { checkSession: options.checkSession },
    );
  } catch (error) {
    if (!(error instanceof VerifyError)) throw error;
    if (!error.isTokenError) {
      return refuse(503, 'temporarily_unavailable', error.message, undefined);
    }
    return refuse(
      401,
      'invalid_token',
      error.message,
      challenge(realm, [
        ['error', 'invalid_token'],
        ['error_description', error.message],
      ]),
    );
  }
  if (!hasScopes(claims, options.scopes)) {
    const description = 'The access token lacks a required scope';
    return refuse(
      403,
      'insufficient_scope',
      description,
      challenge(realm, [
        ['error', 'insufficient_scope'],
        ['error_description', description],
        ['scope', options.scopes.join(' ')],
      ]),
    );
  }
  return { ok: true, claims };
}

/**
 * Splits middleware options (framework keys already removed) into the
 * verifier to use, given as `{ verifier }` or built from verifier options,
 * and the `realm`. Shared by the Express and Fastify adapters so both
 * refuse the same mistakes at construction.
 */
export function verifierFromOptions(
  options: Record<string, unknown>,
  where: string,
): { verifier: Verifier; realm: string | undefined } {
  const { realm, ...rest } = options;
  const resolvedRealm = resolveBearerOptions(realm, where);
  if ('verifier' in rest) {
    const { verifier, ...extra } = rest;
    if (Object.keys(extra).length > 0) {
      throw new TypeError(`${where}: pass either { verifier } or verifier options, not both`);
    }
    if (typeof (verifier as Verifier | undefined)?.verify !== 'function') {
      throw new TypeError(`${where}: verifier must come from createVerifier()`);
    }
    return { verifier: verifier as Verifier, realm: resolvedRealm };
  }
  return { verifier: createVerifier(rest as unknown as VerifierOptions), realm: resolvedRealm };
}
