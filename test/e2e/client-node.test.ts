import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { connect, createServer as createNetServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type AuthClient, createAuthClient } from '@baton/client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { metricValue, type RunningBaton, startBaton } from './support/baton.js';

// The client in Node against the real server (built CLI, SQLite): the
// concurrency promises of the issue, counted by the server's own metrics.

/** The server accepts an access token this long past `exp` (its default clock leeway). */
const SERVER_LEEWAY_MS = 5_000;
const OUTCOMES = ['rotated', 'grace_replay', 'reuse_detected', 'invalid'];
const CLIENT_DIST = fileURLToPath(new URL('../../packages/client/dist/', import.meta.url));

let baton: RunningBaton;
let dir: string;
const clients: AuthClient[] = [];

async function refreshTotal(): Promise<{ total: number; rotated: number; reuse: number }> {
  const text = await baton.metrics();
  const value = (outcome: string) => metricValue(text, 'baton_refresh_total', { outcome });
  return {
    total: OUTCOMES.reduce((sum, outcome) => sum + value(outcome), 0),
    rotated: value('rotated'),
    reuse: value('reuse_detected'),
  };
}

let devices = 0;
/** A client standing for its own device: a storage key of its own, so instances do not sync like tabs. */
function client(options: Partial<Parameters<typeof createAuthClient>[0]> = {}): AuthClient {
  const c = createAuthClient({
    baseUrl: baton.url,
    mode: 'token',
    storageKey: `device-${++devices}`,
    ...options,
  });
  clients.push(c);
  return c;
}

let users = 0;
async function signedInClient(options: Partial<Parameters<typeof createAuthClient>[0]> = {}) {
  const c = client(options);
  const credentials = {
    email: `node-${++users}-${Date.now()}@example.com`,
    password: 'a long enough password',
  };
  await c.register(credentials);
  await c.login(credentials);
  return { c, credentials };
}

/** Waits (in real time: the server must see it expired too) until the access token has expired. */
async function untilExpired(c: AuthClient, leewayMs = 0): Promise<void> {
  const session = c.getSession();
  if (session === null) throw new Error('not signed in');
  const wait = session.expiresAt - Date.now() + leewayMs + 250;
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
}

beforeAll(async () => {
  baton = await startBaton({ env: { BATON_ACCESS_TTL: '3s', BATON_LIMIT_IP_PER_MIN: 'off' } });
  dir = mkdtempSync(join(tmpdir(), 'baton-client-e2e-'));
});

afterEach(() => {
  for (const c of clients.splice(0)) c.dispose();
});

