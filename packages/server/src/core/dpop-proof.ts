import { createPublicKey, type JsonWebKey, type KeyObject, verify } from 'node:crypto';
import { es256SignatureValid } from './access-token.js';
import { decodeCanonical } from './base64url.js';
import { BatonError } from './errors.js';
import { jwkThumbprint } from './signing-keys.js';

/** The algorithms a DPoP proof may be signed with: the ones Baton signs with itself. @see RFC 9449 §5.1 */
export const DPOP_ALGS = Object.freeze(['ES256', 'EdDSA'] as const);

/** Longest `DPoP` header read; anything longer is refused before it is decoded. */
export const MAX_DPOP_PROOF_LENGTH = 4096;

/** Longest `jti` accepted: RFC 9449 §4.2 asks for 96 random bits; a UUID is 36 characters. */
const MAX_JTI_LENGTH = 256;

/** JWK members that only a private (or symmetric) key has. @see RFC 7518 §6.2.2, §6.3.2, §6.4 */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

/** A DPoP proof whose form, key, signature, `htm` and `htu` checked out; freshness is checked by the caller. */
export interface DpopProofClaims {
  /** The RFC 7638 SHA-256 thumbprint of the proof's public key. */
  jkt: string;
  jti: string;
  /** Seconds since the epoch, as the client's clock had it. */
  iat: number;
  nonce?: string;
}

/** What the request a proof came with was: the method and the URI the server itself derives. */
export interface DpopTarget {
  htm: string;
  /** The expected `htu`, already normalised by {@link normalizeHtu}. */
  htu: string;
}

/** An `invalid_dpop_proof` error. Its description names what failed, never the proof's content. */
export const invalidProof = (description: string) => new BatonError('invalid_dpop_proof', description);

const utf8 = new TextDecoder('utf-8', { fatal: true });

