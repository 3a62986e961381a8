import { randomBytes } from 'node:crypto';
import { connect, createServer as createTcpServer, type Server, type Socket } from 'node:net';
import pg from 'pg';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createSqliteStore } from '../../packages/server/src/store/sqlite/sqlite-store.js';
import { freePort, type RunningBaton, startBaton } from './support/baton.js';
import { serviceAvailable } from './support/services.js';

/**
 * Issue 12 item 3, over real processes: what SIGTERM (and kill -9, and a
 * database that goes away) does to requests in flight and to the token
 * chains clients hold. Every loop is bounded; nothing asserts a duration.
 */
const PASSWORD = 'correct horse battery';
const PG_SERVER = '127.0.0.1:5432/test';
const postgresUp = await serviceAvailable('PostgreSQL', 5432);

const running: RunningBaton[] = [];
afterEach(async () => {
  for (const b of running.splice(0)) await b.stop();
});

async function start(env: Record<string, string> = {}, dataDir?: string): Promise<RunningBaton> {
  const b = await startBaton({
    env: { BATON_LIMIT_IP_PER_MIN: 'off', BATON_LIMIT_LOGIN_FAILURES: 'off', ...env },
    ...(dataDir ? { dataDir } : {}),
  });
  running.push(b);
  return b;
}

const exited = (b: RunningBaton) =>
  new Promise<number | null>((resolve) => {
    if (b.child.exitCode !== null || b.child.signalCode !== null) resolve(b.child.exitCode);
    else b.child.once('exit', (code) => resolve(code));
  });

async function post(base: string, path: string, body: unknown) {
  const res = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  // A truncated body fails here: every answer must be complete JSON.
  return { status: res.status, headers: res.headers, json: (await res.json()) as Record<string, unknown> };
}

async function loginClient(base: string, email: string): Promise<string> {
  await post(base, '/auth/register', { email, password: PASSWORD });
  const res = await post(base, '/auth/login', { email, password: PASSWORD });
  expect(res.status).toBe(200);
  return res.json.refresh_token as string;
}

/** What one client saw during a refresh loop. */
interface ClientLog {
  /** Every refresh token it received, oldest first. */
  received: string[];
  /** Answers that were neither a complete 200 nor a complete 503 (must stay empty). */
  bad: string[];
  /** Requests that got no answer at all (a connection error): allowed once the server stops. */
  refused: number;
  /** Complete 503 `temporarily_unavailable` answers. */
  unavailable: number;
}

/**
 * Refreshes in a chain until `stop()` says so or the server stops answering.
 * Each request is sent only after the previous one was answered.
 */