afterAll(async () => {
  await baton?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/**
 * A loopback TCP proxy in front of the server that, once told to, cuts the
 * next `n` connections as soon as they open (the client sees a network
 * error), and passes every other connection through.
 */
async function flakyProxy(targetPort: number) {
  let cut = 0;
  let cutSoFar = 0;
  const open = new Set<Socket>();
  const proxy = createNetServer((socket) => {
    open.add(socket);
    socket.on('close', () => open.delete(socket));
    if (cut > 0) {
      cut--;
      cutSoFar++;
      socket.destroy();
      return;
    }
    const upstream = connect(targetPort, '127.0.0.1');
    open.add(upstream);
    upstream.on('close', () => open.delete(upstream));
    socket.pipe(upstream).pipe(socket);
    socket.on('error', () => upstream.destroy());
    upstream.on('error', () => socket.destroy());
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const address = proxy.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    /** Cuts the next `n` connections; open ones are closed, so the next request needs a new one. */
    cutNext(n: number) {
      cut = n;
      for (const socket of open) socket.destroy();
    },
    get cut() {
      return cutSoFar;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of open) socket.destroy();
        proxy.close(() => resolve());
      }),
  };
}

describe('client in Node against a real server', () => {
  it('an expired token whose refresh meets a network error: fetch retries and succeeds, no sign-out', async () => {
    const proxy = await flakyProxy(baton.port);
    try {
      const { c } = await signedInClient({ baseUrl: proxy.url });
      const failures: { retryable: boolean; code: string }[] = [];
      c.on('refreshFailed', ({ error, retryable }) => failures.push({ retryable, code: error.code }));
      await untilExpired(c);
      const before = await refreshTotal();

      proxy.cutNext(1);
      const response = await c.fetch('/auth/me');
      expect(response.status).toBe(200);
      expect(proxy.cut).toBe(1);
      expect(failures).toEqual([{ retryable: true, code: 'network_error' }]);
      const after = await refreshTotal();
      expect(after.rotated - before.rotated).toBe(1);
      expect(after.reuse).toBe(before.reuse);
      expect(c.getSession()).not.toBeNull();
    } finally {
      await proxy.close();
    }
  });

  it('100 concurrent fetches with an expired access token: one refresh reaches the server, all 100 succeed', async () => {
    const { c } = await signedInClient();
    await untilExpired(c);
    const before = await refreshTotal();

    const responses = await Promise.all(Array.from({ length: 100 }, () => c.fetch('/auth/me')));
    expect(responses.map((r) => r.status)).toEqual(Array(100).fill(200));
    const after = await refreshTotal();
    expect(after.total - before.total).toBe(1);
    expect(after.rotated - before.rotated).toBe(1);
  });

  it('100 concurrent fetches that all get 401 (the client thought its token valid): still one refresh', async () => {
    // A stopped clock: the client never sees its token fall due, only the server's 401s tell it.
    const stopped = Date.now();
    const { c } = await signedInClient({ now: () => stopped });
    // Past the token's expiry plus the server's verification leeway (5 s, SECURITY.md 25).
    const expiresAt = c.getSession()!.expiresAt;
    await new Promise((r) => setTimeout(r, expiresAt - stopped + SERVER_LEEWAY_MS + 500));
    const before = await refreshTotal();

    const responses = await Promise.all(Array.from({ length: 100 }, () => c.fetch('/auth/me')));
    expect(responses.map((r) => r.status)).toEqual(Array(100).fill(200));
    expect((await refreshTotal()).total - before.total).toBe(1);
  });

  it('maps server errors to codes without echoing the password', async () => {
    const { credentials } = await signedInClient();
    const c = client();
    const wrong = await c
      .login({ email: credentials.email, password: 'not the password!' })
      .catch((e: Error) => e);
    expect(wrong).toMatchObject({ name: 'BatonClientError', code: 'invalid_credentials', status: 401 });
    expect(String(wrong)).not.toContain('not the password!');
    await expect(c.register(credentials)).rejects.toMatchObject({ code: 'email_taken', status: 409 });
  });

  it('logout ends the session on the server: its refresh token no longer works', async () => {
    const storage = new Map<string, string>();
    const { c } = await signedInClient({
      storage: { get: (k) => storage.get(k) ?? null, set: (k, v) => void storage.set(k, v) },
      storageKey: 'k',
    });
    const { refreshToken } = JSON.parse(storage.get('k')!) as { refreshToken: string };
    expect(await c.logout()).toEqual({ revoked: true });
    const response = await fetch(`${baton.url}/auth/refresh`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ refresh_token: refreshToken }),
    });
    expect(response.status).toBe(401);
    expect(await response.json()).toMatchObject({ error: 'invalid_grant' });
  });

  it('logoutAll ends every session of the user', async () => {
    const { c, credentials } = await signedInClient();
    const laptop = client();
    await laptop.login(credentials);
    await c.logoutAll();
    expect(c.getSession()).toBeNull();
    await untilExpired(laptop, SERVER_LEEWAY_MS);
    await expect(laptop.fetch('/auth/me')).rejects.toMatchObject({
      code: 'signed_out',
      reason: 'invalid_grant',
    });
  });

  it('three CLI processes sharing a session file refresh once between them (file lock, no Web Locks in Node)', async () => {
    if (!existsSync(join(CLIENT_DIST, 'file-storage.js')))
      throw new Error('packages/client/dist is missing: run `npm run build`');
    const file = join(dir, 'cli-session.json');
    const { fileStorage } = await import('../../packages/client/src/file-storage.js');
    const { c } = await signedInClient({ storage: fileStorage(file), storageKey: 'cli' });
    await untilExpired(c);
    c.dispose();
    const before = await refreshTotal();

    const script = `
        import { createAuthClient } from ${JSON.stringify(join(CLIENT_DIST, 'index.js'))};
        import { fileStorage } from ${JSON.stringify(join(CLIENT_DIST, 'file-storage.js'))};
        const client = createAuthClient({ baseUrl: process.env.BASE, mode: 'token', storageKey: 'cli', storage: fileStorage(process.env.FILE) });
        const response = await client.fetch('/auth/me');
        console.log(response.status);
      `;
    const run = () =>
      new Promise<string>((resolve, reject) => {
        const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
          env: { ...process.env, BASE: baton.url, FILE: file },
        });
        let out = '';
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
        });
        child.stderr.on('data', (d: Buffer) => {
          out += d.toString();
        });
        child.on('error', reject);
        // The process must exit by itself: no timer or channel of the client keeps it alive.
        child.on('exit', (code) =>
          code === 0 ? resolve(out.trim()) : reject(new Error(`exit ${code}: ${out}`)),
        );
      });
    expect(await Promise.all([run(), run(), run()])).toEqual(['200', '200', '200']);
    const after = await refreshTotal();
    expect(after.total - before.total).toBe(1);
    expect(after.reuse).toBe(before.reuse);
  });

  it("a caller's AbortSignal still cancels a request after garbage collection (Node 20: a Request's signal dies with the Request)", async () => {
    if (!existsSync(join(CLIENT_DIST, 'index.js')))
      throw new Error('packages/client/dist is missing: run `npm run build`');
    // An API origin that accepts the request and never answers.
    const silent = createHttpServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const address = silent.address();
    const api = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
    const script = `
        import { createAuthClient } from ${JSON.stringify(join(CLIENT_DIST, 'index.js'))};
        const client = createAuthClient({ baseUrl: process.env.BASE, mode: 'token', tokenOrigins: [process.env.API] });
        const credentials = { email: 'gc-' + Date.now() + '@example.com', password: 'a long enough password' };
        await client.register(credentials);
        await client.login(credentials);
        const controller = new AbortController();
        const pending = client.fetch(process.env.API + '/slow', { signal: controller.signal }).then(
          () => 'resolved',
          (error) => 'rejected ' + error.name,
        );
        // Let the request reach the server, then collect everything the client let go of.
        await new Promise((r) => setTimeout(r, 200));
        for (let i = 0; i < 5; i++) {
          globalThis.gc();
          await new Promise((r) => setTimeout(r, 20));
        }
        controller.abort();
        // Bounded only so that a request that ignores the abort is reported rather than hanging the suite.
        const hung = new Promise((r) => setTimeout(() => r('not cancelled'), 5000));
        console.log(await Promise.race([pending, hung]));
        process.exit(0);
      `;
    try {
      const out = await new Promise<string>((resolve, reject) => {
        const child = spawn(process.execPath, ['--expose-gc', '--input-type=module', '-e', script], {
          env: { ...process.env, BASE: baton.url, API: api },
        });
        let text = '';
        child.stdout.on('data', (d: Buffer) => {
          text += d.toString();
        });
        child.stderr.on('data', (d: Buffer) => {
          text += d.toString();
        });
        child.on('error', reject);
        child.on('exit', (code) =>
          code === 0 ? resolve(text.trim()) : reject(new Error(`exit ${code}: ${text}`)),
        );
      });
      expect(out).toBe('rejected AbortError');
    } finally {
      silent.closeAllConnections();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });
});

