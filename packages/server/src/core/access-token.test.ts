import { generateKeyPairSync, randomBytes, sign, verify } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { isLowS, toLowS } from './access-token.js';

const N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;

describe('ES256 low-s signatures', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const data = Buffer.from('header.payload');
  const p1363 = { dsaEncoding: 'ieee-p1363' } as const;
  const flip = (sig: Buffer) => {
    const out = Buffer.from(sig);
    const s = BigInt(`0x${sig.subarray(32).toString('hex')}`);
    Buffer.from((N - s).toString(16).padStart(64, '0'), 'hex').copy(out, 32);
    return out;
  };

  it('(r, n−s) verifies too — the malleability low-s removes', () => {
    const sig = sign('sha256', data, { key: privateKey, ...p1363 });
    expect(verify('sha256', data, { key: publicKey, ...p1363 }, flip(sig))).toBe(true);
    expect(isLowS(sig)).not.toBe(isLowS(flip(sig)));
  });

  it('toLowS keeps a valid signature and always yields the low form', () => {
    let sawHigh = false;
    for (let i = 0; i < 40; i++) {
      const sig = sign('sha256', data, { key: privateKey, ...p1363 });
      sawHigh ||= !isLowS(sig);
      const low = toLowS(sig);
      expect(isLowS(low)).toBe(true);
      expect(verify('sha256', data, { key: publicKey, ...p1363 }, low)).toBe(true);
      expect(toLowS(low).equals(low)).toBe(true);
    }
    // About half of raw signatures are high-s: 40 draws without one would mean the test proves nothing.
    expect(sawHigh).toBe(true);
  });

  it('toLowS computes n − s exactly, whatever the bytes of s', () => {
    // Against BigInt arithmetic, on random high values of s and on the edges next to n / 2 and n.
    const half = N >> 1n;
    const edges = [half + 1n, half + 2n, N - 1n, N - 2n, N - 0x100n, N - 0xffffffffn];
    const random = Array.from({ length: 500 }, () => {
      const s = BigInt(`0x${randomBytes(32).toString('hex')}`);
      return half + 1n + (s % (N - half - 1n));
    });
    for (const s of [...edges, ...random]) {
      const sig = Buffer.concat([Buffer.alloc(32, 7), Buffer.from(s.toString(16).padStart(64, '0'), 'hex')]);
      const low = toLowS(sig);
      expect(low.subarray(0, 32).equals(sig.subarray(0, 32))).toBe(true);
      expect(BigInt(`0x${low.subarray(32).toString('hex')}`)).toBe(N - s);
      expect(isLowS(low)).toBe(true);
    }
  });

  it('isLowS refuses wrong lengths', () => {
    expect(isLowS(Buffer.alloc(63))).toBe(false);
    expect(isLowS(Buffer.alloc(65))).toBe(false);
  });
});
