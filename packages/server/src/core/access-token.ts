import { type KeyObject, sign, verify } from 'node:crypto';
import { b64url, decodeCanonical } from './base64url.js';
import { BatonError } from './errors.js';
import { randomId128 } from './ids.js';
import type { KeyRing, LoadedKey } from './signing-keys.js';

/**
 * Claims of a Baton access token.
 * @see RFC 9068 §2.2
 */
export interface AccessTokenClaims {
  iss: string;
  sub: string;
  aud: string;
  exp: number;
  iat: number;
  jti: string;
  /** The session (token family) this token belongs to. */
  sid: string;
  client_id: string;
  scope?: string;
}

/** Longest access token the server's own verifier reads; anything longer is refused before parsing. */
export const MAX_ACCESS_TOKEN_LENGTH = 4096;

/** Order of the P-256 group (SEC 2 §2.4.2), and half of it: the bound of a "low-s" signature. */
const P256_N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
const P256_HALF_N = P256_N >> 1n;
const bytes32 = (n: bigint): Buffer => Buffer.from(n.toString(16).padStart(64, '0'), 'hex');
/** n and n / 2 as 32 big-endian bytes: the signing path compares and subtracts bytes, not BigInts. */
const P256_N_BYTES = bytes32(P256_N);
const P256_HALF_N_BYTES = bytes32(P256_HALF_N);
const sIsLow = (sig: Buffer): boolean => Buffer.compare(sig.subarray(32, 64), P256_HALF_N_BYTES) <= 0;

const rOf = (sig: Buffer): bigint => BigInt(`0x${sig.subarray(0, 32).toString('hex')}`);
const sOf = (sig: Buffer): bigint => BigInt(`0x${sig.subarray(32, 64).toString('hex')}`);

/**
 * An ES256 signature `(r, s)` is equally valid as `(r, n − s)`. Baton signs
 * the low-s form so its own tokens have one spelling; verifiers accept both,
 * as RFC 7518 §3.4 does (see {@link es256SignatureValid}).
 */
export function toLowS(sig: Buffer): Buffer {
  if (sIsLow(sig)) return sig;
  // n − s, byte by byte from the end with a borrow (s < n, so none is left over): half of
  // all signatures come here, and this spares two hex round trips and two BigInts each.
  const out = Buffer.from(sig);
  let borrow = 0;
  for (let i = 31; i >= 0; i--) {
    const d = P256_N_BYTES[i]! - sig[32 + i]! - borrow;
    borrow = d < 0 ? 1 : 0;
    out[32 + i] = d & 0xff;
  }
  return out;
}

/** True for a 64-byte ES256 signature in low-s form (the form {@link toLowS} yields). */
export function isLowS(sig: Buffer): boolean {
  return sig.length === 64 && sIsLow(sig);
}

/**
 * Whether `sig` is a valid ES256 signature of `input` under `publicKey`: raw
 * `r || s` of exactly 64 bytes (RFC 7518 §3.4) with `0 < r, s < n` (SEC 1
 * §4.1.4 step 1), then the ECDSA check itself.
 *
 * High-s signatures are valid: RFC 7518 does not ask for low-s and jose,
 * WebCrypto and cloud KMS signers produce high-s about half the time. The
 * twin `(r, n − s)` only re-spells a token its key holder signed; nothing
 * here identifies a token by its signature bytes (the `jti` does that).
 * @see RFC 7518 §3.4, SEC 1 v2 §4.1.4
 */
export function es256SignatureValid(publicKey: KeyObject, input: Uint8Array, sig: Buffer): boolean {
  if (sig.length !== 64) return false;
  // OpenSSL checks the range too; doing it here keeps r = 0 / s = 0 forgeries
  // (CVE-2022-21449) out whatever crypto library this runs on.
  const r = rOf(sig);
  const s = sOf(sig);
  if (r === 0n || s === 0n || r >= P256_N || s >= P256_N) return false;
  return verify('sha256', input, { key: publicKey, dsaEncoding: 'ieee-p1363' }, sig);
}

function signature(key: LoadedKey, input: string): Buffer {
  return key.alg === 'ES256'
    ? toLowS(sign('sha256', Buffer.from(input), { key: key.privateKey, dsaEncoding: 'ieee-p1363' }))
    : sign(null, Buffer.from(input), key.privateKey);
}

/** A new random `jti`. */
export function newJti(): string {
  return randomId128();
}

/**
 * Signs an RFC 9068 access token with `node:crypto` directly: a synchronous
 * sign with a prepared `KeyObject` is several times cheaper than async
 * WebCrypto, and this runs on every refresh.
 * @see RFC 9068 §2.1 (header `typ: at+jwt`)
 */
export function signAccessToken(key: LoadedKey, claims: AccessTokenClaims): string {
  const input = `${key.encodedHeader}.${b64url(JSON.stringify(claims))}`;
  return `${input}.${signature(key, input).toString('base64url')}`;
}

