// The attack table of issue 5 and docs/security.md items 23–27: each token is refused with its code.
import { createHmac, createPublicKey } from 'node:crypto';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createVerifier, type Verifier, VerifyError, type VerifyErrorCode } from './index.js';
import {
  b64url,
  compact,
  flipS,
  generateTestKey,
  type LocalServer,
  signWith,
  startDecoy,
  startTestIssuer,
  type TestIssuer,
  type TestKey,
} from './test-support/issuer.js';

let issuer: TestIssuer;
let decoy: LocalServer;
let attacker: TestKey;
let verifier: Verifier;

beforeAll(async () => {
  issuer = await startTestIssuer();
  decoy = await startDecoy();
  attacker = await generateTestKey('ES256', 'attacker-key');
  verifier = createVerifier({ issuer: issuer.url, audience: issuer.audience, now: () => issuer.now });
});

afterAll(async () => {
  await issuer.close();
  await decoy.close();
});

async function codeOf(token: string, v: Verifier = verifier): Promise<VerifyErrorCode | 'accepted'> {
  try {
    await v.verify(token);
    return 'accepted';
  } catch (error) {
    if (error instanceof VerifyError) return error.code;
    throw error;
  }
}

/** Order of the P-256 group (SEC 2 §2.4.2). */
const P256_N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
const segments = (token: string) => token.split('.') as [string, string, string];
/** A token over valid claims, MACed with HMAC-SHA256 under `secret`. */
function hs256(secret: Buffer | string, headerExtra: Record<string, unknown> = {}): string {
  const header = { alg: 'HS256', typ: 'at+jwt', kid: issuer.keys[0]!.kid, ...headerExtra };
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(issuer.claims()))}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}
/** Every upper/lower-case spelling of `word`. */
function allCasings(word: string): string[] {
  return Array.from({ length: 2 ** word.length }, (_, mask) =>
    [...word].map((c, i) => (mask & (1 << i) ? c.toUpperCase() : c.toLowerCase())).join(''),
  );
}
/** Mint until the signature contains both "-" and "_", so "+" and "/" spellings exist. */
function tokenWithUrlSafeChars(): string {
  for (;;) {
    const token = issuer.mint();
    const signature = segments(token)[2];
    if (signature.includes('-') && signature.includes('_')) return token;
  }
}
/** Set unused low bits of the last character: the same bytes to a lenient decoder. */
function withDirtyTrailingBits(segment: string): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const last = alphabet.indexOf(segment.at(-1)!);
  return segment.slice(0, -1) + alphabet[last | 1];
}

describe('positive controls (each attack below differs from these in one way)', () => {
  it('accepts a valid ES256 token and returns its claims', async () => {
    const claims = await verifier.verify(issuer.mint({ claims: { sub: 'usr_42' } }));
    expect(claims).toMatchObject({ iss: issuer.url, sub: 'usr_42', aud: issuer.audience, client_id: 'app' });
    expect(Object.isFrozen(claims)).toBe(true);
  });

  it('accepts a signature that lenient decoding would also accept, when canonical', async () => {
    expect(await codeOf(tokenWithUrlSafeChars())).toBe('accepted');
  });
});

describe('alg: none (RFC 8725 §2.1)', () => {
  const casings = allCasings('none');
  it('covers all 16 spellings', () => expect(new Set(casings).size).toBe(16));
  it.each(casings)('alg "%s" with and without a signature → alg_not_allowed', async (alg) => {
    const token = issuer.mint({ header: { alg } });
    const [h, p, s] = segments(token);
    expect(await codeOf(`${h}.${p}.`)).toBe('alg_not_allowed');
    expect(await codeOf(`${h}.${p}.${s}`)).toBe('alg_not_allowed');
  });
});