describe('client in Node: the device token against a locked account (SECURITY.md 32)', () => {
  let locking: RunningBaton;
  beforeAll(async () => {
    locking = await startBaton({ env: { BATON_LIMIT_LOGIN_FAILURES: '3' } });
  });
  afterAll(async () => {
    await locking?.stop();
  });

  it("an attacker's failed logins lock the account for everyone but the owner's device, which logged in before", async () => {
    const { fileStorage } = await import('../../packages/client/src/file-storage.js');
    const file = join(dir, 'device-session.json');
    const credentials = { email: `device-${Date.now()}@example.com`, password: 'a long enough password' };
    const sdk = (path: string) =>
      client({ baseUrl: locking.url, storage: fileStorage(path), storageKey: 'device-trust' });

    const first = sdk(file);
    await first.register(credentials);
    await first.login(credentials);
    expect(await first.logout()).toEqual({ revoked: true });
    first.dispose();

    // The attacker, knowing only the email, keeps guessing until the account locks.
    const statuses: number[] = [];
    for (let i = 0; i < 10 && statuses.at(-1) !== 429; i++) {
      const response = await fetch(`${locking.url}/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email: credentials.email, password: `wrong guess ${i}` }),
      });
      await response.body?.cancel();
      statuses.push(response.status);
    }
    expect(statuses).toEqual([401, 401, 401, 429]);
    // A device that never logged in is locked out even with the right password …
    const newDevice = client({ baseUrl: locking.url, storage: fileStorage(join(dir, 'new-device.json')) });
    await expect(newDevice.login(credentials)).rejects.toMatchObject({
      code: 'too_many_requests',
      status: 429,
    });

    // … the owner's device (the session file kept through the logout) is not.
    newDevice.dispose();
    const owner = sdk(file);
    await owner.login(credentials);
    expect((await owner.fetch('/auth/me')).status).toBe(200);
  });
});
