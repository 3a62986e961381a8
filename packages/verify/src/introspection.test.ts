// checkSession against a real local RFC 7662 endpoint: credentials, caching, fail-closed.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  createVerifier,
  type IntrospectionOptions,
  type Verifier,
  type VerifierOptions,
  VerifyError,
} from './index.js';
import { startTestIssuer, type TestIssuer } from './test-support/issuer.js';

const INTROSPECT = '/oauth/introspect';
let issuer: TestIssuer;
let revoked: Set<string>;
let seenAuth: Array<string | undefined>;
let seenTokens: string[];

beforeEach(async () => {
  issuer = await startTestIssuer();
  revoked = new Set();
  seenAuth = [];
  seenTokens = [];
  const expected = `Basic ${Buffer.from('resource-api:s3cret').toString('base64')}`;
  issuer.introspect = (token, authorization) => {
    seenAuth.push(authorization);
    seenTokens.push(token);
    // RFC 7662 §2.1: the caller must authenticate.
    if (authorization !== expected) return { status: 401, body: { error: 'invalid_client' } };
    return { status: 200, body: revoked.has(token) ? { active: false } : { active: true, sub: 'usr_1' } };
  };
});
afterEach(async () => {
  await issuer.close();
});

function verifierFor(
  extra: Partial<VerifierOptions> = {},
  introspection: Partial<IntrospectionOptions> = {},
): Verifier {
  return createVerifier({
    issuer: issuer.url,
    audience: issuer.audience,
    now: () => issuer.now,
    checkSession: true,
    introspection: { clientId: 'resource-api', clientSecret: 's3cret', ...introspection },
    ...extra,
  });
}
const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => 'accepted',
    (e: unknown) => (e instanceof VerifyError ? e.code : Promise.reject(e)),
  );

describe('checkSession (RFC 7662)', () => {
  it('asks the metadata introspection_endpoint with client_secret_basic and the token', async () => {
    const token = issuer.mint();
    expect(await codeOf(verifierFor().verify(token))).toBe('accepted');
    expect(issuer.count(INTROSPECT)).toBe(1);
    expect(seenTokens).toEqual([token]);
    expect(seenAuth[0]).toBe(`Basic ${Buffer.from('resource-api:s3cret').toString('base64')}`);
  });

  it('a revoked session → token_inactive, a 401 token error', async () => {
    const token = issuer.mint();
    revoked.add(token);
    const error = await verifierFor()
      .verify(token)
      .catch((e: unknown) => e);
    expect((error as VerifyError).code).toBe('token_inactive');
    expect((error as VerifyError).isTokenError).toBe(true);
  });

  it('revocation bites after the active answer’s cache TTL, not at exp', async () => {
    const v = verifierFor({}, { cacheTtl: 10 });
    const token = issuer.mint();
    expect(await codeOf(v.verify(token))).toBe('accepted');
    revoked.add(token);
    issuer.now += 9_000;
    expect(await codeOf(v.verify(token))).toBe('accepted');
    expect(issuer.count(INTROSPECT)).toBe(1);
    issuer.now += 1_000;
    expect(await codeOf(v.verify(token))).toBe('token_inactive');
    expect(issuer.count(INTROSPECT)).toBe(2);
  });

  it('cacheTtl 0 asks on every call', async () => {
    const v = verifierFor({}, { cacheTtl: 0 });
    const token = issuer.mint();
    await v.verify(token);
    await v.verify(token);
    expect(issuer.count(INTROSPECT)).toBe(2);
  });

  it('an inactive answer is remembered until the token expires', async () => {
    const v = verifierFor({}, { cacheTtl: 10 });
    const token = issuer.mint();
    revoked.add(token);
    expect(await codeOf(v.verify(token))).toBe('token_inactive');
    issuer.now += 600_000;
    expect(await codeOf(v.verify(token))).toBe('token_inactive');
    expect(issuer.count(INTROSPECT)).toBe(1);
  });

  it('concurrent checks of one token share one introspection request', async () => {
    const v = verifierFor();
    const token = issuer.mint();
    const codes = await Promise.all(Array.from({ length: 10 }, () => codeOf(v.verify(token))));
    expect(new Set(codes)).toEqual(new Set(['accepted']));
    expect(issuer.count(INTROSPECT)).toBe(1);
  });

  it('each token is introspected separately', async () => {
    const v = verifierFor();
    const a = issuer.mint();
    const b = issuer.mint();
    revoked.add(b);
    expect(await codeOf(v.verify(a))).toBe('accepted');
    expect(await codeOf(v.verify(b))).toBe('token_inactive');
  });

  it('fails closed: wrong client credentials → introspection_unavailable (not a token error)', async () => {
    const error = await verifierFor({}, { clientSecret: 'wrong' })
      .verify(issuer.mint())
      .catch((e: unknown) => e);
    expect((error as VerifyError).code).toBe('introspection_unavailable');
    expect((error as VerifyError).isTokenError).toBe(false);
  });

  it.each([
    ['a 500', { status: 500, body: { error: 'server_error' } }],
    ['no boolean active', { status: 200, body: { active: 'yes' } }],
    ['a JSON array', { status: 200, body: [true] }],
  ])('fails closed on %s → introspection_unavailable', async (_name, answer) => {
    issuer.introspect = () => answer;
    expect(await codeOf(verifierFor().verify(issuer.mint()))).toBe('introspection_unavailable');
  });

  it('the introspection is never consulted for a token that fails offline checks', async () => {
    expect(await codeOf(verifierFor().verify(issuer.mint({ claims: { aud: 'https://other.test' } })))).toBe(
      'aud_invalid',
    );
    expect(issuer.count(INTROSPECT)).toBe(0);
  });

  it('uses a configured endpoint, and form-encodes credentials before base64 (RFC 6749 §2.3.1)', async () => {
    issuer.introspect = (_token, authorization) => {
      seenAuth.push(authorization);
      return { status: 200, body: { active: true } };
    };
    const v = verifierFor(
      { jwksUri: issuer.jwksUri },
      { clientId: 'api:one', clientSecret: "p@ss word!'", endpoint: `${issuer.url}${INTROSPECT}` },
    );
    expect(await codeOf(v.verify(issuer.mint()))).toBe('accepted');
    expect(issuer.count('/.well-known/oauth-authorization-server')).toBe(0);
    expect(seenAuth[0]).toBe(`Basic ${Buffer.from('api%3Aone:p%40ss+word%21%27').toString('base64')}`);
  });

  it('falls back to <issuer>/oauth/introspect when the issuer publishes no metadata', async () => {
    issuer.metadata = 'missing';
    expect(await codeOf(verifierFor().verify(issuer.mint()))).toBe('accepted');
    expect(issuer.count(INTROSPECT)).toBe(1);
  });

  it('per call: verify(token, { checkSession }) overrides the verifier default', async () => {
    const v = verifierFor({ checkSession: false });
    const token = issuer.mint();
    revoked.add(token);
    expect(await codeOf(v.verify(token))).toBe('accepted');
    expect(issuer.count(INTROSPECT)).toBe(0);
    expect(await codeOf(v.verify(token, { checkSession: true }))).toBe('token_inactive');
    expect(await codeOf(verifierFor().verify(token, { checkSession: false }))).toBe('accepted');
  });
});