describe('HS256 signed with the public key (key confusion, RFC 8725 §2.1)', () => {
  const forms: Array<[string, () => Buffer | string]> = [
    [
      'PEM',
      () =>
        createPublicKey({ key: issuer.keys[0]!.publicJwk, format: 'jwk' }).export({
          type: 'spki',
          format: 'pem',
        }),
    ],
    [
      'DER',
      () =>
        createPublicKey({ key: issuer.keys[0]!.publicJwk, format: 'jwk' }).export({
          type: 'spki',
          format: 'der',
        }),
    ],
    ['JWK', () => JSON.stringify(issuer.keys[0]!.publicJwk)],
  ];
  it.each(forms)('public key as %s bytes → alg_not_allowed', async (_form, secret) => {
    expect(await codeOf(hs256(secret()))).toBe('alg_not_allowed');
  });
  it.each(allCasings('hs256').filter((_, i) => i % 5 === 0))('alg "%s" → alg_not_allowed', async (alg) => {
    expect(await codeOf(hs256('secret', { alg }))).toBe('alg_not_allowed');
  });
  it.each(['HS384', 'HS512'])('%s → alg_not_allowed', async (alg) => {
    expect(await codeOf(hs256('secret', { alg }))).toBe('alg_not_allowed');
  });
  it('an algorithm the key is not for (EdDSA header, ES256 key) → alg_not_allowed', async () => {
    const ed = await generateTestKey('EdDSA');
    const token = compact(issuer.header({ alg: 'EdDSA' }), issuer.claims(), ed);
    expect(await codeOf(token)).toBe('alg_not_allowed');
  });
  it('an algorithm outside `algorithms` (ES384) → alg_not_allowed', async () => {
    expect(await codeOf(issuer.mint({ header: { alg: 'ES384' } }))).toBe('alg_not_allowed');
  });
  it('alg missing or not a string → alg_not_allowed', async () => {
    expect(await codeOf(issuer.mint({ header: { alg: undefined } }))).toBe('alg_not_allowed');
    expect(await codeOf(issuer.mint({ header: { alg: ['ES256'] } }))).toBe('alg_not_allowed');
  });
});

describe('signatures and structure (SECURITY 26)', () => {
  it('stripped signature ("h.p.") → signature_invalid', async () => {
    const [h, p] = segments(issuer.mint());
    expect(await codeOf(`${h}.${p}.`)).toBe('signature_invalid');
  });
  it('signature segment removed ("h.p") → token_malformed', async () => {
    const [h, p] = segments(issuer.mint());
    expect(await codeOf(`${h}.${p}`)).toBe('token_malformed');
  });
  it('garbled signature (one character changed) → signature_invalid', async () => {
    const [h, p, s] = segments(issuer.mint());
    const garbled = (s[0] === 'A' ? 'B' : 'A') + s.slice(1);
    expect(await codeOf(`${h}.${p}.${garbled}`)).toBe('signature_invalid');
  });
  it('the valid signature rewritten as (r, n − s) → accepted (valid ECDSA; RFC 7518 §3.4 has no low-s rule)', async () => {
    const [h, p, s] = segments(issuer.mint());
    const high = flipS(Buffer.from(s, 'base64url')).toString('base64url');
    expect(high).not.toBe(s);
    expect(await codeOf(`${h}.${p}.${s}`)).toBe('accepted');
    expect(await codeOf(`${h}.${p}.${high}`)).toBe('accepted');
  });
  it('200 ES256 tokens signed by jose (not by Baton), high-s or low-s → all accepted', async () => {
    // jose, WebCrypto and cloud KMS signers do not normalise s: about half their
    // signatures are high-s, and RFC 7518 §3.4 allows both forms.
    const key = issuer.keys[0]!;
    let highS = 0;
    for (let i = 0; i < 200; i++) {
      const token = await new SignJWT(issuer.claims())
        .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: key.kid })
        .sign(key.privateKey);
      const sig = Buffer.from(segments(token)[2], 'base64url');
      if (BigInt(`0x${sig.subarray(32).toString('hex')}`) > P256_N >> 1n) highS++;
      expect(await codeOf(token)).toBe('accepted');
    }
    // 200 draws without a high-s signature (odds 2^-200) would mean this test proves nothing.
    expect(highS).toBeGreaterThan(0);
  });
  it('truncated signature → signature_invalid', async () => {
    const [h, p, s] = segments(issuer.mint());
    expect(await codeOf(`${h}.${p}.${s.slice(0, 84)}`)).toBe('signature_invalid');
  });
  it('signature by another key under our kid → signature_invalid', async () => {
    const token = compact(issuer.header(), issuer.claims(), attacker);
    expect(await codeOf(token)).toBe('signature_invalid');
  });
  it('payload changed after signing (sub swapped) → signature_invalid', async () => {
    const [h, , s] = segments(issuer.mint());
    const forged = b64url(JSON.stringify(issuer.claims({ sub: 'usr_admin' })));
    expect(await codeOf(`${h}.${forged}.${s}`)).toBe('signature_invalid');
  });
  it('an extra segment → token_malformed', async () => {
    expect(await codeOf(`${issuer.mint()}.e30`)).toBe('token_malformed');
  });
  it('a five-segment JWE shape → token_malformed', async () => {
    expect(await codeOf('eyJhbGciOiJkaXIifQ..aaaa.bbbb.cccc')).toBe('token_malformed');
  });
  it.each([
    ['not JSON', b64url('{"alg":')],
    ['a JSON array', b64url('["ES256"]')],
    ['invalid UTF-8', b64url(Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]))],
    ['empty', ''],
  ])('header %s → token_malformed', async (_what, header) => {
    const [, p, s] = segments(issuer.mint());
    expect(await codeOf(`${header}.${p}.${s}`)).toBe('token_malformed');
  });
  it('a crit header → token_malformed', async () => {
    expect(await codeOf(issuer.mint({ header: { crit: ['exp'], exp: 1 } }))).toBe('token_malformed');
  });
  it('empty string and non-strings → token_malformed', async () => {
    expect(await codeOf('')).toBe('token_malformed');
    expect(await codeOf(42 as unknown as string)).toBe('token_malformed');
  });
});

