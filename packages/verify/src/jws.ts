import { VerifyError } from './errors.js';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const BASE64URL = /^[A-Za-z0-9_-]*$/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Whether `segment` is the one canonical unpadded base64url spelling of its bytes
 * (RFC 7515 §2, RFC 4648 §5 and §3.5).
 *
 * Decoders are lenient: Node's `Buffer` and many `atob` wrappers skip `=`, spaces,
 * accept `+` and `/`, and ignore the unused low bits of the last character. Each
 * leniency gives one signature (or header) several spellings, which breaks
 * token-as-cache-key and blocklist logic, so anything but the canonical form is refused.
 */
export function isCanonicalBase64url(segment: string): boolean {
  if (!BASE64URL.test(segment)) return false;
  const rest = segment.length % 4;
  if (rest === 0) return true;
  // One leftover character cannot encode a whole byte.
  if (rest === 1) return false;
  const last = ALPHABET.indexOf(segment.charAt(segment.length - 1));
  // Two leftover characters carry 8 bits of 12, three carry 16 of 18: the rest must be zero.
  return rest === 2 ? (last & 0x0f) === 0 : (last & 0x03) === 0;
}

/** A compact JWS split into its parts, each checked for canonical encoding. */
export interface ParsedJws {
  readonly header: Readonly<Record<string, unknown>>;
  readonly payload: Readonly<Record<string, unknown>>;
  /** The raw signature segment; may be empty (then the caller refuses it). */
  readonly signature: string;
}

function decodeObject(segment: string, what: string): Record<string, unknown> {
  if (segment.length === 0 || !isCanonicalBase64url(segment)) {
    throw new VerifyError('token_malformed', `The token ${what} is not canonical base64url`);
  }
  let value: unknown;
  try {
    // fatal UTF-8: invalid byte sequences are an error, not U+FFFD that might compare equal later.
    value = JSON.parse(utf8.decode(Buffer.from(segment, 'base64url')));
  } catch {
    throw new VerifyError('token_malformed', `The token ${what} is not valid JSON`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new VerifyError('token_malformed', `The token ${what} is not a JSON object`);
  }
  return value as Record<string, unknown>;
}

/**
 * Split a compact JWS (RFC 7515 §7.1) into header, payload and signature, refusing
 * anything but exactly three canonical base64url segments of JSON objects.
 *
 * The signature segment is returned unchecked so the caller can apply the
 * algorithm checks first (an `alg: none` token reports `alg_not_allowed`,
 * not a missing signature).
 */
export function parseCompactJws(token: string): ParsedJws {
  const parts = token.split('.');
  // Five segments is a JWE, two or four is junk: only a JWS with a signature is an access token here.
  if (parts.length !== 3) {
    throw new VerifyError('token_malformed', 'The token is not a compact JWS of three segments');
  }
  const [h, p, s] = parts as [string, string, string];
  return { header: decodeObject(h, 'header'), payload: decodeObject(p, 'payload'), signature: s };
}

/** Order of the P-256 group (SEC 2 §2.4.2). */
const P256_N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;

/**
 * Whether a raw ES256 signature (`r || s`, RFC 7518 §3.4) has the right shape:
 * exactly 64 bytes, with `0 < r < n` and `0 < s < n` (SEC 1 §4.1.4 step 1).
 *
 * The platform's ECDSA check refuses these too; checking here as well keeps
 * the r = 0 / s = 0 forgery (CVE-2022-21449) out whatever runtime jose calls.
 * Both `s` and `n − s` are in range: high-s signatures are valid (RFC 7518
 * asks for no low-s form, and jose, WebCrypto and KMS signers produce them).
 */
export function isEs256SignatureInRange(signature: Uint8Array): boolean {
  if (signature.length !== 64) return false;
  let r = 0n;
  let s = 0n;
  for (let i = 0; i < 32; i++) r = (r << 8n) | BigInt(signature[i]!);
  for (let i = 32; i < 64; i++) s = (s << 8n) | BigInt(signature[i]!);
  return r > 0n && s > 0n && r < P256_N && s < P256_N;
}
