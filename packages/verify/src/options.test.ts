import { describe, expect, it } from 'vitest';
import { createVerifier, type VerifierOptions } from './index.js';

const base = { issuer: 'https://auth.example.com', audience: 'https://api.example.com' };

describe('createVerifier options: misuse throws TypeError at construction', () => {
  it.each<[string, unknown]>([
    ['no options', undefined],
    ['options not an object', 'https://auth.example.com'],
    ['issuer missing', { audience: base.audience }],
    ['issuer not a URL', { ...base, issuer: 'auth.example.com' }],
    ['issuer over plain http to a remote host', { ...base, issuer: 'http://auth.example.com' }],
    ['issuer with a query', { ...base, issuer: 'https://auth.example.com/?tenant=a' }],
    ['issuer with a fragment', { ...base, issuer: 'https://auth.example.com/#x' }],
    ['issuer with an ftp scheme', { ...base, issuer: 'ftp://auth.example.com' }],
    ['audience missing', { issuer: base.issuer }],
    ['audience empty', { ...base, audience: '' }],
    ['audience an empty array', { ...base, audience: [] }],
    ['audience with a non-string', { ...base, audience: ['a', 1] }],
    ['jwksUri over plain http to a remote host', { ...base, jwksUri: 'http://keys.example.com/jwks.json' }],
    ['algorithms with HS256', { ...base, algorithms: ['ES256', 'HS256'] }],
    ['algorithms with none', { ...base, algorithms: ['none'] }],
    ['algorithms with a typo', { ...base, algorithms: ['ES265'] }],
    ['algorithms empty', { ...base, algorithms: [] }],
    ['algorithms a string', { ...base, algorithms: 'ES256' }],
    ['clockTolerance negative', { ...base, clockTolerance: -1 }],
    ['clockTolerance over 300 s', { ...base, clockTolerance: 301 }],
    ['clockTolerance a string', { ...base, clockTolerance: '30s' }],
    ['clockTolerance NaN', { ...base, clockTolerance: Number.NaN }],
    ['maxTokenBytes too small', { ...base, maxTokenBytes: 10 }],
    ['maxTokenBytes fractional', { ...base, maxTokenBytes: 1000.5 }],
    ['maxTokenBytes too large', { ...base, maxTokenBytes: 1_000_000 }],
    ['jwksCooldown zero', { ...base, jwksCooldown: 0 }],
    ['jwksCacheMaxAge zero', { ...base, jwksCacheMaxAge: 0 }],
    ['httpTimeout zero', { ...base, httpTimeout: 0 }],
    ['checkSession not a boolean', { ...base, checkSession: 'yes' }],
    ['checkSession without introspection', { ...base, checkSession: true }],
    ['introspection without a secret', { ...base, introspection: { clientId: 'api' } }],
    [
      'introspection with an unknown key',
      { ...base, introspection: { clientId: 'a', clientSecret: 'b', ttl: 5 } },
    ],
    [
      'introspection endpoint over remote http',
      { ...base, introspection: { clientId: 'a', clientSecret: 'b', endpoint: 'http://auth.example.com/i' } },
    ],
    [
      'introspection cacheTtl negative',
      { ...base, introspection: { clientId: 'a', clientSecret: 'b', cacheTtl: -1 } },
    ],
    ['now not a function', { ...base, now: 123 }],
    ['allowInsecureHttp not a boolean', { ...base, allowInsecureHttp: 'true' }],
    ['an unknown option (typo of audience)', { ...base, audiance: 'x' }],
  ])('%s', (_name, options) => {
    expect(() => createVerifier(options as VerifierOptions)).toThrow(TypeError);
  });
});

describe('createVerifier options: accepted', () => {
  it.each<[string, VerifierOptions]>([
    ['the minimal form', base],
    ['http to localhost', { ...base, issuer: 'http://localhost:3000' }],
    ['http to 127.0.0.1', { ...base, issuer: 'http://127.0.0.1:3000' }],
    ['http to [::1]', { ...base, issuer: 'http://[::1]:3000' }],
    [
      'http to a remote host with allowInsecureHttp',
      { ...base, issuer: 'http://baton:3000', allowInsecureHttp: true },
    ],
    ['an issuer with a path', { ...base, issuer: 'https://auth.example.com/tenants/a' }],
    ['several audiences', { ...base, audience: ['https://a.example', 'https://b.example'] }],
    [
      'every option',
      {
        ...base,
        jwksUri: 'https://auth.example.com/keys',
        algorithms: ['ES256', 'EdDSA', 'PS256'],
        clockTolerance: 0,
        maxTokenBytes: 4096,
        jwksCacheMaxAge: 60,
        jwksCooldown: 10,
        httpTimeout: 2,
        checkSession: true,
        introspection: {
          clientId: 'api',
          clientSecret: 's3cret',
          endpoint: 'https://auth.example.com/i',
          cacheTtl: 0,
        },
        allowInsecureHttp: false,
        now: () => 0,
      },
    ],
  ])('%s', (_name, options) => {
    const verifier = createVerifier(options);
    expect(verifier.issuer).toBe(options.issuer);
    expect(Object.isFrozen(verifier)).toBe(true);
  });

  it('does no I/O at construction (an unreachable issuer is fine until verify)', () => {
    expect(() => createVerifier({ ...base, issuer: 'https://unreachable.invalid' })).not.toThrow();
  });

  it('verify(token, { checkSession: true }) without introspection configured is a TypeError', async () => {
    await expect(createVerifier(base).verify('x.y.z', { checkSession: true })).rejects.toThrow(TypeError);
  });
});
