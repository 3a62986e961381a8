// The server's ES256 signature check (behind /auth/me and /oauth/introspect)
// against Project Wycheproof's ECDSA P-256 vectors: it must agree with every
// vendored case, high-s valid signatures included.
import { createPublicKey } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { isHighS, loadEcdsaP256Vectors } from '../../../../test/fixtures/wycheproof/ecdsa-p256.js';
import { es256SignatureValid } from './access-token.js';

const vectors = loadEcdsaP256Vectors();

describe('es256SignatureValid against Wycheproof ecdsa_secp256r1_sha256_p1363', () => {
  it('the subset covers what it claims: valid high-s and low-s, wrong lengths, invalid 64-byte cases', () => {
    const valid = vectors.filter((v) => v.valid);
    expect(valid.filter((v) => isHighS(v.sig)).length).toBeGreaterThanOrEqual(10);
    expect(valid.filter((v) => !isHighS(v.sig)).length).toBeGreaterThanOrEqual(5);
    expect(vectors.filter((v) => v.sig.length !== 64).length).toBeGreaterThanOrEqual(5);
    expect(vectors.filter((v) => !v.valid && v.sig.length === 64).length).toBeGreaterThanOrEqual(20);
  });

  it.each(vectors.map((v) => [v.tcId, v.comment, v.valid ? 'valid' : 'invalid', v] as const))(
    'tcId %i (%s) → %s',
    (_id, _comment, _expected, v) => {
      const key = createPublicKey({ key: v.publicKeyDer, format: 'der', type: 'spki' });
      expect(es256SignatureValid(key, v.msg, v.sig)).toBe(v.valid);
    },
  );
});
