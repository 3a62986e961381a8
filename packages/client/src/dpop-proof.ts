import type { DpopKeyPair } from './dpop-keys.js';
/**
 * DPoP proofs (RFC 9449): an ES256 key pair per session, its RFC 7638
 * thumbprint, and the signed `dpop+jwt` the client sends with each login and
 * refresh. WebCrypto only, so the same code runs in browsers, workers and
 * Node 20.
 */

/** A session's key pair with what every proof repeats: its public JWK and thumbprint. */
export interface DpopKey {
  readonly pair: DpopKeyPair;
  /** The public key only (`kty`, `crv`, `x`, `y`): what goes into each proof's header. */
  readonly jwk: { kty: 'EC'; crv: 'P-256'; x: string; y: string };
  /** RFC 7638 thumbprint of `jwk`: the server binds the session to it. */
  readonly jkt: string;
}

/** The claims a proof carries besides `jti`. @see RFC 9449 §4.2 */
export interface ProofClaims {
  htm: string;
  /** The route's URI, without query or fragment. */
  htu: string;
  /** Seconds since the epoch. */
  iat: number;
  /** The latest `DPoP-Nonce` the server sent, when there is one. */
  nonce: string | undefined;
}

const ES256 = { name: 'ECDSA', namedCurve: 'P-256' } as const;

/** The WebCrypto `subtle` of this realm, or undefined (an insecure context, an old runtime). */
function subtleCrypto(): SubtleCrypto | undefined {
  const crypto = (globalThis as { crypto?: { subtle?: SubtleCrypto } }).crypto;
  return typeof crypto?.subtle?.generateKey === 'function' && typeof crypto.subtle.sign === 'function'
    ? crypto.subtle
    : undefined;
}

/**
 * Whether this runtime has WebCrypto's `subtle` (browsers, workers, Node 20).
 * A boolean, so the package's type declarations name no DOM-only type.
 */
export function hasWebCrypto(): boolean {
  return subtleCrypto() !== undefined;
}

/**
 * A new P-256 key pair. Non-extractable unless the key store must serialise
 * it (a file in Node): a script that runs in the page can then use the key
 * while the page is open, but never copy it out.
 */
export async function generateDpopKey(extractable: boolean): Promise<DpopKey> {
  const subtle = requireSubtle();
  const pair = (await subtle.generateKey(ES256, extractable, ['sign', 'verify'])) as DpopKeyPair;
  return describeKey(pair);
}

/** The public JWK and thumbprint of a stored key pair. The public half is always exportable. */
export async function describeKey(pair: DpopKeyPair): Promise<DpopKey> {
  const subtle = requireSubtle();
  const exported = await subtle.exportKey('jwk', pair.publicKey as CryptoKey);
  if (exported.kty !== 'EC' || exported.crv !== 'P-256' || !exported.x || !exported.y)
    throw new TypeError('DPoP key is not an ES256 key');
  const jwk = { kty: 'EC', crv: 'P-256', x: exported.x, y: exported.y } as const;
  return { pair, jwk, jkt: await thumbprint(jwk) };
}

/**
 * The RFC 7638 thumbprint: SHA-256 of the required members in lexical
 * order, no whitespace. @see RFC 7638 §3, RFC 9449 §6.1
 */
export async function thumbprint(jwk: { crv: string; kty: string; x: string; y: string }): Promise<string> {
  const canonical = `{"crv":"${jwk.crv}","kty":"${jwk.kty}","x":"${jwk.x}","y":"${jwk.y}"}`;
  const digest = await requireSubtle().digest('SHA-256', new TextEncoder().encode(canonical));
  return base64url(new Uint8Array(digest));
}

/**
 * A signed proof for one request. Each call draws a new `jti` (128 random
 * bits), so a retry of the same request is a new proof: the server accepts
 * each `jti` once. WebCrypto's ECDSA signature is already the JWS form
 * (r ‖ s, 64 bytes). @see RFC 9449 §4.2, RFC 7518 §3.4
 */
export async function signProof(key: DpopKey, claims: ProofClaims): Promise<string> {
  const header = { typ: 'dpop+jwt', alg: 'ES256', jwk: key.jwk };
  const jti = new Uint8Array(16);
  globalThis.crypto.getRandomValues(jti);
  const payload = {
    jti: base64url(jti),
    htm: claims.htm,
    htu: claims.htu,
    iat: claims.iat,
    ...(claims.nonce === undefined ? {} : { nonce: claims.nonce }),
  };
  const input = `${base64urlJson(header)}.${base64urlJson(payload)}`;
  const signature = await requireSubtle().sign(
    { name: 'ECDSA', hash: 'SHA-256' },
    key.pair.privateKey as CryptoKey,
    new TextEncoder().encode(input),
  );
  return `${input}.${base64url(new Uint8Array(signature))}`;
}

/** The URI a proof names: `htu` has no query or fragment (RFC 9449 §4.2). */
export function proofUri(url: string): string {
  const parsed = new URL(url);
  parsed.search = '';
  parsed.hash = '';
  return parsed.href;
}

function requireSubtle(): SubtleCrypto {
  const subtle = subtleCrypto();
  if (subtle === undefined) throw new TypeError('WebCrypto is not available');
  return subtle;
}

function base64urlJson(value: unknown): string {
  return base64url(new TextEncoder().encode(JSON.stringify(value)));
}

/** base64url without padding (RFC 4648 §5), as JWS uses. */
export function base64url(bytes: Uint8Array): string {
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}
