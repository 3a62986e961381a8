import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresMigrations } from '../../packages/server/src/store/postgres/postgres-migrations.js';
import { metricValue, type RunningBaton, runCli, startBaton } from './support/baton.js';
import { serviceAvailable } from './support/services.js';

/**
 * The deployment docs/design.md's "Scale" describes: two `baton serve` processes
 * sharing one PostgreSQL database (here one fresh schema, chosen with
 * `?schema=`) and one issuer, with concurrent refreshes of one token split
 * between them.
 */
const SERVER = '127.0.0.1:5432/test';
// A password trust auth never asks for: it must still never appear in any output.
const SECRET = `pw-${randomBytes(6).toString('hex')}`;
const databaseUrl = (schema: string) => `postgres://postgres:${SECRET}@${SERVER}?schema=${schema}`;

const postgresUp = await serviceAvailable('PostgreSQL', 5432);

describe.runIf(postgresUp)('two server processes on one PostgreSQL database', () => {
  const admin = new pg.Pool({ connectionString: `postgres://postgres@${SERVER}`, max: 1 });
  const schemas: string[] = [];
  const freshSchema = () => {
    const name = `baton_e2e_${randomBytes(6).toString('hex')}`;
    schemas.push(name);
    return name;
  };
  let schema: string;
  let a: RunningBaton;
  let b: RunningBaton;

  beforeAll(async () => {
    schema = freshSchema();
    const env = { BATON_LIMIT_IP_PER_MIN: 'off', BATON_DATABASE_URL: databaseUrl(schema) };
    a = await startBaton({ env });
    // Two instances of one deployment: same database, same issuer.
    b = await startBaton({ env: { ...env, BATON_ISSUER: a.url } });
  });
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    for (const name of schemas)
      await admin.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(name)} CASCADE`);
    await admin.end();
  });

  const post = (s: RunningBaton, path: string, body: unknown) =>
    fetch(`http://127.0.0.1:${s.port}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });

  async function login(email: string): Promise<{ refresh_token: string; access_token: string }> {
    expect((await post(a, '/auth/register', { email, password: 'correct horse battery' })).status).toBe(201);
    const res = await post(b, '/auth/login', { email, password: 'correct horse battery' });
    expect(res.status).toBe(200);
    return (await res.json()) as { refresh_token: string; access_token: string };
  }

  const refreshCounts = async () => {
    const texts = await Promise.all([a.metrics(), b.metrics()]);
    const sum = (outcome: string) =>
      texts.reduce((n, t) => n + metricValue(t, 'baton_refresh_total', { outcome }), 0);
    return { rotated: sum('rotated'), graceReplay: sum('grace_replay'), reuse: sum('reuse_detected') };
  };

  it('both are ready on postgres, with their tables in the chosen schema', async () => {
    for (const s of [a, b]) {
      const res = await fetch(`http://127.0.0.1:${s.port}/readyz`);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({
        status: 'ready',
        store: 'postgres',
        checks: { store: { status: 'up', dialect: 'postgres', latency_ms: expect.any(Number) } },
      });
    }
    const tables = await admin.query(
      `SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name`,
      [schema],
    );
    expect(tables.rows.map((r: { table_name: string }) => r.table_name)).toEqual([
      'baton_migrations',
      'clients',
      'dpop_proofs',
      'refresh_tokens',
      'security_events',
      'server_secrets',
      'sessions',
      'signing_keys',
      'trusted_devices',
      'users',
    ]);
  });

  it('20 concurrent refreshes of one token across both processes all get one and the same successor', async () => {
    const { refresh_token } = await login('race@example.com');
    const before = await refreshCounts();
    const responses = await Promise.all(
      Array.from({ length: 20 }, (_, i) => post(i % 2 ? a : b, '/auth/refresh', { refresh_token })),
    );
    const bodies = (await Promise.all(responses.map((r) => r.json()))) as { refresh_token: string }[];
    expect(responses.map((r) => r.status)).toEqual(Array(20).fill(200));
    const successors = new Set(bodies.map((x) => x.refresh_token));
    expect(successors.size).toBe(1);
    const [successor] = [...successors];
    expect(successor).not.toBe(refresh_token);
    // Exactly one of all those requests rotated, on one process or the other; the rest were grace replays.
    const after = await refreshCounts();
    expect(after.rotated - before.rotated).toBe(1);
    expect(after.graceReplay - before.graceReplay).toBe(19);
    // One successor row in the database too, not one per instance.
    const rows = await admin.query(
      `SELECT count(*)::int AS n FROM ${pg.escapeIdentifier(schema)}.refresh_tokens WHERE parent_id IS NOT NULL`,
    );
    expect(rows.rows[0]).toEqual({ n: 1 });
    // And the successor works on either process.
    expect((await post(a, '/auth/refresh', { refresh_token: successor })).status).toBe(200);
  });

  it('a token replayed on one process after its successor was used on the other revokes the session on both', async () => {
    const { refresh_token: rt1 } = await login('theft@example.com');
    const r2 = (await (await post(a, '/auth/refresh', { refresh_token: rt1 })).json()) as {
      refresh_token: string;
    };
    const r3Res = await post(b, '/auth/refresh', { refresh_token: r2.refresh_token });
    expect(r3Res.status).toBe(200);
    const r3 = (await r3Res.json()) as { refresh_token: string };
    const before = await refreshCounts();
    const replay = await post(b, '/auth/refresh', { refresh_token: rt1 });
    expect(replay.status).toBe(401);
    expect(((await replay.json()) as { error: string }).error).toBe('invalid_grant');
    expect((await refreshCounts()).reuse - before.reuse).toBe(1);
    // The thief's and the owner's newest token now fail everywhere.
    for (const s of [a, b]) {
      const res = await post(s, '/auth/refresh', { refresh_token: r3.refresh_token });
      expect(res.status).toBe(401);
      expect(((await res.json()) as { error: string }).error).toBe('invalid_grant');
    }
  });

  it('an access token issued by one process is accepted by the other (keys live in the store)', async () => {
    const { access_token } = await login('keys@example.com');
    const me = await fetch(`http://127.0.0.1:${a.port}/auth/me`, {
      headers: { authorization: `Bearer ${access_token}` },
    });
    expect(me.status).toBe(200);
  });

  it('three `baton migrate` processes on a fresh schema apply the steps once between them', async () => {
    const env = { BATON_DATABASE_URL: databaseUrl(freshSchema()) };
    const runs = await Promise.all([1, 2, 3].map(() => runCli(['migrate'], env)));
    expect(runs.map((r) => r.code)).toEqual([0, 0, 0]);
    const outputs = runs.map((r) => r.out.trim()).sort();
    expect(outputs).toEqual([
      `Applied ${postgresMigrations.length} migration(s)`,
      'Database is up to date',
      'Database is up to date',
    ]);
    for (const r of runs) expect(r.out).not.toContain(SECRET);
  });

  it('never prints the database URL or its password', () => {
    for (const s of [a, b]) {
      expect(s.output()).not.toContain(SECRET);
      expect(s.output()).not.toContain(SERVER);
    }
  });
});