function refreshLoop(base: string, first: string, stopAfterError = true) {
  const log: ClientLog = { received: [first], bad: [], refused: 0, unavailable: 0 };
  let stopped = false;
  let rounds = 0;
  const done = (async () => {
    for (let i = 0; i < 5000 && !stopped; i++) {
      try {
        const res = await post(base, '/auth/refresh', { refresh_token: log.received.at(-1) });
        rounds++;
        if (res.status === 200) log.received.push(res.json.refresh_token as string);
        else if (
          res.status === 503 &&
          res.json.error === 'temporarily_unavailable' &&
          res.headers.get('cache-control') === 'no-store'
        ) {
          log.unavailable++;
          if (stopAfterError) break;
        } else log.bad.push(`${res.status} ${JSON.stringify(res.json)}`);
      } catch (err) {
        // A JSON body cut short is a SyntaxError: that is a truncated answer, not a refusal.
        if (err instanceof SyntaxError) log.bad.push(`truncated: ${err.message}`);
        else log.refused++;
        if (stopAfterError) break;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  })();
  return {
    log,
    rounds: () => rounds,
    done,
    stop() {
      stopped = true;
    },
  };
}

async function until(check: () => boolean | Promise<boolean>, what: string) {
  for (let i = 0; i < 400; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** After a restart, each client's last received token must refresh: rotated, or the same successor again. */
async function expectChainsIntact(base: string, logs: ClientLog[]) {
  for (const log of logs) {
    const res = await post(base, '/auth/refresh', { refresh_token: log.received.at(-1) });
    expect(res.status, JSON.stringify(res.json)).toBe(200);
  }
}

const tokenId = (token: string) => token.slice(4, token.indexOf('.'));

describe('SIGTERM', () => {
  it('cuts no request and leaves no session half-rotated: after a restart every last token refreshes', async () => {
    const a = await start({ BATON_REUSE_GRACE: '60s' });
    const firsts = await Promise.all([0, 1, 2, 3].map((i) => loginClient(a.url, `c${i}@example.com`)));
    const loops = firsts.map((t) => refreshLoop(a.url, t));
    await until(() => loops.every((l) => l.rounds() >= 5), 'five refreshes per client');
    a.child.kill('SIGTERM');
    await Promise.all(loops.map((l) => l.done));
    expect(await exited(a)).toBe(0);
    for (const l of loops) expect(l.log.bad).toEqual([]);

    const b = await start({ BATON_REUSE_GRACE: '60s' }, a.dataDir);
    await expectChainsIntact(
      b.url,
      loops.map((l) => l.log),
    );
  });

  it('exits within its deadline with an idle keep-alive client and a request that never finishes', async () => {
    const a = await start({
      BATON_SHUTDOWN_TIMEOUT: '2s',
      BATON_REQUEST_TIMEOUT: '120s',
      BATON_HEADERS_TIMEOUT: '60s',
      BATON_KEEP_ALIVE_TIMEOUT: '120s',
    });
    const idle = connect(a.port, '127.0.0.1');
    const idleClosed = new Promise<void>((resolve) => idle.once('close', () => resolve()));
    let idleText = '';
    idle.on('data', (d: Buffer) => {
      idleText += d.toString('latin1');
    });
    idle.write('GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n');
    await until(() => idleText.includes('\r\n\r\n'), 'the keep-alive answer');
    expect(idleText).not.toMatch(/connection: close/i);
    // A request whose body never arrives: in flight until the deadline cuts it.
    const slow = connect(a.port, '127.0.0.1');
    slow.on('error', () => {});
    slow.write(
      'POST /auth/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"em',
    );
    await new Promise((r) => setTimeout(r, 200));
    a.child.kill('SIGTERM');
    await idleClosed;
    // Without the deadline this would wait for the 120 s request timeout, and the test would time out.
    expect(await exited(a)).toBe(0);
    slow.destroy();
  }, 30_000);

  it('answers a login in flight in full with Connection: close, then exits', async () => {
    const a = await start({ BATON_KEEP_ALIVE_TIMEOUT: '120s' });
    await post(a.url, '/auth/register', { email: 'ada@example.com', password: PASSWORD });
    const socket: Socket = connect(a.port, '127.0.0.1');
    let text = '';
    socket.on('data', (d: Buffer) => {
      text += d.toString('latin1');
    });
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    const body = JSON.stringify({ email: 'ada@example.com', password: PASSWORD });
    socket.write(
      `POST /auth/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: ${body.length}\r\n\r\n`,
    );
    await until(() => text.includes('100 Continue'), '100 Continue');
    a.child.kill('SIGTERM');
    await until(() => a.output().includes('SIGTERM received'), 'the drain to begin');
    socket.write(body);
    await closed;
    const answer = text.split(/(?=HTTP\/1\.1 )/).find((r) => r.startsWith('HTTP/1.1 200'));
    expect(answer, text).toBeDefined();
    expect(answer).toMatch(/\r\nconnection: close\r\n/i);
    expect(JSON.parse(answer!.split('\r\n\r\n')[1]!)).toMatchObject({ refresh_token: expect.any(String) });
    expect(await exited(a)).toBe(0);
  }, 30_000);
});

describe('kill -9 during a refresh loop loses no committed rotation', () => {
  it('on SQLite: every received token was rotated except the last, which refreshes', async () => {
    const a = await start({ BATON_REUSE_GRACE: '60s' });
    const firsts = await Promise.all([0, 1, 2].map((i) => loginClient(a.url, `k${i}@example.com`)));
    const loops = firsts.map((t) => refreshLoop(a.url, t));
    await until(() => loops.every((l) => l.rounds() >= 10), 'ten refreshes per client');
    a.child.kill('SIGKILL');
    await Promise.all(loops.map((l) => l.done));
    for (const l of loops) expect(l.log.bad).toEqual([]);

    // What the database kept: every token a client saw a successor of is marked used.
    const store = createSqliteStore({ filename: `${a.dataDir}/baton.db` });
    try {
      for (const l of loops) {
        for (const t of l.log.received.slice(0, -1))
          expect((await store.findRefreshToken(tokenId(t)))?.token.usedAt).not.toBeNull();
      }
    } finally {
      await store.close();
    }
    const b = await start({ BATON_REUSE_GRACE: '60s' }, a.dataDir);
    await expectChainsIntact(
      b.url,
      loops.map((l) => l.log),
    );
  }, 60_000);

  describe.runIf(postgresUp)('on PostgreSQL', () => {
    const admin = new pg.Pool({ connectionString: `postgres://postgres@${PG_SERVER}`, max: 1 });
    const schema = `baton_e2e_${randomBytes(6).toString('hex')}`;
    afterAll(async () => {
      await admin.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(schema)} CASCADE`);
      await admin.end();
    });

    it('every received token was rotated except the last, which refreshes', async () => {
      const env = {
        BATON_REUSE_GRACE: '60s',
        BATON_DATABASE_URL: `postgres://postgres@${PG_SERVER}?schema=${schema}`,
      };
      const a = await start(env);
      const firsts = await Promise.all([0, 1, 2].map((i) => loginClient(a.url, `p${i}@example.com`)));
      const loops = firsts.map((t) => refreshLoop(a.url, t));
      await until(() => loops.every((l) => l.rounds() >= 10), 'ten refreshes per client');
      a.child.kill('SIGKILL');
      await Promise.all(loops.map((l) => l.done));
      for (const l of loops) expect(l.log.bad).toEqual([]);
      for (const l of loops) {
        const ids = l.log.received.slice(0, -1).map(tokenId);
        const { rows } = await admin.query(
          `SELECT count(*)::int AS n FROM ${pg.escapeIdentifier(schema)}.refresh_tokens WHERE id = ANY($1) AND used_at IS NOT NULL`,
          [ids],
        );
        expect(rows[0].n).toBe(ids.length);
      }
      const b = await start(env);
      await expectChainsIntact(
        b.url,
        loops.map((l) => l.log),
      );
    }, 60_000);
  });
});

/** A loopback TCP proxy the test can take down (closing every connection) and bring back on the same port. */
async function tcpProxy(target: { host: string; port: number }) {
  const port = await freePort();
  let server: Server | undefined;
  const sockets = new Set<Socket>();
  const up = () =>
    new Promise<void>((resolve) => {
      server = createTcpServer((client) => {
        const upstream = connect(target.port, target.host);
        for (const s of [client, upstream]) {
          sockets.add(s);
          s.on('error', () => {});
          s.once('close', () => sockets.delete(s));
        }
        client.pipe(upstream).pipe(client);
        client.once('close', () => upstream.destroy());
        upstream.once('close', () => client.destroy());
      });
      server.listen(port, '127.0.0.1', () => resolve());
    });
  const down = () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server?.close(() => resolve());
    });
  await up();
  return { port, up, down };
}