/** Options of {@link verifyAccessToken}. */
export interface VerifyAccessTokenOptions {
  keys: KeyRing;
  issuer: string;
  /** Accepted audiences; the token's `aud` must contain one. */
  audiences: readonly string[];
  /** Now, in ms. */
  now: number;
  /** Clock leeway in seconds (default 5). */
  leeway?: number;
}

const invalid = (description: string) => new BatonError('invalid_token', description);

const utf8 = new TextDecoder('utf-8', { fatal: true });

function parseJsonObject(bytes: Buffer | null, what: string): Record<string, unknown> {
  if (!bytes) throw invalid(`The access token's ${what} is not canonical base64url`);
  let value: unknown;
  try {
    value = JSON.parse(utf8.decode(bytes));
  } catch {
    throw invalid(`The access token's ${what} is not JSON`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalid(`The access token's ${what} is not a JSON object`);
  }
  return value as Record<string, unknown>;
}

/** An access token split and its header checked, before any key is looked up. */
export interface DecodedAccessToken {
  /** The header's key id: the only key that may have signed it. */
  kid: string;
  header: Record<string, unknown>;
  /** The three encoded segments. */
  segments: readonly [string, string, string];
}

/**
 * Splits an access token and checks everything about it that needs no key:
 * size, three canonical segments, a JSON header with `typ: at+jwt`, a `kid`,
 * and none of the headers that would let a token pick its own key
 * (`jwk`/`jku`/`x5u`/`x5c`) or demand extensions (`crit`).
 * @see RFC 9068 §4, RFC 8725 §3.11
 */
export function decodeAccessToken(token: string): DecodedAccessToken {
  if (token.length > MAX_ACCESS_TOKEN_LENGTH) throw invalid('The access token is too long');
  const parts = token.split('.');
  if (parts.length !== 3) throw invalid('The access token is not a compact JWS');
  const segments = parts as [string, string, string];
  const header = parseJsonObject(decodeCanonical(segments[0]), 'header');
  if (
    typeof header.typ !== 'string' ||
    !['at+jwt', 'application/at+jwt'].includes(header.typ.toLowerCase())
  ) {
    throw invalid('The token is not an access token (typ must be at+jwt)');
  }
  for (const member of ['jwk', 'jku', 'x5u', 'x5c', 'crit']) {
    if (member in header) throw invalid(`The access token header must not carry "${member}"`);
  }
  if (typeof header.kid !== 'string') throw invalid('The access token has no key id');
  return { kid: header.kid, header, segments };
}

/**
 * Verifies an access token strictly, as a resource server must: the
 * algorithm is pinned to the key's, `typ` must be `at+jwt`, the key comes
 * only from our own key ring by `kid` (never from `jwk`/`jku`/`x5u`/`x5c`
 * headers), issuer and audience match exactly, `exp` is required. Takes the
 * token as a string or already decoded (so a caller that looked at the kid
 * first does not decode it twice).
 * @see RFC 9068 §4, RFC 8725 §3.1, §3.11
 */
export function verifyAccessToken(
  token: string | DecodedAccessToken,
  opts: VerifyAccessTokenOptions,
): AccessTokenClaims {
  const { kid, header, segments } = typeof token === 'string' ? decodeAccessToken(token) : token;
  const [h, p, s] = segments;
  const key = opts.keys.find(kid, opts.now);
  if (!key) throw invalid('The access token was signed by an unknown key');
  // Pin the algorithm to the key: this is what stops `alg: none` and HS256-with-the-public-key.
  if (header.alg !== key.alg) throw invalid('The access token algorithm does not match its key');
  const sig = decodeCanonical(s);
  if (!sig || sig.length === 0) throw invalid('The access token signature is malformed');
  const input = Buffer.from(`${h}.${p}`);
  const ok =
    key.alg === 'ES256'
      ? es256SignatureValid(key.publicKey, input, sig)
      : verify(null, input, key.publicKey, sig);
  if (!ok) throw invalid('The access token signature is invalid');

  const claims = parseJsonObject(decodeCanonical(p), 'payload');
  const nowSec = opts.now / 1000;
  const leeway = opts.leeway ?? 5;
  if (claims.iss !== opts.issuer) throw invalid('The access token has the wrong issuer');
  const aud = claims.aud;
  const auds = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : [];
  if (!auds.some((a) => typeof a === 'string' && opts.audiences.includes(a))) {
    throw invalid('The access token is not meant for this audience');
  }
  if (typeof claims.exp !== 'number' || !Number.isFinite(claims.exp))
    throw invalid('The access token has no expiry');
  // RFC 7519 §4.1.4: the current time must be *before* exp; the leeway only moves that edge.
  if (nowSec >= claims.exp + leeway) throw invalid('The access token has expired');
  if (claims.nbf !== undefined && (typeof claims.nbf !== 'number' || claims.nbf > nowSec + leeway)) {
    throw invalid('The access token is not valid yet');
  }
  if (
    typeof claims.sub !== 'string' ||
    typeof claims.sid !== 'string' ||
    typeof claims.client_id !== 'string'
  ) {
    throw invalid('The access token lacks required claims');
  }
  return claims as unknown as AccessTokenClaims;
}