describe('non-canonical base64url (SECURITY 26)', () => {
  const cases: Array<[string, (t: string) => string]> = [
    ['"=" padding on the signature', (t) => `${t}==`],
    [
      '"=" padding on the header',
      (t) => {
        const [h, p, s] = segments(t);
        return `${h}${'='.repeat((4 - (h.length % 4)) % 4 || 4)}.${p}.${s}`;
      },
    ],
    ['"+" for "-" in the signature', (t) => t.replace(/-(?=[^.]*$)/, '+')],
    ['"/" for "_" in the signature', (t) => t.replace(/_(?=[^.]*$)/, '/')],
    ['"+" for "-" or "/" for "_" anywhere', (t) => t.replaceAll('-', '+').replaceAll('_', '/')],
    [
      'a space inside the payload',
      (t) => {
        const [h, p, s] = segments(t);
        return `${h}.${p.slice(0, 10)} ${p.slice(10)}.${s}`;
      },
    ],
    [
      'a tab inside the signature',
      (t) => {
        const [h, p, s] = segments(t);
        return `${h}.${p}.${s.slice(0, 10)}\t${s.slice(10)}`;
      },
    ],
    [
      'non-zero unused bits in the last signature character',
      (t) => {
        const [h, p, s] = segments(t);
        return `${h}.${p}.${withDirtyTrailingBits(s)}`;
      },
    ],
  ];
  it.each(cases)('%s → token_malformed', async (_name, mutate) => {
    const token = tokenWithUrlSafeChars();
    const mutated = mutate(token);
    expect(mutated).not.toBe(token);
    // Lenient decoders read the mutated segments as the very same bytes; only canonical checks catch them.
    expect(await codeOf(mutated)).toBe('token_malformed');
  });
  it('a lenient decoder would have accepted the dirty-trailing-bits signature', () => {
    const s = segments(issuer.mint())[2];
    expect(Buffer.from(withDirtyTrailingBits(s), 'base64url')).toEqual(Buffer.from(s, 'base64url'));
  });
});

