// docs/security.md items 23–27 against Baton's OWN verifier (`/auth/me`, and the same
// check behind `/oauth/introspect`): the attack table of
// packages/verify/src/attacks.test.ts, aimed at the server. Every forged
// token below is refused with 401 and `WWW-Authenticate: Bearer
// error="invalid_token"` (and is inactive at introspection); the positive
// controls show the forging harness itself makes tokens Baton accepts, so
// each attack differs from an accepted token in one way only.
import {
  createHmac,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign,
} from 'node:crypto';
import { createServer as createHttpServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { LightMyRequestResponse } from 'fastify';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ISSUER, signUp, type TestApp, testApp } from '../../test/helpers.js';
import { MAX_ACCESS_TOKEN_LENGTH, toLowS } from '../core/access-token.js';
import { createClient } from '../core/clients.js';

const b64url = (input: Buffer | string) =>
  (typeof input === 'string' ? Buffer.from(input, 'utf8') : input).toString('base64url');

/** Every upper/lower-case spelling of `word`. */
function allCasings(word: string): string[] {
  return Array.from({ length: 2 ** word.length }, (_, mask) =>
    [...word].map((c, i) => (mask & (1 << i) ? c.toUpperCase() : c.toLowerCase())).join(''),
  );
}

/** A local server that only counts requests: a verifier that follows jku/x5u would hit it. */
async function startDecoy(): Promise<{ url: string; requests: string[]; close(): Promise<void> }> {
  const requests: string[] = [];
  const server: Server = createHttpServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

let t: TestApp;
let rsSecret: string;
let real: string;
let claims: Record<string, unknown>;
let kid: string;
let privateKey: KeyObject;
let publicJwk: Record<string, unknown>;
let decoy: Awaited<ReturnType<typeof startDecoy>>;
const attacker = generateKeyPairSync('ec', { namedCurve: 'P-256' });
/** Order of the P-256 group (SEC 2 §2.4.2). */
const P256_N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
const ATTACKER_KID = 'attacker-key';

beforeAll(async () => {
  t = await testApp({ limits: { loginFailuresPerAccount: null, requestsPerIpPerMinute: null } });
  rsSecret = (await createClient(t.store, { id: 'rs', type: 'confidential' }, t.clock())).secret!;
  real = (await signUp(t.app)).access_token;
  claims = JSON.parse(Buffer.from(real.split('.')[1]!, 'base64url').toString('utf8'));
  // The server's own signing key, read from the store as any instance would.
  const [key] = await t.store.listSigningKeys();
  kid = key!.kid;
  privateKey = createPrivateKey({ key: JSON.parse(key!.privateJwk), format: 'jwk' });
  publicJwk = JSON.parse(key!.publicJwk);
  decoy = await startDecoy();
});
afterAll(async () => {
  await decoy?.close();
  await t?.close();
});

const nowSec = () => Math.floor(t.clock() / 1000);

/** ES256 over `header.payload` as a JWS signer does it (raw r||s). */
function es256(input: string, key: KeyObject = privateKey): string {
  // Baton signs low-s (one valid signature per token); a forger with the real key would too.
  return b64url(toLowS(sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' })));
}

/**
 * A token with the real token's claims and header, changed by `header` and
 * `claim` overrides (`undefined` removes a member), signed with `key`.
 */
function mint(
  opts: { header?: Record<string, unknown>; claims?: Record<string, unknown>; key?: KeyObject } = {},
): string {
  const header = JSON.stringify({ alg: 'ES256', typ: 'at+jwt', kid, ...opts.header });
  const payload = JSON.stringify({ ...claims, ...opts.claims });
  const input = `${b64url(header)}.${b64url(payload)}`;
  return `${input}.${es256(input, opts.key)}`;
}

/** A token MACed with HMAC-SHA-`bits` under `secret` (the key-confusion attack). */
function hmac(secret: Buffer | string, alg = 'HS256'): string {
  const input = `${b64url(JSON.stringify({ alg, typ: 'at+jwt', kid }))}.${b64url(JSON.stringify(claims))}`;
  const hash = { HS256: 'sha256', HS384: 'sha384', HS512: 'sha512' }[alg.toUpperCase()] ?? 'sha256';
  return `${input}.${createHmac(hash, secret).update(input).digest('base64url')}`;
}

const me = (token: string): Promise<LightMyRequestResponse> =>
  t.app.inject({ url: '/auth/me', headers: { authorization: `Bearer ${token}` } });

const introspect = (token: string) =>
  t.app.inject({
    method: 'POST',
    url: '/oauth/introspect',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from(`rs:${rsSecret}`).toString('base64')}`,
    },
    payload: new URLSearchParams({ token }).toString(),
  });

/** The token is accepted by `/auth/me` and active at introspection. */
async function expectAccepted(token: string): Promise<void> {
  const res = await me(token);
  expect(res.statusCode, res.body).toBe(200);
  expect((await introspect(token)).json().active).toBe(true);
}

/** Refused as RFC 6750 §3.1 says, without echoing the token; inactive at introspection. */
async function expectRefused(token: string): Promise<void> {
  const res = await me(token);
  expect(res.statusCode).toBe(401);
  expect(res.headers['www-authenticate']).toMatch(/^Bearer realm="baton", error="invalid_token"/);
  expect(res.json().error).toBe('invalid_token');
  for (const part of token.split('.')) if (part.length > 8) expect(res.body).not.toContain(part);
  // Introspection runs the same verifier: a refused token is exactly inactive there too.
  if (token.length < 60_000) expect((await introspect(token)).body).toBe('{"active":false}');
}

describe('positive controls', () => {
  it('the real token is accepted', () => expectAccepted(real));
  it('a token minted here with the real key and claims is accepted', () => expectAccepted(mint()));
  it('typ application/at+jwt and AT+JWT are accepted (RFC 9068 §4, media types ignore case)', async () => {
    await expectAccepted(mint({ header: { typ: 'application/at+jwt' } }));
    await expectAccepted(mint({ header: { typ: 'AT+JWT' } }));
  });
  it('aud as an array that names us is accepted', () =>
    expectAccepted(mint({ claims: { aud: ['https://other.example', ISSUER] } })));
});

describe('23: alg none, key confusion, keys named by the token, unknown kid', () => {
  const casings = allCasings('none');
  it('covers all 16 spellings of none', () => expect(new Set(casings).size).toBe(16));
  it.each(casings)('alg "%s" with the real kid, with and without a signature', async (alg) => {
    const token = mint({ header: { alg } });
    const [h, p, s] = token.split('.') as [string, string, string];
    await expectRefused(`${h}.${p}.`);
    await expectRefused(`${h}.${p}.${s}`);
    const noKid = b64url(JSON.stringify({ alg, typ: 'at+jwt' }));
    await expectRefused(`${noKid}.${p}.`);
  });

  const publicKey = () => createPublicKey({ key: publicJwk as never, format: 'jwk' });
  it.each([
    ['PEM', () => publicKey().export({ type: 'spki', format: 'pem' })],
    ['DER', () => publicKey().export({ type: 'spki', format: 'der' })],
    ['JWK', () => JSON.stringify(publicJwk)],
  ] as const)('HS256 keyed with the public key as %s', async (_form, secret) => {
    await expectRefused(hmac(secret()));
  });
  it.each(['HS256', 'hs256', 'HS384', 'HS512'])('%s with a guessable secret', async (alg) => {
    await expectRefused(hmac('secret', alg));
  });
  it('ES256 signature under an EdDSA header (an algorithm the key is not for)', async () => {
    await expectRefused(mint({ header: { alg: 'EdDSA' } }));
  });

  it('an embedded jwk with the attacker’s key, under the attacker’s kid or ours', async () => {
    const jwk = attacker.publicKey.export({ format: 'jwk' });
    await expectRefused(mint({ header: { kid: ATTACKER_KID, jwk }, key: attacker.privateKey }));
    await expectRefused(mint({ header: { jwk }, key: attacker.privateKey }));
  });
  it('jku, x5u and x5c pointing elsewhere are refused and never fetched', async () => {
    const headers = [
      { jku: `${decoy.url}/jwks.json`, kid: ATTACKER_KID },
      { jku: `${decoy.url}/jwks.json` },
      { x5u: `${decoy.url}/cert.pem`, kid: ATTACKER_KID },
      { x5u: `${decoy.url}/cert.pem` },
      { x5c: [b64url('not a certificate')], kid: ATTACKER_KID },
    ];
    for (const header of headers) {
      await expectRefused(mint({ header, key: attacker.privateKey }));
      // Even signed by the real key: a token that names a key source is not an access token of ours.
      await expectRefused(mint({ header }));
    }
    expect(decoy.requests).toEqual([]);
  });
  it('an unknown kid is refused although the real key signed it: no try-every-key fallback', async () => {
    await expectRefused(mint({ header: { kid: 'no-such-key' } }));
    await expectRefused(mint({ header: { kid: undefined } }));
    await expectRefused(mint({ header: { kid: 42 } }));
    await expectRefused(mint({ header: { kid: '' } }));
  });
  it('a signature by another key under our kid', () => expectRefused(mint({ key: attacker.privateKey })));
});

describe('24: iss exactly, aud ours, typ at+jwt', () => {
  it.each([
    ['a trailing slash', `${ISSUER}/`],
    ['upper case', ISSUER.toUpperCase()],
    ['another port', ISSUER.replace(':3000', ':3001')],
    ['https instead of http', ISSUER.replace('http:', 'https:')],
    ['missing', undefined],
    ['an array', [ISSUER]],
  ])('iss with %s', async (_name, iss) => {
    await expectRefused(mint({ claims: { iss } }));
  });
  it.each([
    ['missing', undefined],
    ['foreign', 'https://other-api.example'],
    ['foreign in an array', ['https://other-api.example']],
    ['an empty array', []],
    ['a number', 42],
    ['ours with a trailing slash', `${ISSUER}/`],
  ])('aud %s', async (_name, aud) => {
    await expectRefused(mint({ claims: { aud } }));
  });
  it.each([
    ['JWT', 'JWT'],
    ['missing', undefined],
    ['application/jwt', 'application/jwt'],
    ['"at+jwt " with a space', 'at+jwt '],
    ['an array', ['at+jwt']],
  ])('typ %s', async (_name, typ) => {
    await expectRefused(mint({ header: { typ } }));
  });
});

describe('25: exp with Baton’s 5 s leeway, nbf, exp required and numeric', () => {
  it('the test clock sits on a whole second, so the edges below are exact', () => {
    expect(t.clock() % 1000).toBe(0);
  });
  it('exp 4 s ago is accepted (inside the leeway)', () =>
    expectAccepted(mint({ claims: { exp: nowSec() - 4 } })));
  it('exp exactly the leeway ago is refused (RFC 7519 §4.1.4: now must be before exp)', () =>
    expectRefused(mint({ claims: { exp: nowSec() - 5 } })));
  it('exp 6 s ago is refused', () => expectRefused(mint({ claims: { exp: nowSec() - 6 } })));
  it('nbf 5 s ahead is accepted, 6 s ahead refused', async () => {
    await expectAccepted(mint({ claims: { nbf: nowSec() + 5 } }));
    await expectRefused(mint({ claims: { nbf: nowSec() + 6 } }));
  });
  it.each([
    ['exp missing', { exp: undefined }],
    ['exp a date string', { exp: '2099-01-01' }],
    ['exp a numeric string', { exp: '4102444800' }],
    ['exp null', { exp: null }],
    ['exp true', { exp: true }],
    ['exp an object', { exp: { value: 4102444800 } }],
    ['nbf a string', { nbf: 'soon' }],
  ])('%s', async (_name, override) => {
    await expectRefused(mint({ claims: override }));
  });
});

describe('26: changed bytes, stripped signature, extra segments, non-canonical base64url', () => {
  it('every single changed character anywhere in the token is refused', async () => {
    const token = mint();
    for (let i = 0; i < token.length; i++) {
      if (token[i] === '.') continue;
      const swapped = token[i] === 'A' ? 'B' : 'A';
      await expectRefused(token.slice(0, i) + swapped + token.slice(i + 1));
    }
  });
  it('stripped, removed or emptied signature', async () => {
    const [h, p] = mint().split('.') as [string, string, string];
    await expectRefused(`${h}.${p}.`);
    await expectRefused(`${h}.${p}`);
    await expectRefused(`${h}..`);
  });
  it('an extra segment, empty or not', async () => {
    const token = mint();
    await expectRefused(`${token}.`);
    await expectRefused(`${token}.e30`);
    await expectRefused(`.${token}`);
  });
  it('the payload of another user under the original signature', async () => {
    const [h, , s] = mint().split('.') as [string, string, string];
    await expectRefused(`${h}.${b64url(JSON.stringify({ ...claims, sub: 'usr_admin' }))}.${s}`);
  });

  /** A token whose signature holds both "-" and "_", so "+" and "/" spellings exist. */
  function urlSafeToken(): string {
    for (;;) {
      // ECDSA signatures are randomised: every mint gives another signature.
      const token = mint();
      const s = token.split('.')[2]!;
      if (s.includes('-') && s.includes('_')) return token;
    }
  }
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  it('the same signature rewritten as (r, n−s) is accepted: valid ECDSA (RFC 7518 §3.4 has no low-s rule)', async () => {
    const token = mint();
    const [h, p, s] = token.split('.') as [string, string, string];
    const sig = Buffer.from(s, 'base64url');
    const high = P256_N - BigInt(`0x${sig.subarray(32).toString('hex')}`);
    Buffer.from(high.toString(16).padStart(64, '0'), 'hex').copy(sig, 32);
    const twin = `${h}.${p}.${sig.toString('base64url')}`;
    expect(twin).not.toBe(token);
    await expectAccepted(token);
    await expectAccepted(twin);
  });
  const cases: [string, (token: string) => string][] = [
    ['"=" padding after the signature', (x) => `${x}=`],
    [
      '"=" padding after the header',
      (x) => {
        const [h, p, s] = x.split('.') as [string, string, string];
        return `${h}=.${p}.${s}`;
      },
    ],
    ['"+" for "-" in the signature', (x) => x.replace(/-(?=[^.]*$)/, '+')],
    ['"/" for "_" in the signature', (x) => x.replace(/_(?=[^.]*$)/, '/')],
    [
      'a space inside the payload',
      (x) => {
        const [h, p, s] = x.split('.') as [string, string, string];
        return `${h}.${p.slice(0, 10)} ${p.slice(10)}.${s}`;
      },
    ],
    [
      'non-zero unused bits in the last signature character',
      (x) => {
        const s = x.split('.')[2]!;
        return x.slice(0, -1) + alphabet[alphabet.indexOf(s.at(-1)!) | 1];
      },
    ],
  ];
  it.each(cases)('%s', async (_name, mutate) => {
    const token = urlSafeToken();
    await expectAccepted(token);
    const mutated = mutate(token);
    expect(mutated).not.toBe(token);
    await expectRefused(mutated);
  });
  it('Node’s lenient decoder reads the dirty-trailing-bits signature as the same bytes', () => {
    const s = mint().split('.')[2]!;
    const dirty = s.slice(0, -1) + alphabet[alphabet.indexOf(s.at(-1)!) | 1];
    expect(Buffer.from(dirty, 'base64url').equals(Buffer.from(s, 'base64url'))).toBe(true);
  });
});

describe('interoperability: ES256 tokens signed by jose, not by Baton', () => {
  it('200 tokens signed by jose with the server key all verify, high-s or low-s', async () => {
    // jose (like WebCrypto and cloud KMS signers) does not normalise s: about half of its
    // signatures are high-s, which RFC 7518 §3.4 allows, so a verifier must accept them.
    let highS = 0;
    for (let i = 0; i < 200; i++) {
      const token = await new SignJWT({ ...claims, jti: `jose-${i}` })
        .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid })
        .sign(privateKey);
      const sig = Buffer.from(token.split('.')[2]!, 'base64url');
      if (BigInt(`0x${sig.subarray(32).toString('hex')}`) > P256_N >> 1n) highS++;
      await expectAccepted(token);
    }
    // 200 draws without a high-s signature (odds 2^-200) would mean this test proves nothing.
    expect(highS).toBeGreaterThan(0);
  });
});

describe('27: oversized token or header', () => {
  it('a correctly signed token longer than the limit is refused before it is verified', async () => {
    const pad = (n: number) => mint({ claims: { pad: 'x'.repeat(n) } });
    // base64url turns 3 bytes into 4 characters: leave a few characters of slack for the signature.
    const room = MAX_ACCESS_TOKEN_LENGTH - mint({ claims: { pad: '' } }).length - 8;
    const fits = pad(Math.floor((room * 3) / 4));
    expect(fits.length).toBeLessThanOrEqual(MAX_ACCESS_TOKEN_LENGTH);
    await expectAccepted(fits);
    const big = pad(MAX_ACCESS_TOKEN_LENGTH);
    expect(big.length).toBeGreaterThan(MAX_ACCESS_TOKEN_LENGTH);
    await expectRefused(big);
  });
  it('a correctly signed token with an oversized JOSE header is refused', async () => {
    await expectRefused(mint({ header: { pad: 'x'.repeat(MAX_ACCESS_TOKEN_LENGTH) } }));
  });
  it('a 1 MB bearer value is a 401, not a 413, 431 or 5xx (in-process; the socket limit is in e2e)', async () => {
    await expectRefused(`${mint()}${'A'.repeat(1024 * 1024)}`);
  });
});
