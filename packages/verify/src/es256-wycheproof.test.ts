// @baton/verify's ES256 signature decision against Project Wycheproof's ECDSA
// P-256 vectors. A JWS signs `header.payload`, never a vector's raw `msg`, so
// the vectors cannot be wrapped as tokens; instead each goes through the same
// two steps the verifier takes: our shape and range check
// (`isEs256SignatureInRange`), then the WebCrypto ECDSA check that jose's
// `compactVerify` calls for ES256.
import { webcrypto } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { isHighS, loadEcdsaP256Vectors } from '../../../test/fixtures/wycheproof/ecdsa-p256.js';
import { isEs256SignatureInRange } from './jws.js';

const vectors = loadEcdsaP256Vectors();
const ES256 = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

async function verifierAccepts(v: (typeof vectors)[number]): Promise<boolean> {
  if (!isEs256SignatureInRange(v.sig)) return false;
  const key = await webcrypto.subtle.importKey('spki', v.publicKeyDer, ES256, false, ['verify']);
  return webcrypto.subtle.verify(ES256, key, v.sig, v.msg);
}

describe('ES256 signature check against Wycheproof ecdsa_secp256r1_sha256_p1363', () => {
  it.each(vectors.map((v) => [v.tcId, v.comment, v.valid ? 'valid' : 'invalid', v] as const))(
    'tcId %i (%s) → %s',
    async (_id, _comment, _expected, v) => {
      expect(await verifierAccepts(v)).toBe(v.valid);
    },
  );

  it('the range check passes every valid signature, high-s ones included', () => {
    const valid = vectors.filter((v) => v.valid);
    expect(valid.filter((v) => isHighS(v.sig)).length).toBeGreaterThanOrEqual(10);
    for (const v of valid) expect(isEs256SignatureInRange(v.sig), `tcId ${v.tcId}`).toBe(true);
  });

  it('the range check alone refuses r or s = 0, r or s ≥ n, and every length but 64', () => {
    const n = Buffer.from('ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551', 'hex');
    const one = Buffer.alloc(32);
    one[31] = 1;
    const zero = Buffer.alloc(32);
    for (const sig of [
      Buffer.concat([zero, one]),
      Buffer.concat([one, zero]),
      Buffer.concat([n, one]),
      Buffer.concat([one, n]),
      Buffer.concat([Buffer.alloc(32, 0xff), one]),
      Buffer.concat([one, Buffer.alloc(32, 0xff)]),
    ]) {
      expect(isEs256SignatureInRange(sig)).toBe(false);
    }
    expect(isEs256SignatureInRange(Buffer.concat([one, one]))).toBe(true);
    for (const v of vectors.filter((x) => x.sig.length !== 64)) {
      expect(isEs256SignatureInRange(v.sig), `tcId ${v.tcId}`).toBe(false);
    }
  });
});