function jsonObject(segment: string, what: string): Record<string, unknown> {
  const bytes = decodeCanonical(segment);
  if (!bytes) throw invalidProof(`The DPoP proof's ${what} is not canonical base64url`);
  let value: unknown;
  try {
    value = JSON.parse(utf8.decode(bytes));
  } catch {
    throw invalidProof(`The DPoP proof's ${what} is not JSON`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw invalidProof(`The DPoP proof's ${what} is not a JSON object`);
  return value as Record<string, unknown>;
}

const coordinate = (v: unknown) => (typeof v === 'string' ? decodeCanonical(v) : null)?.length === 32;

/**
 * The proof's public key, checked against its `alg`: an EC P-256 key for
 * ES256, an OKP Ed25519 key for EdDSA, public members only. A key that
 * carries any private member is refused outright (a client that leaks its
 * private key in a header has no key to prove).
 * @see RFC 9449 §4.3 (checks 5–6), RFC 7638 §3.2
 */
function proofKey(jwk: unknown, alg: string): { key: KeyObject; jkt: string } {
  if (typeof jwk !== 'object' || jwk === null || Array.isArray(jwk))
    throw invalidProof('The DPoP proof header has no jwk');
  const j = jwk as Record<string, unknown>;
  if (PRIVATE_MEMBERS.some((m) => Object.hasOwn(j, m)))
    throw invalidProof('The DPoP proof key must be a public key');
  let members: JsonWebKey;
  if (alg === 'ES256') {
    if (j.kty !== 'EC' || j.crv !== 'P-256' || !coordinate(j.x) || !coordinate(j.y))
      throw invalidProof('An ES256 DPoP proof needs an EC P-256 public key');
    members = { kty: 'EC', crv: 'P-256', x: j.x as string, y: j.y as string };
  } else {
    if (j.kty !== 'OKP' || j.crv !== 'Ed25519' || !coordinate(j.x))
      throw invalidProof('An EdDSA DPoP proof needs an OKP Ed25519 public key');
    members = { kty: 'OKP', crv: 'Ed25519', x: j.x as string };
  }
  try {
    // Only the required members reach the parser: nothing else in the header can steer it.
    return { key: createPublicKey({ key: members, format: 'jwk' }), jkt: jwkThumbprint(members) };
  } catch {
    // A point not on the curve, for instance.
    throw invalidProof('The DPoP proof key is not a valid public key');
  }
}

const UNRESERVED = /^[A-Za-z0-9\-._~]$/;

/**
 * An `htu` in the form two spellings of one URI share, or null when it is
 * not an absolute http(s) URI. The query and fragment are dropped (the
 * proof covers the URI "without query and fragment parts", §4.2, and §4.3
 * compares "ignoring any query and fragment parts"). The WHATWG parser does
 * the case normalisation of scheme and host, removes the default port and
 * the dot segments; percent-encodings are then normalised as RFC 3986
 * §6.2.2.1–2 asks (upper-case hex, unreserved characters decoded). A URI
 * with user information or anything outside printable ASCII is refused,
 * not repaired.
 * @see RFC 9449 §4.3 (check 9), RFC 3986 §6
 */
export function normalizeHtu(value: string): string | null {
  if (!/^[\x21-\x7e]+$/.test(value)) return null;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return null;
  }
  if ((url.protocol !== 'https:' && url.protocol !== 'http:') || url.username !== '' || url.password !== '')
    return null;
  const path = url.pathname.replace(/%[0-9A-Fa-f]{2}/g, (encoded) => {
    const char = String.fromCharCode(Number.parseInt(encoded.slice(1), 16));
    return UNRESERVED.test(char) ? char : encoded.toUpperCase();
  });
  return `${url.protocol}//${url.host}${path}`;
}

/**
 * Verifies a DPoP proof JWT against the request it came with, except for
 * freshness (`iat` or `nonce`) and replay (`jti`), which need the server's
 * nonce secret and the shared replay records (see `dpop.ts`):
 *
 * a compact JWS of bounded size in canonical base64url; header `typ:
 * dpop+jwt`, `alg` ES256 or EdDSA (never `none`, HMAC or RSA), no `crit`,
 * and a public `jwk` of the algorithm's key type; a valid signature by that
 * key (ES256 with the signature range check); claims `jti`, `htm` equal to
 * the method, `htu` equal to the expected URI after normalisation, a
 * numeric `iat`, and `nonce` a string when present.
 * @see RFC 9449 §4.2, §4.3
 */
export function verifyDpopProof(proof: string, target: DpopTarget): DpopProofClaims {
  if (proof.length > MAX_DPOP_PROOF_LENGTH) throw invalidProof('The DPoP proof is too large');
  const parts = proof.split('.');
  if (parts.length !== 3) throw invalidProof('The DPoP proof is not a compact JWS');
  const [h, p, s] = parts as [string, string, string];
  const header = jsonObject(h, 'header');
  if (header.typ !== 'dpop+jwt') throw invalidProof('The DPoP proof must have typ dpop+jwt');
  const alg = header.alg;
  if (typeof alg !== 'string' || !(DPOP_ALGS as readonly string[]).includes(alg))
    throw invalidProof(`The DPoP proof must be signed with ${DPOP_ALGS.join(' or ')}`);
  if ('crit' in header) throw invalidProof('The DPoP proof must not carry crit');
  const { key, jkt } = proofKey(header.jwk, alg);

  const sig = decodeCanonical(s);
  if (!sig || sig.length === 0) throw invalidProof('The DPoP proof signature is malformed');
  const input = Buffer.from(`${h}.${p}`);
  const ok = alg === 'ES256' ? es256SignatureValid(key, input, sig) : verify(null, input, key, sig);
  if (!ok) throw invalidProof('The DPoP proof signature is invalid');

  const claims = jsonObject(p, 'payload');
  const { jti, htm, htu, iat, nonce } = claims;
  if (typeof jti !== 'string' || jti === '' || jti.length > MAX_JTI_LENGTH)
    throw invalidProof('The DPoP proof needs a jti');
  if (htm !== target.htm) throw invalidProof('The DPoP proof was made for another HTTP method');
  if (typeof htu !== 'string' || normalizeHtu(htu) !== target.htu)
    throw invalidProof('The DPoP proof was made for another URI');
  if (typeof iat !== 'number' || !Number.isFinite(iat)) throw invalidProof('The DPoP proof needs an iat');
  if (nonce !== undefined && typeof nonce !== 'string')
    throw invalidProof('The DPoP proof nonce is malformed');
  return { jkt, jti, iat, ...(nonce !== undefined ? { nonce } : {}) };
}
