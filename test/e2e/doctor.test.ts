import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { postgresMigrations } from '../../packages/server/src/store/postgres/postgres-migrations.js';
import { sqliteMigrations } from '../../packages/server/src/store/sqlite/sqlite-migrations.js';
import { CLI, freePort, startBaton } from './support/baton.js';
import { serviceAvailable } from './support/services.js';

const cwd = mkdtempSync(join(tmpdir(), 'baton-doctor-'));
afterAll(() => rmSync(cwd, { recursive: true, force: true }));

const run = (args: string[], env: Record<string, string> = {}) =>
  spawnSync(process.execPath, [CLI, ...args], {
    cwd,
    env: { PATH: process.env.PATH ?? '', ...env },
    encoding: 'utf8',
    timeout: 30_000,
  });

interface Report {
  ok: boolean;
  checks: { check: string; status: 'ok' | 'warn' | 'fail'; message: string }[];
}
const statusOf = (report: Report, check: string) => report.checks.find((c) => c.check === check)?.status;
const json = (args: string[], env: Record<string, string> = {}) => {
  const res = run([...args, '--json'], env);
  return { status: res.status, report: JSON.parse(res.stdout) as Report, stderr: res.stderr };
};

describe('baton doctor (SQLite)', () => {
  const db = `sqlite:${join(cwd, 'data', 'baton.db')}`;

  it('--help says what it checks and how it exits', () => {
    const res = run(['doctor', '--help']);
    expect(res.status).toBe(0);
    expect(res.stdout).toMatch(/Usage: baton doctor/);
    expect(res.stdout).toMatch(/Exit status/);
  });

  it('a fresh database: pending migrations are a warning with advice, and none is applied', () => {
    const first = run(['doctor', '--database-url', db]);
    expect(first.status).toBe(0);
    expect(first.stdout).toMatch(
      new RegExp(`^warn +migrations: pending ${sqliteMigrations.length} .*run baton migrate$`, 'm'),
    );
    expect(first.stdout).toMatch(/^ok +clock: not applicable/m);
    // Doctor applied nothing: asking again finds the same.
    expect(json(['doctor', '--database-url', db]).report.checks).toContainEqual(
      expect.objectContaining({ check: 'migrations', status: 'warn' }),
    );
  });

  it('a migrated database with a signing key is ok throughout; --json is one document', async () => {
    expect(run(['migrate', '--database-url', db]).status).toBe(0);
    expect(run(['keys', 'rotate', '--now', '--database-url', db]).status).toBe(0);
    const { status, report } = json(['doctor', '--database-url', db]);
    expect(status).toBe(0);
    expect(report.ok).toBe(true);
    expect(report.checks.map((c) => c.check)).toEqual([
      'configuration',
      'issuer',
      'metrics',
      'database',
      'migrations',
      'autovacuum',
      'clock',
      'signing keys',
    ]);
    expect(report.checks.every((c) => c.status === 'ok')).toBe(true);
    expect(report.checks.find((c) => c.check === 'signing keys')!.message).toMatch(/signs/);
  });

  it('names non-default settings, never a secret value, and warns about an open /metrics', () => {
    const { status, report } = json(['doctor', '--database-url', db, '--host', '0.0.0.0'], {
      BATON_METRICS_TOKEN: 'a-very-secret-scrape-token',
      BATON_ACCESS_TTL: '10m',
    });
    expect(status).toBe(0);
    const config = report.checks.find((c) => c.check === 'configuration')!.message;
    expect(config).toMatch(/BATON_ACCESS_TTL=10m/);
    expect(config).toMatch(/BATON_METRICS_TOKEN \(set\)/);
    expect(JSON.stringify(report)).not.toContain('a-very-secret-scrape-token');
    expect(statusOf(report, 'metrics')).toBe('ok');
    expect(statusOf(json(['doctor', '--database-url', db, '--host', '0.0.0.0']).report, 'metrics')).toBe(
      'warn',
    );
  });

  it('plain http on a public issuer fails (exit 1); a trailing slash warns', () => {
    const http = json(['doctor', '--database-url', db, '--issuer', 'http://auth.example.com']);
    expect(http.status).toBe(1);
    expect(http.report.ok).toBe(false);
    expect(statusOf(http.report, 'issuer')).toBe('fail');
    const slash = json(['doctor', '--database-url', db, '--issuer', 'https://auth.example.com/']);
    expect(slash.status).toBe(0);
    expect(statusOf(slash.report, 'issuer')).toBe('warn');
  });

  it('an invalid setting fails (exit 1) naming it', () => {
    const { status, report } = json(['doctor', '--database-url', db], { BATON_ACCESS_TTL: 'soon' });
    expect(status).toBe(1);
    expect(report.checks).toEqual([
      expect.objectContaining({
        check: 'configuration',
        status: 'fail',
        message: expect.stringMatching(/BATON_ACCESS_TTL/),
      }),
    ]);
  });

  it('an unreachable Redis is a warning (limits count per process), a reachable one ok', async () => {
    const closed = await freePort();
    const down = json([
      'doctor',
      '--database-url',
      db,
      '--redis-url',
      `redis://:hunter2@127.0.0.1:${closed}`,
    ]);
    expect(down.status).toBe(0);
    expect(statusOf(down.report, 'redis')).toBe('warn');
    expect(JSON.stringify(down.report)).not.toContain('hunter2');
    if (await serviceAvailable('Redis', 6379)) {
      const up = json(['doctor', '--database-url', db, '--redis-url', 'redis://127.0.0.1:6379']);
      expect(statusOf(up.report, 'redis')).toBe('ok');
    }
  });
});

