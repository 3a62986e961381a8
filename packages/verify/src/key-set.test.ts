// JWKS discovery, caching and the unknown-kid cooldown, counted at a real local issuer.
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createVerifier, type Verifier, type VerifierOptions, VerifyError } from './index.js';
import {
  compact,
  generateTestKey,
  startLocalServer,
  startTestIssuer,
  type TestIssuer,
} from './test-support/issuer.js';

const JWKS = '/.well-known/jwks.json';
const METADATA = '/.well-known/oauth-authorization-server';

let issuer: TestIssuer;
beforeEach(async () => {
  issuer = await startTestIssuer();
});
afterEach(async () => {
  await issuer.close();
});

function verifierFor(extra: Partial<VerifierOptions> = {}): Verifier {
  return createVerifier({ issuer: issuer.url, audience: issuer.audience, now: () => issuer.now, ...extra });
}
const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => 'accepted',
    (e: unknown) => (e instanceof VerifyError ? e.code : Promise.reject(e)),
  );
/** A token signed by a key the issuer does not publish, under a fresh random kid. */
async function randomKidToken(): Promise<string> {
  const key = await generateTestKey('ES256', `flood-${randomUUID()}`);
  return compact(issuer.header({}, key), issuer.claims(), key);
}

describe('discovery', () => {
  it('finds the JWKS through RFC 8414 metadata, then serves from cache', async () => {
    const v = verifierFor();
    await v.verify(issuer.mint());
    await v.verify(issuer.mint());
    await v.verify(issuer.mint());
    expect(issuer.requests).toEqual([`GET ${METADATA}`, `GET ${JWKS}`]);
  });

  it('uses jwksUri without asking for metadata', async () => {
    const v = verifierFor({ jwksUri: issuer.jwksUri });
    await v.verify(issuer.mint());
    expect(issuer.requests).toEqual([`GET ${JWKS}`]);
  });

  it('falls back to <issuer>/.well-known/jwks.json when the issuer has no metadata (404)', async () => {
    issuer.metadata = 'missing';
    await verifierFor().verify(issuer.mint());
    expect(issuer.requests).toEqual([`GET ${METADATA}`, `GET ${JWKS}`]);
  });

  it('refuses metadata naming another issuer (RFC 8414 §3.3) and fetches no keys', async () => {
    issuer.metadata = 'wrong-issuer';
    expect(await codeOf(verifierFor().verify(issuer.mint()))).toBe('jwks_unavailable');
    expect(issuer.count(JWKS)).toBe(0);
  });

  it('refuses a metadata jwks_uri over plain http to a remote host', async () => {
    issuer.metadata = 'insecure-jwks';
    expect(await codeOf(verifierFor().verify(issuer.mint()))).toBe('jwks_unavailable');
    expect(issuer.count(JWKS)).toBe(0);
  });

  it('puts the well-known segment before the issuer path (RFC 8414 §3.1)', async () => {
    const seen: string[] = [];
    const server = await startLocalServer((req, res) => {
      seen.push(req.url ?? '');
      res.writeHead(404).end();
    });
    try {
      const v = createVerifier({ issuer: `${server.url}/tenants/a`, audience: 'x', now: () => issuer.now });
      await codeOf(v.verify(issuer.mint()));
      expect(seen[0]).toBe('/.well-known/oauth-authorization-server/tenants/a');
      // 404: Baton's documented JWKS path under the issuer.
      expect(seen[1]).toBe('/tenants/a/.well-known/jwks.json');
    } finally {
      await server.close();
    }
  });
});

describe('unknown kid: re-fetch with a cooldown', () => {
  it('a flood of unknown kids within the cooldown costs no JWKS requests', async () => {
    const v = verifierFor({ jwksCooldown: 30 });
    await v.verify(issuer.mint());
    expect(issuer.count(JWKS)).toBe(1);
    const tokens = await Promise.all(Array.from({ length: 100 }, randomKidToken));
    const codes = await Promise.all(tokens.map((t) => codeOf(v.verify(t))));
    expect(new Set(codes)).toEqual(new Set(['kid_unknown']));
    expect(issuer.count(JWKS)).toBe(1);
  });

  it('after the cooldown, a flood of unknown kids costs exactly one request', async () => {
    const v = verifierFor({ jwksCooldown: 30 });
    await v.verify(issuer.mint());
    issuer.now += 30_000;
    const tokens = await Promise.all(Array.from({ length: 50 }, randomKidToken));
    const codes = await Promise.all(tokens.map((t) => codeOf(v.verify(t))));
    expect(new Set(codes)).toEqual(new Set(['kid_unknown']));
    expect(issuer.count(JWKS)).toBe(2);
    // And sequentially, still within the new cooldown: none more.
    for (const t of tokens.slice(0, 10)) await codeOf(v.verify(t));
    expect(issuer.count(JWKS)).toBe(2);
  });

  it('picks up a rotated-in key once the cooldown has passed', async () => {
    const v = verifierFor({ jwksCooldown: 30 });
    await v.verify(issuer.mint());
    const next = await generateTestKey('ES256');
    issuer.keys.push(next);
    issuer.now += 10_000;
    expect(await codeOf(v.verify(issuer.mint({ key: next })))).toBe('kid_unknown');
    issuer.now += 20_000;
    expect(await codeOf(v.verify(issuer.mint({ key: next })))).toBe('accepted');
    expect(issuer.count(JWKS)).toBe(2);
  });

  it('concurrent first verifications share one JWKS request', async () => {
    const v = verifierFor();
    const codes = await Promise.all(Array.from({ length: 20 }, () => codeOf(v.verify(issuer.mint()))));
    expect(new Set(codes)).toEqual(new Set(['accepted']));
    expect(issuer.count(JWKS)).toBe(1);
    expect(issuer.count(METADATA)).toBe(1);
  });
});

