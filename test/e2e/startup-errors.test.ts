import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, freePort } from './support/baton.js';
import { serviceAvailable } from './support/services.js';

/** A generous bound: every one of these must fail fast, and one used to hang at 100 % CPU. */
const BOUND_MS = 10_000;

const run = (env: Record<string, string>, args: string[] = ['serve'], uid?: number) => {
  const cwd = mkdtempSync(join(tmpdir(), 'baton-start-'));
  if (uid !== undefined) chmodSync(cwd, 0o777);
  return spawnSync(process.execPath, [CLI, ...args], {
    cwd,
    env: { PATH: process.env.PATH ?? '', BATON_PORT: '0', ...env },
    encoding: 'utf8',
    timeout: BOUND_MS,
    ...(uid !== undefined ? { uid, gid: uid } : {}),
  });
};

/** What every expected start-up failure looks like: bounded, the exit code, one plain message, no stack. */
function expectFailure(res: ReturnType<typeof run>, status: number, names: RegExp): void {
  // spawnSync sets `error` (ETIMEDOUT) when it had to kill a process that did not exit in time.
  expect(res.error, 'the process did not exit within the bound').toBeUndefined();
  expect(res.status, res.stderr).toBe(status);
  expect(res.stderr).toMatch(names);
  expect(res.stderr).not.toMatch(/\n\s+at /);
  expect(res.stderr).not.toMatch(/Error:/);
}

describe('start-up failures name the setting, say what to do, and never hang', () => {
  it('a SQLite path under a regular file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'baton-start-'));
    writeFileSync(join(dir, 'plain'), 'not a folder');
    const res = run({ BATON_DATABASE_URL: `sqlite:${join(dir, 'plain', 'x.db')}` });
    expectFailure(res, 2, /BATON_DATABASE_URL/);
    expect(res.stderr).toMatch(/is not a directory/);
    expect(res.stderr).not.toMatch(/EEXIST|ENOTDIR/);
  });

  it('a SQLite path under /etc/passwd', () => {
    const res = run({ BATON_DATABASE_URL: 'sqlite:/etc/passwd/x.db' });
    expectFailure(res, 2, /BATON_DATABASE_URL/);
    expect(res.stderr).toContain('/etc/passwd');
  });

  it('a SQLite path under /proc fails fast instead of spinning', () => {
    const res = run({ BATON_DATABASE_URL: 'sqlite:/proc/x/baton.db' });
    expectFailure(res, 2, /BATON_DATABASE_URL/);
  });

  it('a SQLite folder the server may not write to', () => {
    const dir = mkdtempSync(join(tmpdir(), 'baton-start-'));
    chmodSync(dir, 0o555);
    // Root writes anywhere: run the CLI as "nobody" then, so the permission really bites.
    const uid = process.getuid?.() === 0 ? 65534 : undefined;
    const res = run({ BATON_DATABASE_URL: `sqlite:${join(dir, 'sub', 'baton.db')}` }, ['serve'], uid);
    expectFailure(res, 2, /BATON_DATABASE_URL/);
    expect(res.stderr).toMatch(/permission/i);
  });

  it('BATON_PORT already in use', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as { port: number }).port;
    try {
      const res = run({ BATON_PORT: String(port), BATON_DATABASE_URL: 'sqlite::memory:' });
      expectFailure(res, 1, /BATON_PORT/);
      expect(res.stderr).toMatch(/in use/);
    } finally {
      blocker.close();
    }
  });

  it('a BATON_HOST that does not resolve', () => {
    const res = run({ BATON_HOST: 'no-such-host.invalid', BATON_DATABASE_URL: 'sqlite::memory:' });
    expectFailure(res, 2, /BATON_HOST/);
  });

  const bad: [string, string][] = [
    ['BATON_REDIS_URL', 'http://cache:6379'],
    ['BATON_REFRESH_IDLE_TTL', 'forever'],
    ['BATON_SESSION_MAX_TTL', '0'],
    ['BATON_LIMIT_LOGIN_FAILURES', '-1'],
    ['BATON_LOG_LEVEL', 'loud'],
    ['BATON_KEY_POLL_INTERVAL', 'often'],
    ['BATON_REQUEST_TIMEOUT', '1 minute'],
    ['BATON_HEADERS_TIMEOUT', '5x'],
    ['BATON_KEEP_ALIVE_TIMEOUT', 'never'],
    ['BATON_MAX_CONNECTIONS', 'many'],
    ['BATON_MAX_SESSIONS_PER_USER', '0'],
  ];
  for (const [name, value] of bad) {
    it(`${name}=${value}`, () => {
      expectFailure(run({ [name]: value }), 2, new RegExp(name));
    });
  }
});

const pgUp = await serviceAvailable('PostgreSQL', 5432);

describe.runIf(pgUp)('PostgreSQL start-up failures', () => {
  let deadPort: number;
  beforeAll(async () => {
    deadPort = await freePort();
  });
  afterAll(() => {});

  it('connection refused: exit 1, the variable named, the password masked', () => {
    const res = run({ BATON_DATABASE_URL: `postgres://baton:SECRET-pw@127.0.0.1:${deadPort}/test` });
    expectFailure(res, 1, /BATON_DATABASE_URL/);
    expect(res.stderr).toContain(`postgres://baton:***@127.0.0.1:${deadPort}/test`);
    expect(res.stderr).not.toContain('SECRET-pw');
    expect(res.stderr).toMatch(/refused/);
  });

  it('an unknown role (authentication failure): exit 2, the password masked', () => {
    const res = run({ BATON_DATABASE_URL: 'postgres://no_such_role_xyz:SECRET-pw@127.0.0.1:5432/test' });
    expectFailure(res, 2, /BATON_DATABASE_URL/);
    expect(res.stderr).not.toContain('SECRET-pw');
    expect(res.stderr).toMatch(/authentication|role/);
  });

  it('an unknown database: exit 2, says so', () => {
    const res = run({ BATON_DATABASE_URL: 'postgres://postgres:SECRET-pw@127.0.0.1:5432/no_such_db_xyz' });
    expectFailure(res, 2, /BATON_DATABASE_URL/);
    expect(res.stderr).toMatch(/no_such_db_xyz.*does not exist/);
    expect(res.stderr).not.toContain('SECRET-pw');
  });

  it('migrate reports the same way', () => {
    const res = run({ BATON_DATABASE_URL: `postgres://baton:SECRET-pw@127.0.0.1:${deadPort}/test` }, [
      'migrate',
    ]);
    expectFailure(res, 1, /BATON_DATABASE_URL/);
    expect(res.stderr).not.toContain('SECRET-pw');
  });
});
