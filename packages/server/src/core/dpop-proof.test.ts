import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { makeProof, proofKey } from '../../test/dpop.js';
import { DPOP_NONCE_TIMES, dpopNonceIssuedAt, INSTANCE_SKEW_MS, makeDpopNonce } from './dpop-nonce.js';
import { normalizeHtu, verifyDpopProof } from './dpop-proof.js';
import { jwkThumbprint } from './signing-keys.js';

describe('normalizeHtu (RFC 9449 §4.3, RFC 3986 §6)', () => {
  it.each([
    ['https://Example.COM/a/b', 'https://example.com/a/b'],
    ['HTTPS://example.com:443/a', 'https://example.com/a'],
    ['http://example.com:80/a', 'http://example.com/a'],
    ['http://example.com:8080/a', 'http://example.com:8080/a'],
    ['https://example.com', 'https://example.com/'],
    ['https://example.com/a/./b/../c', 'https://example.com/a/c'],
    ['https://example.com/%7euser/%2f', 'https://example.com/~user/%2F'],
    ['https://example.com/token?x=1#frag', 'https://example.com/token'],
  ])('%s → %s', (input, output) => {
    expect(normalizeHtu(input)).toBe(output);
  });

  it.each([
    ['a relative reference', '/token'],
    ['another scheme', 'ftp://example.com/token'],
    ['user information', 'https://user:pw@example.com/token'],
    ['a space', 'https://example.com/to ken'],
    ['a tab the parser would drop', 'https://exam\tple.com/token'],
    ['non-ASCII', 'https://exämple.com/token'],
  ])('refuses %s', (_name, input) => {
    expect(normalizeHtu(input)).toBeNull();
  });
});

describe('verifyDpopProof', () => {
  const htu = 'https://as.example/oauth/token';
  const target = { htm: 'POST', htu };

  it('returns the RFC 7638 thumbprint of the proof key with the claims', () => {
    const key = proofKey();
    const claims = verifyDpopProof(
      makeProof(key, { htu, iat: 1_700_000_000, jti: 'j1', nonce: 'n' }),
      target,
    );
    expect(claims).toEqual({ jkt: jwkThumbprint(key.jwk), jti: 'j1', iat: 1_700_000_000, nonce: 'n' });
    // RFC 7638 §3.1's example shape: SHA-256 over the required members only, 43 base64url characters.
    expect(claims.jkt).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('gives the same thumbprint whatever extra members the jwk has', () => {
    const key = proofKey('EdDSA');
    const plain = verifyDpopProof(makeProof(key, { htu, iat: 1 }), target);
    const extra = verifyDpopProof(
      makeProof(key, { htu, iat: 1, header: { jwk: { ...key.jwk, use: 'sig', kid: 'x' } } }),
      target,
    );
    expect(extra.jkt).toBe(plain.jkt);
  });

  it('refuses an EC key whose point is not on the curve', () => {
    const key = proofKey();
    const bad = { ...key.jwk, y: randomBytes(32).toString('base64url') };
    expect(() => verifyDpopProof(makeProof(key, { htu, iat: 1, header: { jwk: bad } }), target)).toThrow(
      expect.objectContaining({ code: 'invalid_dpop_proof' }),
    );
  });

  it('refuses an ES256 proof carrying an Ed25519 key (alg and key type must agree)', () => {
    const ec = proofKey();
    const ed = proofKey('EdDSA');
    expect(() => verifyDpopProof(makeProof(ec, { htu, iat: 1, header: { jwk: ed.jwk } }), target)).toThrow(
      expect.objectContaining({ code: 'invalid_dpop_proof' }),
    );
  });
});

describe('server nonces', () => {
  const secret = randomBytes(32);
  const t = 1_800_000_000_000;

  it('a nonce is valid on any holder of the secret for its lifetime, and not after', () => {
    const nonce = makeDpopNonce(secret, t);
    expect(dpopNonceIssuedAt(Buffer.from(secret), nonce, t + 1)).toBe(t);
    expect(dpopNonceIssuedAt(secret, nonce, t + DPOP_NONCE_TIMES.lifetime)).toBe(t);
    expect(dpopNonceIssuedAt(secret, nonce, t + DPOP_NONCE_TIMES.lifetime + 1)).toBeNull();
    // Issued by an instance whose clock is slightly ahead: accepted within the skew only.
    expect(dpopNonceIssuedAt(secret, nonce, t - INSTANCE_SKEW_MS)).toBe(t);
    expect(dpopNonceIssuedAt(secret, nonce, t - INSTANCE_SKEW_MS - 1)).toBeNull();
  });

  it('refuses a nonce of another secret, a changed time and garbage', () => {
    const nonce = makeDpopNonce(secret, t);
    expect(dpopNonceIssuedAt(randomBytes(32), nonce, t)).toBeNull();
    const bytes = Buffer.from(nonce, 'base64url');
    bytes[7] = bytes[7]! ^ 1;
    expect(dpopNonceIssuedAt(secret, bytes.toString('base64url'), t)).toBeNull();
    expect(dpopNonceIssuedAt(secret, 'bogus', t)).toBeNull();
    expect(dpopNonceIssuedAt(secret, `${nonce}=`, t)).toBeNull();
  });
});