describe('cache age and failures', () => {
  it('re-fetches after jwksCacheMaxAge and then drops a removed key', async () => {
    const v = verifierFor({ jwksCacheMaxAge: 300 });
    const old = issuer.keys[0]!;
    await v.verify(issuer.mint());
    const next = await generateTestKey('ES256');
    issuer.keys = [next];
    issuer.now += 299_000;
    expect(await codeOf(v.verify(issuer.mint({ key: old })))).toBe('accepted');
    expect(issuer.count(JWKS)).toBe(1);
    issuer.now += 1_000;
    expect(await codeOf(v.verify(issuer.mint({ key: old })))).toBe('kid_unknown');
    expect(issuer.count(JWKS)).toBe(2);
    expect(await codeOf(v.verify(issuer.mint({ key: next })))).toBe('accepted');
  });

  it('keeps the last good keys when a re-fetch fails', async () => {
    const v = verifierFor({ jwksCacheMaxAge: 60 });
    await v.verify(issuer.mint());
    issuer.jwks = 'error';
    issuer.now += 61_000;
    expect(await codeOf(v.verify(issuer.mint()))).toBe('accepted');
    expect(issuer.count(JWKS)).toBe(2);
  });

  it('no keys and a failing JWKS → jwks_unavailable, retried only after the cooldown', async () => {
    issuer.jwks = 'error';
    const v = verifierFor({ jwksUri: issuer.jwksUri, jwksCooldown: 30 });
    expect(await codeOf(v.verify(issuer.mint()))).toBe('jwks_unavailable');
    expect(await codeOf(v.verify(issuer.mint()))).toBe('jwks_unavailable');
    expect(issuer.count(JWKS)).toBe(1);
    issuer.jwks = 'ok';
    issuer.now += 30_000;
    expect(await codeOf(v.verify(issuer.mint()))).toBe('accepted');
    expect(issuer.count(JWKS)).toBe(2);
  });

  it('an unreachable issuer → jwks_unavailable, which is not a token error', async () => {
    const gone = await startLocalServer(() => {});
    await gone.close();
    const v = createVerifier({ issuer: gone.url, audience: 'x', httpTimeout: 2 });
    const error = await v.verify(issuer.mint()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(VerifyError);
    expect((error as VerifyError).code).toBe('jwks_unavailable');
    expect((error as VerifyError).isTokenError).toBe(false);
  });

  it.each(['huge', 'redirect'] as const)('a %s JWKS response → jwks_unavailable', async (mode) => {
    issuer.jwks = mode;
    const v = verifierFor({ jwksUri: issuer.jwksUri });
    expect(await codeOf(v.verify(issuer.mint()))).toBe('jwks_unavailable');
  });
});

describe('JWKS hygiene', () => {
  it('uses only the public members of a key that also carries a private "d"', async () => {
    const key = issuer.keys[0]!;
    const exported = key.privateKey.export({ format: 'jwk' });
    expect(typeof exported.d).toBe('string');
    issuer.keys = [{ ...key, publicJwk: { ...key.publicJwk, d: exported.d } }];
    expect(await codeOf(verifierFor().verify(issuer.mint()))).toBe('accepted');
  });

  it.each<[string, Record<string, unknown>]>([
    ['use "enc"', { use: 'enc' }],
    ['key_ops without verify', { key_ops: ['encrypt'] }],
    ['an alg outside `algorithms`', { alg: 'ES384' }],
    ['an alg that does not fit the curve', { alg: 'EdDSA' }],
  ])('skips a key with %s', async (_name, change) => {
    const key = issuer.keys[0]!;
    issuer.keys = [{ ...key, publicJwk: { ...key.publicJwk, ...change } }];
    expect(await codeOf(verifierFor().verify(issuer.mint()))).toBe('kid_unknown');
  });

  it('infers ES256 for a P-256 key without alg', async () => {
    const key = issuer.keys[0]!;
    const { alg: _alg, ...rest } = key.publicJwk;
    issuer.keys = [{ ...key, publicJwk: rest }];
    expect(await codeOf(verifierFor().verify(issuer.mint()))).toBe('accepted');
  });

  it('refuses a kid published twice (no guessing between keys)', async () => {
    const key = issuer.keys[0]!;
    const twin = await generateTestKey('ES256', key.kid);
    issuer.keys = [key, twin];
    expect(await codeOf(verifierFor().verify(issuer.mint({ key })))).toBe('kid_unknown');
  });

  it('ignores an "oct" key, so no HMAC secret can be planted through the JWKS', async () => {
    const key = issuer.keys[0]!;
    issuer.keys = [
      key,
      { ...key, kid: 'oct', publicJwk: { kty: 'oct', k: 'c2VjcmV0', kid: 'oct', alg: 'ES256' } },
    ];
    expect(await codeOf(verifierFor().verify(issuer.mint({ header: { kid: 'oct' } })))).toBe('kid_unknown');
  });
});
