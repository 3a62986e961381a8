import { generateKeyPairSync, type JsonWebKey, type KeyObject, randomBytes, sign } from 'node:crypto';

/** A client's DPoP key pair, as a test makes one. */
export interface ProofKey {
  alg: 'ES256' | 'EdDSA';
  privateKey: KeyObject;
  /** The public JWK (kty, crv, x[, y]) a proof's header carries. */
  jwk: JsonWebKey;
}

/** A fresh key pair for DPoP proofs. */
export function proofKey(alg: 'ES256' | 'EdDSA' = 'ES256'): ProofKey {
  const { privateKey, publicKey } =
    alg === 'ES256' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('ed25519');
  return { alg, privateKey, jwk: publicKey.export({ format: 'jwk' }) };
}

const enc = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** What a proof says; every member can be overridden or (with `undefined`) left out. */
export interface ProofOptions {
  htm?: string;
  htu?: string;
  /** Seconds since the epoch. */
  iat?: number;
  jti?: string;
  nonce?: string;
  /** Header members to add, replace or (with `undefined`) drop. */
  header?: Record<string, unknown>;
  /** Payload members to add or replace, after the ones above. */
  payload?: Record<string, unknown>;
}

/**
 * A DPoP proof JWT (RFC 9449 §4.2) signed with `key` by node:crypto: header
 * `typ: dpop+jwt`, the key's `alg` and public `jwk`; claims `jti` (random
 * unless given), `htm`, `htu`, `iat`, and `nonce` when given.
 */
export function makeProof(key: ProofKey, opts: ProofOptions & { iat: number }): string {
  const header = withOverrides({ typ: 'dpop+jwt', alg: key.alg, jwk: key.jwk }, opts.header);
  const payload = withOverrides(
    {
      jti: opts.jti ?? randomBytes(12).toString('base64url'),
      htm: opts.htm ?? 'POST',
      htu: opts.htu,
      iat: opts.iat,
      ...(opts.nonce !== undefined ? { nonce: opts.nonce } : {}),
    },
    opts.payload,
  );
  const input = `${enc(header)}.${enc(payload)}`;
  const sig =
    key.alg === 'ES256'
      ? sign('sha256', Buffer.from(input), { key: key.privateKey, dsaEncoding: 'ieee-p1363' })
      : sign(null, Buffer.from(input), key.privateKey);
  return `${input}.${sig.toString('base64url')}`;
}

function withOverrides(base: Record<string, unknown>, extra: Record<string, unknown> | undefined) {
  const out = { ...base, ...extra };
  for (const [k, v] of Object.entries(out)) if (v === undefined) delete out[k];
  return out;
}