describe.runIf(postgresUp)('PostgreSQL going away mid-loop', () => {
  const admin = new pg.Pool({ connectionString: `postgres://postgres@${PG_SERVER}`, max: 1 });
  const schema = `baton_e2e_${randomBytes(6).toString('hex')}`;
  afterAll(async () => {
    await admin.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(schema)} CASCADE`);
    await admin.end();
  });

  it('answers 503 temporarily_unavailable with no-store while it is down, never a 500, and recovers by itself', async () => {
    const proxy = await tcpProxy({ host: '127.0.0.1', port: 5432 });
    try {
      const a = await start({
        BATON_REUSE_GRACE: '60s',
        BATON_DATABASE_URL: `postgres://postgres@127.0.0.1:${proxy.port}/test?schema=${schema}`,
      });
      const first = await loginClient(a.url, 'ada@example.com');
      const loop = refreshLoop(a.url, first, false);
      await until(() => loop.rounds() >= 5, 'five refreshes');
      await proxy.down();
      // While it is down the loop's refreshes are answered 503 (counted, never `bad`).
      await until(() => loop.log.unavailable >= 2, 'refreshes answered 503 while the database is away');
      const down = await post(a.url, '/auth/login', { email: 'ada@example.com', password: PASSWORD }).catch(
        (err: unknown) => {
          throw new Error(`baton died: ${String(err)}\n${a.output()}`);
        },
      );
      expect(down.status).toBe(503);
      expect(down.json.error).toBe('temporarily_unavailable');
      expect(down.headers.get('cache-control')).toBe('no-store');
      const before = loop.log.received.length;
      await proxy.up();
      await until(() => loop.log.received.length >= before + 3, 'refreshes to succeed again');
      loop.stop();
      await loop.done;
      expect(loop.log.bad).toEqual([]);
      expect(a.output()).not.toMatch(/"statusCode":500/);
      await expectChainsIntact(a.url, [loop.log]);
    } finally {
      await proxy.down();
    }
  }, 60_000);
});
