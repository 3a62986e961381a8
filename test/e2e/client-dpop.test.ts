import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect, createServer as createNetServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type AuthClient, createAuthClient } from '@baton/client';
import { fileStorage } from '@baton/client/file-storage';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { freePort, metricValue, type RunningBaton, startBaton } from './support/baton.js';

// The client's DPoP (RFC 9449) in Node against the real server (built CLI,
// SQLite), through a loopback proxy that can lose answers. The server's
// issuer is the proxy's URL, because a proof names the URI the client
// called (`htu`), and the server checks it against its issuer.

let baton: RunningBaton;
let proxy: LossyProxy;
let dir: string;
const clients: AuthClient[] = [];

/**
 * A loopback TCP proxy in front of the server. While `losing` is on, each
 * new connection reaches the server, but its answer is thrown away and the
 * connection closed: the server did the work, the client never hears of it.
 */
interface LossyProxy {
  url: string;
  port: number;
  target: number;
  /** Loses the answers of connections opened from now on (turning it on closes the open ones). */
  lose(on: boolean): void;
  /** Answers lost so far. */
  readonly lost: number;
  close(): Promise<void>;
}

async function lossyProxy(port: number): Promise<LossyProxy> {
  let losing = false;
  let lost = 0;
  const open = new Set<Socket>();
  /** Client sockets whose answers are being thrown away. */
  const lossy = new Set<Socket>();
  const state = { target: 0 };
  const server = createNetServer((socket) => {
    open.add(socket);
    socket.on('close', () => open.delete(socket));
    const upstream = connect(state.target, '127.0.0.1');
    open.add(upstream);
    upstream.on('close', () => open.delete(upstream));
    socket.pipe(upstream);
    if (losing) {
      lossy.add(socket);
      socket.on('close', () => lossy.delete(socket));
      upstream.once('data', () => {
        lost++;
        socket.destroy();
        upstream.destroy();
      });
    } else {
      upstream.pipe(socket);
    }
    socket.on('error', () => upstream.destroy());
    upstream.on('error', () => socket.destroy());
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    url: `http://localhost:${port}`,
    port,
    get target() {
      return state.target;
    },
    set target(value: number) {
      state.target = value;
    },
    lose(on) {
      losing = on;
      // On: every connection must be a new, lossy one. Off: the lossy ones must go.
      for (const socket of on ? open : lossy) socket.destroy();
    },
    get lost() {
      return lost;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of open) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

async function refreshCounts(): Promise<Record<string, number>> {
  const text = await baton.metrics();
  const counts: Record<string, number> = {};
  for (const outcome of ['rotated', 'grace_replay', 'reuse_detected', 'invalid'])
    counts[outcome] = metricValue(text, 'baton_refresh_total', { outcome });
  return counts;
}

let users = 0;
/** A signed-in client through the proxy, keeping its session (and key) in a file. */
async function signedIn(options: Partial<Parameters<typeof createAuthClient>[0]> = {}) {
  const file = join(dir, `session-${++users}.json`);
  const storageKey = `device-${users}`;
  /** A client on this session file: the first, or a later process. */
  const open = () => {
    const next = createAuthClient({
      baseUrl: proxy.url,
      mode: 'token',
      storage: fileStorage(file),
      storageKey,
      ...options,
    });
    clients.push(next);
    return next;
  };
  const c = open();
  const credentials = {
    email: `dpop-${users}-${Date.now()}@example.com`,
    password: 'a long enough password',
  };
  await c.register(credentials);
  await c.login(credentials);
  return { c, file, storageKey, open };
}

/** Waits in real time until the access token has expired (the server must see it expired too). */
async function untilExpired(c: AuthClient): Promise<void> {
  const session = c.getSession();
  if (session === null) throw new Error('not signed in');
  const wait = session.expiresAt - Date.now() + 250;
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'baton-client-dpop-'));
  proxy = await lossyProxy(await freePort());
  baton = await startBaton({
    env: {
      BATON_ACCESS_TTL: '2s',
      BATON_REUSE_GRACE: '1s',
      BATON_LIMIT_IP_PER_MIN: 'off',
      BATON_ISSUER: proxy.url,
    },
  });
  proxy.target = baton.port;
});

afterEach(() => {
  proxy?.lose(false);
  for (const c of clients.splice(0)) c.dispose();
});

