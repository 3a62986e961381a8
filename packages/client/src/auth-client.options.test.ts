import { describe, expect, it } from 'vitest';
import { type AuthClientOptions, createAuthClient } from './auth-client.js';

const base = { baseUrl: 'https://auth.example.com', mode: 'token' } as const;

describe('createAuthClient options', () => {
  const bad: [string, unknown][] = [
    ['no options', undefined],
    ['missing mode', { baseUrl: base.baseUrl }],
    ['unknown mode', { ...base, mode: 'session' }],
    ['relative baseUrl', { ...base, baseUrl: '/auth' }],
    ['non-http baseUrl', { ...base, baseUrl: 'ftp://x.test' }],
    ['baseUrl with a query', { ...base, baseUrl: 'https://x.test/?a=1' }],
    ['unknown key (a typo)', { ...base, storgae: 'memory' }],
    ['fetch not a function', { ...base, fetch: 'fetch' }],
    ['now not a function', { ...base, now: 5 }],
    ['empty clientId', { ...base, clientId: '' }],
    ['negative margin', { ...base, refreshMarginMs: -1 }],
    ['zero timeout', { ...base, timeoutMs: 0 }],
    ['zero refresh timeout', { ...base, refreshTimeoutMs: 0 }],
    ['refresh timeout not a number', { ...base, refreshTimeoutMs: '5s' }],
    ['negative retry budget', { ...base, refreshRetryBudgetMs: -1 }],
    ['infinite retry budget', { ...base, refreshRetryBudgetMs: Infinity }],
    ['zero peer refresh timeout', { ...base, peerRefreshTimeoutMs: 0 }],
    ['peer refresh timeout not a number', { ...base, peerRefreshTimeoutMs: '5s' }],
    ['now() not returning a number', { ...base, now: () => 'soon' }],
    ['storage without get/set', { ...base, storage: { getItem() {} } }],
    ['storage name unknown', { ...base, storage: 'indexedDB' }],
    ['tokenOrigins not an array', { ...base, tokenOrigins: 'https://api.test' }],
    ['tokenOrigins with garbage', { ...base, tokenOrigins: ['not a url'] }],
  ];
  for (const [what, options] of bad) {
    it(`throws TypeError for ${what}`, () => {
      expect(() => createAuthClient(options as AuthClientOptions)).toThrow(TypeError);
    });
  }

  it('accepts a full set of valid options and returns a frozen object of bound methods', () => {
    const client = createAuthClient({
      ...base,
      baseUrl: 'https://example.com/baton/',
      clientId: 'cli',
      storage: 'memory',
      storageKey: 'k',
      refreshMarginMs: 60_000,
      timeoutMs: 5_000,
      refreshTimeoutMs: 3_000,
      refreshRetryBudgetMs: 0,
      peerRefreshTimeoutMs: 2_000,
      tokenOrigins: ['https://api.example.com'],
      now: Date.now,
      random: Math.random,
      fetch: async () => new Response(null),
    });
    expect(Object.isFrozen(client)).toBe(true);
    const { getSession, dispose } = client;
    expect(getSession()).toBeNull();
    expect(() => client.on('nope' as never, () => {})).toThrow(TypeError);
    dispose();
  });

  it('keeps a path prefix of baseUrl for the auth endpoints', async () => {
    const seen: string[] = [];
    const client = createAuthClient({
      ...base,
      baseUrl: 'https://example.com/baton/',
      fetch: async (input) => {
        seen.push(input instanceof Request ? input.url : String(input));
        return new Response(JSON.stringify({ error: 'invalid_credentials' }), { status: 401 });
      },
    });
    await expect(client.login({ email: 'a@b.c', password: 'x' })).rejects.toMatchObject({
      code: 'invalid_credentials',
      status: 401,
    });
    expect(seen).toEqual(['https://example.com/baton/auth/login']);
    client.dispose();
  });

  it('puts no password or token in error messages', async () => {
    const client = createAuthClient({
      ...base,
      fetch: async () =>
        new Response(
          JSON.stringify({ error: 'invalid_credentials', error_description: 'Wrong email or password' }),
          {
            status: 401,
          },
        ),
    });
    const error = await client.login({ email: 'a@b.c', password: 'hunter2-secret' }).catch((e: Error) => e);
    expect(String(error)).not.toContain('hunter2-secret');
    expect(JSON.stringify(error)).not.toContain('hunter2-secret');
    client.dispose();
  });
});
