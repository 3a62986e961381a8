import { mkdir, mkdtemp, readFile, rm, stat, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fileStorage } from './file-storage.js';
import { clientFor, credentials, disposeAll, fakeServer } from './test-support/harness.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'baton-client-'));
});
afterEach(async () => {
  disposeAll();
  await rm(dir, { recursive: true, force: true });
});

describe('fileStorage', () => {
  it('stores values in a file only its owner can read', async () => {
    const path = join(dir, 'nested', 'session.json');
    const storage = fileStorage(path);
    expect(await storage.get('a')).toBeNull();
    await storage.set('a', 'one');
    await storage.set('b', 'two');
    expect(await storage.get('a')).toBe('one');
    expect(JSON.parse(await readFile(path, 'utf8'))).toEqual({ a: 'one', b: 'two' });
    if (process.platform !== 'win32') expect((await stat(path)).mode & 0o777).toBe(0o600);
  });

  it('lets one holder at a time into its lock, and releases it on failure', async () => {
    const path = join(dir, 'session.json');
    // Two storages on one file stand for two processes.
    const [a, b] = [fileStorage(path), fileStorage(path)];
    let inside = 0;
    let maxInside = 0;
    const critical = async () => {
      inside++;
      maxInside = Math.max(maxInside, inside);
      await new Promise((r) => setTimeout(r, 15));
      inside--;
    };
    await Promise.all([a.lock!('x', critical), b.lock!('x', critical), a.lock!('x', critical)]);
    expect(maxInside).toBe(1);
    await expect(b.lock!('x', async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    await expect(a.lock!('x', async () => 'free again')).resolves.toBe('free again');
  });

  it('takes over a lock abandoned by a crashed process', async () => {
    const path = join(dir, 'session.json');
    await mkdir(`${path}.lock`);
    const old = new Date(Date.now() - 60_000);
    await utimes(`${path}.lock`, old, old);
    await expect(fileStorage(path, { staleLockMs: 30_000 }).lock!('x', async () => 'ok')).resolves.toBe('ok');
  });

  it('gives up waiting for a live lock with a retryable timeout', async () => {
    const path = join(dir, 'session.json');
    await mkdir(`${path}.lock`);
    await expect(fileStorage(path, { lockWaitMs: 50 }).lock!('x', async () => 'never')).rejects.toMatchObject(
      {
        code: 'timeout',
        retryable: true,
      },
    );
  });

  it('lets a command-line tool stay signed in across runs', async () => {
    const server = fakeServer();
    const path = join(dir, 'cli.json');
    const run1 = clientFor(server, { storage: fileStorage(path) });
    await run1.login(credentials);
    run1.dispose();
    server.clock.advance(20 * 60_000);
    const run2 = clientFor(server, { storage: fileStorage(path) });
    expect((await run2.fetch('/auth/me')).status).toBe(200);
    expect(server.refreshes.rotated).toBe(1);
  });
});

describe('fileStorage keeps the DPoP key', () => {
  it('in the same 0600 file, so a later run signs with the session key; gone at sign-out', async () => {
    const path = join(dir, 'session.json');
    const server = fakeServer({ accessTtlSeconds: 120 });
    const first = clientFor(server, { dpop: true, storage: fileStorage(path), storageKey: 'cli' });
    const { sessionId } = await first.login(credentials);
    expect(server.isBound(sessionId!)).toBe(true);
    const file = JSON.parse(await readFile(path, 'utf8')) as Record<string, string>;
    const stored = JSON.parse(file['dpop-key:cli']!) as {
      privateJwk: { d?: string };
      publicJwk: { d?: string };
    };
    // Node cannot write a non-extractable key out: this one is extractable, and lives where the refresh token does.
    expect(typeof stored.privateJwk.d).toBe('string');
    expect(stored.publicJwk.d).toBeUndefined();
    if (process.platform !== 'win32') expect((await stat(path)).mode & 0o777).toBe(0o600);
    first.dispose();

    // A later process: a new storage on the same file, the same key.
    server.clock.advance(3 * 60_000);
    const second = clientFor(server, { dpop: true, storage: fileStorage(path), storageKey: 'cli' });
    expect((await second.fetch('/auth/me')).status).toBe(200);
    expect(server.proofs.at(-1)).toMatchObject({ path: '/auth/refresh', outcome: 'accepted' });
    expect(server.proofs.at(-1)!.header['jwk']).toEqual(server.proofs[0]!.header['jwk']);
    expect(server.keyRefusals).toEqual([]);

    await second.logout();
    const after = JSON.parse(await readFile(path, 'utf8')) as Record<string, string>;
    expect(after['dpop-key:cli']).toBeUndefined();
  });
});