afterAll(async () => {
  await proxy?.close();
  await baton?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('client DPoP in Node against a real server', () => {
  it('a login binds the session (GET /auth/sessions says dpop_bound) and bound refreshes work', async () => {
    const { c } = await signedIn();
    expect(c.dpop).toEqual({ bound: true });
    const list = (await (await c.fetch('/auth/sessions')).json()) as {
      sessions: { current: boolean; dpop_bound: boolean }[];
    };
    expect(list.sessions.find((s) => s.current)?.dpop_bound).toBe(true);

    const before = await refreshCounts();
    await untilExpired(c);
    expect((await c.fetch('/auth/me')).status).toBe(200);
    await untilExpired(c);
    expect((await c.fetch('/auth/me')).status).toBe(200);
    const after = await refreshCounts();
    expect(after['rotated']! - before['rotated']!).toBe(2);
    expect(after['reuse_detected']).toBe(before['reuse_detected']);
  });

  it('a lost refresh answer, retried after the 1 s grace window, keeps a bound session (and ends an unbound one)', async () => {
    for (const dpop of [true, false]) {
      const { c, open } = await signedIn({ dpop, refreshRetryBudgetMs: 0 });
      const { sessionId } = c.getSession()!;
      const before = await refreshCounts();
      // Before the wait, so the client has seen its pooled connections close when it sends.
      proxy.lose(true);
      await untilExpired(c);
      await expect(c.fetch('/auth/me')).rejects.toMatchObject({ code: 'network_error' });
      expect(proxy.lost).toBeGreaterThan(0);
      // Any retry meanwhile is lost too; the next one that arrives is well past the window.
      await sleep(1_400);
      proxy.lose(false);
      // The process restarts from its session file (the old one's backoff, and its timers, gone).
      c.dispose();
      const later = open();
      const result = await later.fetch('/auth/me').then(
        (r) => r.status,
        (e: { code: string }) => e.code,
      );
      const after = await refreshCounts();
      if (dpop) {
        expect(result).toBe(200);
        expect(later.getSession()?.sessionId).toBe(sessionId);
        expect(after['grace_replay']! - before['grace_replay']!).toBeGreaterThan(0);
        expect(after['reuse_detected']).toBe(before['reuse_detected']);
      } else {
        // The control: the same loss, unbound, is reuse after the window.
        expect(result).toBe('signed_out');
        expect(after['reuse_detected']! - before['reuse_detected']!).toBe(1);
      }
    }
  });

  it('a thief who copies the refresh token out of the session file, without the key, is refused; the owner stays signed in', async () => {
    const { c, file, storageKey } = await signedIn();
    const stored = JSON.parse(readFileSync(file, 'utf8')) as Record<string, string>;
    const { refreshToken } = JSON.parse(stored[storageKey]!) as { refreshToken: string };
    const before = await refreshCounts();
    for (const url of [proxy.url, baton.url]) {
      const response = await fetch(`${url}/auth/refresh`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ refresh_token: refreshToken }),
      });
      expect(response.status).toBe(401);
      expect(await response.json()).toMatchObject({ error: 'invalid_grant' });
    }
    await untilExpired(c);
    expect((await c.fetch('/auth/me')).status).toBe(200);
    const after = await refreshCounts();
    expect(after['invalid']! - before['invalid']!).toBe(2);
    expect(after['rotated']! - before['rotated']!).toBe(1);
    expect(after['reuse_detected']).toBe(before['reuse_detected']);
    expect(c.dpop).toEqual({ bound: true });
  });

  it('a thief without the key cannot sign the owner out; the owner’s logout, signed by the key, ends the session on the server', async () => {
    const { c, file, storageKey } = await signedIn();
    const stored = JSON.parse(readFileSync(file, 'utf8')) as Record<string, string>;
    const { refreshToken } = JSON.parse(stored[storageKey]!) as { refreshToken: string };
    const accessToken = await c.getAccessToken();
    const me = () => fetch(`${baton.url}/auth/me`, { headers: { Authorization: `Bearer ${accessToken}` } });
    const thief = await fetch(`${proxy.url}/auth/logout`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ refresh_token: refreshToken }),
    });
    expect(thief.status).toBe(400);
    expect(await thief.json()).toMatchObject({ error: 'invalid_dpop_proof' });
    expect(thief.headers.get('dpop-nonce')).toMatch(/^[A-Za-z0-9_-]+$/);
    // The session lives on: its access token is still accepted by the server.
    expect((await me()).status).toBe(200);
    expect(await c.logout()).toEqual({ revoked: true });
    // Ended server-side: the server refuses the session's unexpired access token at once.
    expect((await me()).status).toBe(401);
    expect(c.getSession()).toBeNull();
  });
});
