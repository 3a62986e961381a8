import { VerifyError } from './errors.js';
import type { ResolvedOptions } from './options.js';

/**
 * The claims of a verified Baton access token (RFC 9068 §2.2), frozen.
 * Other claims the issuer adds are kept, typed `unknown`.
 * @see RFC 9068 §2.2, RFC 7519 §4.1
 */
export interface AccessTokenClaims {
  /** Issuer, equal to the configured `issuer`. */
  readonly iss: string;
  /** Subject: the user id. */
  readonly sub: string;
  /** Audience(s); at least one is a configured `audience`. */
  readonly aud: string | readonly string[];
  /** Expiry, seconds since the epoch. */
  readonly exp: number;
  /** Issued at, seconds since the epoch. */
  readonly iat: number;
  /** Not before, seconds since the epoch, when present. */
  readonly nbf?: number;
  /** Unique token id. */
  readonly jti: string;
  /** The OAuth client the token was issued to. */
  readonly client_id: string;
  /** Baton session id (the refresh-token family), when present. */
  readonly sid?: string;
  /** Space-separated scopes (RFC 9068 §2.2.3), when the session has any. */
  readonly scope?: string;
  readonly [claim: string]: unknown;
}

const isNumericDate = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

function requireString(payload: Record<string, unknown>, name: string, required: boolean): void {
  const value = payload[name];
  if (value === undefined && !required) return;
  if (typeof value !== 'string' || value === '') {
    throw new VerifyError('claim_invalid', `The token claim ${name} is missing or not a string`);
  }
}

/**
 * Check the claims of an authentic token per RFC 9068 §4 and RFC 7519 §4.1, with
 * `clockTolerance` seconds of leeway on each time check.
 */
export function checkClaims(payload: Record<string, unknown>, options: ResolvedOptions): AccessTokenClaims {
  // Exact comparison: "https://a.example/" is another issuer than "https://a.example",
  // and lower-casing would merge tenants on case-sensitive paths (RFC 9068 §4 step 2).
  if (payload.iss !== options.issuer) {
    throw new VerifyError('iss_invalid', 'The token issuer is not the expected issuer');
  }

  // `aud` is required: a token minted for another API must not work here (RFC 9068 §4 step 3).
  const aud = payload.aud;
  const audiences = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : undefined;
  if (!audiences || audiences.length === 0 || audiences.some((a) => typeof a !== 'string')) {
    throw new VerifyError('aud_invalid', 'The token has no valid audience');
  }
  if (!audiences.some((a) => options.audiences.includes(a as string))) {
    throw new VerifyError('aud_invalid', 'The token is not meant for this audience');
  }

  const nowSec = options.now() / 1000;
  const leeway = options.clockTolerance;
  if (!isNumericDate(payload.exp)) {
    throw new VerifyError('claim_invalid', 'The token claim exp is missing or not a number');
  }
  // RFC 7519 §4.1.4: the current time must be before exp; the leeway absorbs clock skew only.
  if (nowSec >= payload.exp + leeway) {
    throw new VerifyError('token_expired', 'The access token expired');
  }
  if (payload.nbf !== undefined) {
    if (!isNumericDate(payload.nbf)) {
      throw new VerifyError('claim_invalid', 'The token claim nbf is not a number');
    }
    if (payload.nbf > nowSec + leeway) {
      throw new VerifyError('token_not_yet_valid', 'The access token is not valid yet');
    }
  }
  if (!isNumericDate(payload.iat)) {
    throw new VerifyError('claim_invalid', 'The token claim iat is missing or not a number');
  }
  // A token from the future points at a forged or badly clocked issuer; refuse it like nbf.
  if (payload.iat > nowSec + leeway) {
    throw new VerifyError('token_not_yet_valid', 'The access token was issued in the future');
  }

  requireString(payload, 'sub', true);
  requireString(payload, 'jti', true);
  requireString(payload, 'client_id', true);
  requireString(payload, 'sid', false);
  if (payload.scope !== undefined && typeof payload.scope !== 'string') {
    throw new VerifyError('claim_invalid', 'The token claim scope is not a string');
  }
  if (Array.isArray(payload.aud)) Object.freeze(payload.aud);
  return Object.freeze(payload) as AccessTokenClaims;
}

/** The scopes in a token's `scope` claim (RFC 9068 §2.2.3, RFC 6749 §3.3). */
export function scopesOf(claims: AccessTokenClaims): string[] {
  return typeof claims.scope === 'string' ? claims.scope.split(' ').filter((s) => s !== '') : [];
}

/** Whether the token was granted every one of `required` (RFC 6750 §3.1 `insufficient_scope`). */
export function hasScopes(claims: AccessTokenClaims, required: readonly string[]): boolean {
  const granted = new Set(scopesOf(claims));
  return required.every((s) => granted.has(s));
}