const postgresUp = await serviceAvailable('PostgreSQL', 5432);

describe.runIf(postgresUp)('baton doctor (PostgreSQL)', () => {
  const admin = new pg.Pool({ connectionString: 'postgres://postgres@127.0.0.1:5432/test', max: 1 });
  const schema = `doctor_${randomBytes(6).toString('hex')}`;
  const db = `postgres://postgres@127.0.0.1:5432/test?schema=${schema}`;
  afterAll(async () => {
    await admin.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(schema)} CASCADE`);
    await admin.end();
  });

  it('a fresh schema warns with the pending count and applies nothing; the clock is compared', async () => {
    const { status, report } = json(['doctor', '--database-url', db]);
    expect(status).toBe(0);
    const migrations = report.checks.find((c) => c.check === 'migrations')!;
    expect(migrations.status).toBe('warn');
    expect(migrations.message).toMatch(new RegExp(`pending ${postgresMigrations.length} `));
    // Same machine: the clocks agree.
    expect(report.checks.find((c) => c.check === 'clock')).toMatchObject({
      status: 'ok',
      message: expect.stringMatching(/ms (ahead of|behind) the database/),
    });
    const tables = await admin.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema]);
    expect(tables.rowCount).toBe(0);
  });

  it('once migrated and keyed, every check is ok, autovacuum as this server has it', async () => {
    expect(run(['migrate', '--database-url', db]).status).toBe(0);
    expect(run(['keys', 'rotate', '--now', '--database-url', db]).status).toBe(0);
    const { status, report } = json(['doctor', '--database-url', db]);
    expect(status).toBe(0);
    expect(report.checks.filter((c) => c.check !== 'autovacuum').every((c) => c.status === 'ok')).toBe(true);
    const on = (await admin.query('SHOW autovacuum')).rows[0].autovacuum === 'on';
    expect(report.checks.find((c) => c.check === 'autovacuum')).toMatchObject(
      on
        ? { status: 'ok', message: 'on' }
        : {
            status: 'warn',
            message: expect.stringMatching(/^PostgreSQL runs with autovacuum off: .*ANALYZE/),
          },
    );
  });

  it('baton serve says at start when autovacuum is off, and only then', async () => {
    const server = await startBaton({ env: { BATON_DATABASE_URL: db } });
    try {
      const on = (await admin.query('SHOW autovacuum')).rows[0].autovacuum === 'on';
      const warned = /^baton: warning: PostgreSQL runs with autovacuum off: /m.test(server.output());
      expect(warned).toBe(!on);
    } finally {
      await server.stop();
    }
  });

  it('an unreachable database fails with exit 1, the password masked', async () => {
    const closed = await freePort();
    const { status, report } = json([
      'doctor',
      '--database-url',
      `postgres://postgres:hunter2@127.0.0.1:${closed}/test`,
    ]);
    expect(status).toBe(1);
    expect(statusOf(report, 'database')).toBe('fail');
    expect(JSON.stringify(report)).not.toContain('hunter2');
  });
});
