import { readFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { tempStore } from '../../test/helpers.js';
import type { Store } from '../store/store.js';
import {
  AuthenticatedClient,
  authenticateClient,
  CLIENT_SECRET_PREFIX,
  clientSecretMatches,
  createClient,
  hashClientSecret,
  issuedAudiences,
  newClientSecret,
  supportedScopes,
} from './clients.js';
import { isBatonError } from './errors.js';

const code = (p: Promise<unknown>) =>
  p.then(
    () => 'ok',
    (e: unknown) => (isBatonError(e) ? e.code : `unexpected: ${String(e)}`),
  );

describe('client secrets', () => {
  it('are bcs_ + 256 random bits, and only their SHA-256 is kept', () => {
    const a = newClientSecret();
    const b = newClientSecret();
    expect(a.secret).toMatch(/^bcs_[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(a.secret.slice(CLIENT_SECRET_PREFIX.length), 'base64url')).toHaveLength(32);
    expect(a.secret).not.toBe(b.secret);
    expect(a.hash).toBe(hashClientSecret(a.secret));
    expect(a.hash).not.toContain(a.secret.slice(4, 20));
  });

  it('match only the exact secret, and never without a stored hash', () => {
    const { secret, hash } = newClientSecret();
    expect(clientSecretMatches(secret, hash)).toBe(true);
    const flipped = secret.slice(0, -1) + (secret.endsWith('A') ? 'B' : 'A');
    expect(clientSecretMatches(flipped, hash)).toBe(false);
    expect(clientSecretMatches('', hash)).toBe(false);
    expect(clientSecretMatches(secret, null)).toBe(false);
  });
});

describe('stored clients', () => {
  let store: Store;
  let file: string;
  let dispose: () => Promise<void>;
  const T = Date.UTC(2026, 10, 26);
  beforeEach(async () => {
    ({ store, file, dispose } = await tempStore());
  });
  afterEach(() => dispose());

  it('a confidential client gets a secret once; the database holds only its hash', async () => {
    const { client, secret } = await createClient(
      store,
      { id: 'billing', type: 'confidential', allowedScopes: ['read', 'write', 'read'], accessTtl: 300_000 },
      T,
    );
    expect(secret).toMatch(/^bcs_/);
    expect(client).toMatchObject({ id: 'billing', name: 'billing', allowedScopes: ['read', 'write'] });
    const stored = await store.findClient('billing');
    expect(stored?.secretHash).toBe(hashClientSecret(secret!));
    expect(stored?.accessTtl).toBe(300_000);
    // Checkpointing is SQLite's business: look in the main file and the WAL alike.
    const bytes = [file, `${file}-wal`].map((f) => {
      try {
        return readFileSync(f).toString('latin1');
      } catch {
        return '';
      }
    });
    expect(bytes.join('')).not.toContain(secret!);
  });

  it('a public client has no secret; a random id is generated when none is given', async () => {
    const { client, secret } = await createClient(store, { type: 'public', name: 'SPA' }, T);
    expect(secret).toBeNull();
    expect(client.id).toMatch(/^cli_/);
    expect((await store.findClient(client.id))?.secretHash).toBeNull();
  });

  it('refuses bad ids, scopes, origins, TTLs and duplicates', async () => {
    await createClient(store, { id: 'taken', type: 'public' }, T);
    expect(await code(createClient(store, { id: 'taken', type: 'public' }, T))).toBe('invalid_request');
    expect(await code(createClient(store, { id: 'has space', type: 'public' }, T))).toBe('invalid_request');
    expect(await code(createClient(store, { id: 'x', type: 'public', allowedScopes: ['a"b'] }, T))).toBe(
      'invalid_request',
    );
    expect(
      await code(
        createClient(store, { id: 'x', type: 'public', allowedOrigins: ['https://a.example/path'] }, T),
      ),
    ).toBe('invalid_request');
    expect(
      await code(
        createClient(store, { id: 'x', type: 'public', allowedOrigins: ['javascript:alert(1)'] }, T),
      ),
    ).toBe('invalid_request');
    expect(await code(createClient(store, { id: 'x', type: 'public', accessTtl: -1 }, T))).toBe(
      'invalid_request',
    );
    expect(await store.findClient('x')).toBeNull();
    const ok = await createClient(
      store,
      { id: 'web', type: 'public', allowedOrigins: ['https://app.example/'] },
      T,
    );
    expect(ok.client.allowedOrigins).toEqual(['https://app.example']);
  });

  it('lists the audiences and scopes the server issues', async () => {
    await createClient(
      store,
      { id: 'a', type: 'public', allowedScopes: ['read'], audience: 'https://api.a' },
      T,
    );
    await createClient(store, { id: 'b', type: 'confidential', allowedScopes: ['write', 'read'] }, T);
    expect(await issuedAudiences(store, 'https://auth.example')).toEqual([
      'https://auth.example',
      'https://api.a',
    ]);
    expect(await supportedScopes(store)).toEqual(['read', 'write']);
  });

  describe('authenticateClient', () => {
    let secret: string;
    const find = (id: string) => store.findClient(id);
    beforeEach(async () => {
      await createClient(store, { id: 'app', type: 'public' }, T);
      secret = (await createClient(store, { id: 'rs', type: 'confidential' }, T)).secret!;
    });

    it('accepts a confidential client with its secret, by either method', async () => {
      for (const method of ['client_secret_basic', 'client_secret_post'] as const)
        expect((await authenticateClient(find, { clientId: 'rs', secret, method })).id).toBe('rs');
    });

    it('accepts a public client that only names itself', async () => {
      expect((await authenticateClient(find, { clientId: 'app', secret: null, method: 'none' })).id).toBe(
        'app',
      );
    });

    it('an AuthenticatedClient comes only from authenticateClient', async () => {
      const real = await authenticateClient(find, { clientId: 'app', secret: null, method: 'none' });
      expect(real).toBeInstanceOf(AuthenticatedClient);
      const Forged = AuthenticatedClient as unknown as new (...args: unknown[]) => unknown;
      expect(() => new Forged(Symbol('authenticated-client'), real.record, 'none')).toThrow(TypeError);
    });

    it('refuses every other combination with invalid_client', async () => {
      const cases = [
        { clientId: 'rs', secret: `${secret}x`, method: 'client_secret_basic' as const },
        { clientId: 'rs', secret: null, method: 'none' as const },
        { clientId: 'nobody', secret, method: 'client_secret_basic' as const },
        { clientId: 'nobody', secret: null, method: 'none' as const },
        { clientId: 'app', secret, method: 'client_secret_post' as const },
        { clientId: 'app', secret: '', method: 'client_secret_post' as const },
      ];
      for (const c of cases) expect(await code(authenticateClient(find, c))).toBe('invalid_client');
    });
  });
});