describe('iss, aud, typ (SECURITY 24)', () => {
  it.each([
    ['a trailing slash', () => `${issuer.url}/`],
    ['upper case', () => issuer.url.toUpperCase()],
    ['another port', () => issuer.url.replace(/:\d+$/, ':1')],
    ['missing', () => undefined],
    ['not a string', () => [issuer.url]],
  ])('iss with %s → iss_invalid', async (_name, iss) => {
    expect(await codeOf(issuer.mint({ claims: { iss: iss() } }))).toBe('iss_invalid');
  });
  it('a verifier configured with a trailing slash refuses the slash-less iss', async () => {
    const v = createVerifier({
      issuer: `${issuer.url}/`,
      audience: issuer.audience,
      jwksUri: issuer.jwksUri,
      now: () => issuer.now,
    });
    expect(await codeOf(issuer.mint(), v)).toBe('iss_invalid');
  });
  it.each([
    ['missing', undefined],
    ['foreign', 'https://other-api.test'],
    ['foreign in an array', ['https://other-api.test', 'https://third.test']],
    ['an empty array', []],
    ['a number', 42],
    ['differing by a trailing slash', 'https://api.test/'],
  ])('aud %s → aud_invalid', async (_name, aud) => {
    expect(await codeOf(issuer.mint({ claims: { aud } }))).toBe('aud_invalid');
  });
  it('aud as an array naming us among others is accepted', async () => {
    expect(await codeOf(issuer.mint({ claims: { aud: ['https://other.test', issuer.audience] } }))).toBe(
      'accepted',
    );
  });
  it.each([
    ['JWT', 'JWT'],
    ['missing', undefined],
    ['"at+jwt " with a space', 'at+jwt '],
    ['not a string', ['at+jwt']],
    ['"application/jwt"', 'application/jwt'],
  ])('typ %s → typ_invalid', async (_name, typ) => {
    expect(await codeOf(issuer.mint({ header: { typ } }))).toBe('typ_invalid');
  });
  it.each(['application/at+jwt', 'AT+JWT'])(
    'typ "%s" is accepted (RFC 9068 §4, RFC 7515 §4.1.9)',
    async (typ) => {
      expect(await codeOf(issuer.mint({ header: { typ } }))).toBe('accepted');
    },
  );
});

describe('time claims with the default 30 s leeway (SECURITY 25)', () => {
  const now = () => Math.floor(issuer.now / 1000);
  it('exp just outside the leeway → token_expired', async () => {
    expect(await codeOf(issuer.mint({ claims: { iat: now() - 900, exp: now() - 30 } }))).toBe(
      'token_expired',
    );
  });
  it('exp just inside the leeway is accepted', async () => {
    expect(await codeOf(issuer.mint({ claims: { iat: now() - 900, exp: now() - 29 } }))).toBe('accepted');
  });
  it('nbf in the future beyond the leeway → token_not_yet_valid', async () => {
    expect(await codeOf(issuer.mint({ claims: { nbf: now() + 31 } }))).toBe('token_not_yet_valid');
  });
  it('nbf in the future within the leeway is accepted', async () => {
    expect(await codeOf(issuer.mint({ claims: { nbf: now() + 29 } }))).toBe('accepted');
  });
  it('iat in the future beyond the leeway → token_not_yet_valid', async () => {
    expect(await codeOf(issuer.mint({ claims: { iat: now() + 60, exp: now() + 900 } }))).toBe(
      'token_not_yet_valid',
    );
  });
  it.each([
    ['exp missing', { exp: undefined }],
    ['exp a string', { exp: '2030-01-01' }],
    ['nbf a string', { nbf: 'soon' }],
    ['iat missing', { iat: undefined }],
    ['sub missing', { sub: undefined }],
    ['sub a number', { sub: 7 }],
    ['jti missing', { jti: undefined }],
    ['client_id missing', { client_id: undefined }],
    ['sid a number', { sid: 1 }],
    ['scope an array', { scope: ['read'] }],
  ])('%s → claim_invalid', async (_name, claims) => {
    expect(await codeOf(issuer.mint({ claims }))).toBe('claim_invalid');
  });
  it('a zero leeway refuses the token one second after exp', async () => {
    const v = createVerifier({
      issuer: issuer.url,
      audience: issuer.audience,
      clockTolerance: 0,
      now: () => issuer.now,
    });
    expect(await codeOf(issuer.mint({ claims: { exp: now() } }), v)).toBe('token_expired');
    expect(await codeOf(issuer.mint({ claims: { exp: now() + 1 } }), v)).toBe('accepted');
  });
});

