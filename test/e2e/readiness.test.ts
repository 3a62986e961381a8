import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { freePort, type RunningBaton, startBaton } from './support/baton.js';
import { reachable, serviceAvailable } from './support/services.js';

interface Readiness {
  status: 'ready' | 'degraded' | 'unready';
  store: string;
  checks: { store: { status: string; dialect: string; latency_ms?: number }; redis?: { status: string } };
}

const readyz = async (s: RunningBaton) => {
  const res = await fetch(`http://127.0.0.1:${s.port}/readyz`);
  return {
    status: res.status,
    cache: res.headers.get('cache-control'),
    body: (await res.json()) as Readiness,
  };
};

/** Polls /readyz until `want` holds (a state change takes a reconnect attempt or two), at most 15 s. */
async function readyzUntil(s: RunningBaton, want: (r: Awaited<ReturnType<typeof readyz>>) => boolean) {
  let last = await readyz(s);
  for (let i = 0; i < 150 && !want(last); i++) {
    await new Promise((r) => setTimeout(r, 100));
    last = await readyz(s);
  }
  return last;
}

const REDIS_WARNING = /Redis is not reachable/g;
const warnings = (s: RunningBaton) => s.output().match(REDIS_WARNING)?.length ?? 0;

const running: RunningBaton[] = [];
const start = async (env: Record<string, string>) => {
  const s = await startBaton({ env });
  running.push(s);
  return s;
};
afterEach(async () => {
  await Promise.all(running.splice(0).map((s) => s.stop()));
});

const refresh = (s: RunningBaton) =>
  fetch(`http://127.0.0.1:${s.port}/auth/refresh`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{}',
  });

describe('/readyz reports each dependency', () => {
  it('SQLite without Redis: ready, the store up with its dialect and latency, no redis entry', async () => {
    const s = await start({});
    const r = await readyz(s);
    expect(r.status).toBe(200);
    expect(r.cache).toBe('no-store');
    expect(r.body).toMatchObject({
      status: 'ready',
      store: 'sqlite',
      checks: { store: { status: 'up', dialect: 'sqlite' } },
    });
    expect(r.body.checks.store.latency_ms).toBeGreaterThanOrEqual(0);
    expect(r.body.checks.redis).toBeUndefined();
  });

  it('Redis configured but nothing listening: starts, degraded (200), one warning, limits counted per process', async () => {
    const port = await freePort();
    const s = await start({
      BATON_REDIS_URL: `redis://:SECRET-pw@127.0.0.1:${port}/0`,
      BATON_LIMIT_IP_PER_MIN: '3',
    });
    const r = await readyzUntil(s, (x) => x.body.status === 'degraded');
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({
      status: 'degraded',
      checks: { store: { status: 'up' }, redis: { status: 'down' } },
    });
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await refresh(s)).status);
    // The per-process fallback still counts: 3 allowed, then refused.
    expect(statuses).toEqual([401, 401, 401, 429, 429]);
    for (let i = 0; i < 10; i++) await readyz(s);
    expect(warnings(s)).toBe(1);
    // At start, the CLI names the setting, with the password masked.
    expect(s.output()).toContain(`BATON_REDIS_URL (redis://:***@127.0.0.1:${port}/0)`);
    expect(s.output()).not.toContain('SECRET-pw');
  });
});

const pgUp = await serviceAvailable('PostgreSQL', 5432);

describe.runIf(pgUp)('/readyz while PostgreSQL refuses the server', () => {
  const admin = new pg.Pool({ connectionString: 'postgres://postgres@127.0.0.1:5432/test', max: 1 });
  const role = `baton_ready_${randomBytes(4).toString('hex')}`;
  afterAll(async () => {
    await admin.query(`DROP SCHEMA IF EXISTS ${role} CASCADE`).catch(() => {});
    await admin.query(`DROP ROLE IF EXISTS ${role}`).catch(() => {});
    await admin.end();
  });

  it('is unready (503 JSON, no-store) while the store is unreachable, and ready again after', async () => {
    await admin.query(`CREATE ROLE ${role} LOGIN`);
    await admin.query(`CREATE SCHEMA ${role} AUTHORIZATION ${role}`);
    const s = await start({ BATON_DATABASE_URL: `postgres://${role}@127.0.0.1:5432/test?schema=${role}` });
    expect((await readyz(s)).body).toMatchObject({ status: 'ready', store: 'postgres' });

    // The database turns the server away: no new connection, the pooled ones cut.
    await admin.query(`ALTER ROLE ${role} NOLOGIN`);
    await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1', [role]);
    const down = await readyzUntil(s, (x) => x.status === 503);
    expect(down.status).toBe(503);
    expect(down.cache).toBe('no-store');
    expect(down.body).toMatchObject({
      status: 'unready',
      store: 'postgres',
      checks: { store: { status: 'down', dialect: 'postgres' } },
    });

    await admin.query(`ALTER ROLE ${role} LOGIN`);
    const up = await readyzUntil(s, (x) => x.status === 200);
    expect(up.body).toMatchObject({ status: 'ready', checks: { store: { status: 'up' } } });
  });
});

describe('/readyz with a real Redis that goes away', () => {
  let redis: ChildProcess | undefined;
  afterAll(() => {
    redis?.kill('SIGKILL');
  });
  const startRedis = async (port: number) => {
    const child = spawn(
      'redis-server',
      ['--port', String(port), '--save', '', '--appendonly', 'no', '--daemonize', 'no'],
      {
        stdio: 'ignore',
      },
    );
    for (let i = 0; i < 100 && !(await reachable(port)); i++) await new Promise((r) => setTimeout(r, 50));
    return child;
  };

  it('ready while Redis answers; degraded with one warning once it is killed; ready again when it is back', async () => {
    const port = await freePort();
    redis = await startRedis(port);
    const s = await start({ BATON_REDIS_URL: `redis://127.0.0.1:${port}/0` });
    const up = await readyzUntil(s, (x) => x.body.checks.redis?.status === 'up');
    expect(up.body).toMatchObject({ status: 'ready', checks: { redis: { status: 'up' } } });
    expect(warnings(s)).toBe(0);

    redis.kill('SIGKILL');
    const down = await readyzUntil(s, (x) => x.body.status === 'degraded');
    expect(down.status).toBe(200);
    expect(down.body.checks.redis).toEqual({ status: 'down' });
    for (let i = 0; i < 5; i++) expect((await refresh(s)).status).toBe(401);
    expect(warnings(s)).toBe(1);

    redis = await startRedis(port);
    const back = await readyzUntil(s, (x) => x.body.status === 'ready');
    expect(back.body.checks.redis).toEqual({ status: 'up' });
  });
});