describe('keys the token names itself (SECURITY 23: jwk, jku, x5u, x5c)', () => {
  it('unknown kid → kid_unknown', async () => {
    expect(await codeOf(compact(issuer.header({ kid: 'no-such-key' }), issuer.claims(), attacker))).toBe(
      'kid_unknown',
    );
  });
  it('missing kid → kid_unknown (no try-every-key fallback)', async () => {
    expect(await codeOf(issuer.mint({ header: { kid: undefined } }))).toBe('kid_unknown');
  });
  it('embedded jwk with the attacker kid → kid_unknown', async () => {
    const header = issuer.header({ kid: attacker.kid, jwk: attacker.publicJwk });
    expect(await codeOf(compact(header, issuer.claims(), attacker))).toBe('kid_unknown');
  });
  it('embedded jwk under our kid → signature_invalid (the embedded key is not used)', async () => {
    const header = issuer.header({ jwk: attacker.publicJwk });
    expect(await codeOf(compact(header, issuer.claims(), attacker))).toBe('signature_invalid');
  });
  it.each([
    ['jku', () => ({ jku: `${decoy.url}/jwks.json`, kid: attacker.kid })],
    ['jku under our kid', () => ({ jku: `${decoy.url}/jwks.json` })],
    ['x5u', () => ({ x5u: `${decoy.url}/cert.pem`, kid: attacker.kid })],
    ['x5c', () => ({ x5c: [b64url('not a certificate')], kid: attacker.kid })],
  ])('%s pointing elsewhere is refused and never fetched', async (_name, extra) => {
    const code = await codeOf(compact(issuer.header(extra()), issuer.claims(), attacker));
    expect(['kid_unknown', 'signature_invalid']).toContain(code);
    expect(decoy.requests).toEqual([]);
  });
  it('the issuer got only metadata and JWKS requests throughout', () => {
    const paths = new Set(issuer.requests.map((r) => r.split(' ')[1]));
    expect([...paths].sort()).toEqual(['/.well-known/jwks.json', '/.well-known/oauth-authorization-server']);
  });
});

describe('size (SECURITY 27)', () => {
  it('a 100 KB token → token_too_large, before any key fetch', async () => {
    const fresh = await startTestIssuer();
    try {
      const v = createVerifier({ issuer: fresh.url, audience: fresh.audience, now: () => fresh.now });
      const big = fresh.mint({ claims: { pad: 'x'.repeat(100 * 1024) } });
      expect(big.length).toBeGreaterThan(100 * 1024);
      expect(await codeOf(big, v)).toBe('token_too_large');
      expect(fresh.requests).toEqual([]);
    } finally {
      await fresh.close();
    }
  });
  it('maxTokenBytes is honoured exactly', async () => {
    const token = issuer.mint();
    const exact = createVerifier({
      issuer: issuer.url,
      audience: issuer.audience,
      maxTokenBytes: token.length,
      now: () => issuer.now,
    });
    const below = createVerifier({
      issuer: issuer.url,
      audience: issuer.audience,
      maxTokenBytes: token.length - 1,
      now: () => issuer.now,
    });
    expect(await codeOf(token, exact)).toBe('accepted');
    expect(await codeOf(token, below)).toBe('token_too_large');
  });
});

describe('EdDSA', () => {
  it('verifies an EdDSA token and pins its key to EdDSA', async () => {
    const ed = await generateTestKey('EdDSA');
    issuer.keys.push(ed);
    const v = createVerifier({ issuer: issuer.url, audience: issuer.audience, now: () => issuer.now });
    expect(await codeOf(issuer.mint({ key: ed }), v)).toBe('accepted');
    // The EdDSA key will not vouch for an ES256 signature made under its kid.
    const input = `${b64url(JSON.stringify(issuer.header({ alg: 'ES256', kid: ed.kid })))}.${b64url(JSON.stringify(issuer.claims()))}`;
    expect(await codeOf(`${input}.${b64url(signWith(issuer.keys[0]!, input))}`, v)).toBe('alg_not_allowed');
  });
});

describe('errors carry no token material', () => {
  it('messages never contain the token or its segments', async () => {
    const token = issuer.mint({ claims: { iss: 'https://evil.test/"\\<script>' } });
    const error = await verifier.verify(token).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(VerifyError);
    const text = `${(error as Error).message} ${String((error as Error).stack)}`;
    for (const part of segments(token)) expect(text).not.toContain(part);
    expect(text).not.toContain('evil.test');
  });
});
