import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sqliteMigrations } from '../../packages/server/src/store/sqlite/sqlite-migrations.js';
import { CLI, freePort } from './support/baton.js';

const run = (
  args: string[],
  env: Record<string, string> = {},
  cwd = mkdtempSync(join(tmpdir(), 'baton-cli-')),
) =>
  spawnSync(process.execPath, [CLI, ...args], {
    cwd,
    env: { PATH: process.env.PATH ?? '', ...env },
    encoding: 'utf8',
    timeout: 20_000,
  });

describe('baton CLI', () => {
  it('prints usage', () => {
    const res = run(['--help']);
    expect(res.status).toBe(0);
    expect(res.stdout).toMatch(/serve/);
    expect(res.stdout).toMatch(/migrate/);
  });

  const bad: [Record<string, string>, RegExp][] = [
    [{ BATON_PORT: 'eighty' }, /BATON_PORT/],
    [{ BATON_ACCESS_TTL: '15 minutes' }, /BATON_ACCESS_TTL/],
    [{ BATON_ACCESS_TTL: '0' }, /BATON_ACCESS_TTL/],
    [{ BATON_REUSE_GRACE: '-5s' }, /BATON_REUSE_GRACE/],
    [{ BATON_ISSUER: 'not a url' }, /BATON_ISSUER/],
    [{ BATON_DATABASE_URL: 'mysql://root:hunter2@db/x' }, /BATON_DATABASE_URL/],
    [{ BATON_ALLOWED_ORIGINS: 'https://ok.example, ftp://nope' }, /BATON_ALLOWED_ORIGINS/],
    [{ BATON_LIMIT_IP_PER_MIN: 'lots' }, /BATON_LIMIT_IP_PER_MIN/],
    [{ BATON_TRUST_PROXY: 'everyone' }, /BATON_TRUST_PROXY/],
    [{ BATON_SIGNING_ALG: 'HS256' }, /BATON_SIGNING_ALG/],
  ];
  for (const [env, message] of bad) {
    it(`refuses ${JSON.stringify(env)} with a message naming the setting`, () => {
      const res = run(['serve'], env);
      expect(res.status).toBe(2);
      expect(res.stderr).toMatch(message);
      // A database URL may carry a password: it is never echoed.
      expect(res.stderr).not.toContain('hunter2');
    });
  }

  it('flags mirror the variables, and unknown flags are refused', () => {
    expect(run(['serve', '--access-ttl', 'soon']).stderr).toMatch(/BATON_ACCESS_TTL/);
    const unknown = run(['serve', '--colour', 'blue']);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toMatch(/Unknown flag --colour/);
  });

  it('migrate creates the data folder and database, then reports it is up to date', () => {
    const cwd = mkdtempSync(join(tmpdir(), 'baton-cli-'));
    const first = run(['migrate'], {}, cwd);
    expect(first.status, first.stderr).toBe(0);
    expect(first.stdout).toMatch(new RegExp(`Applied ${sqliteMigrations.length} migration`));
    expect(existsSync(join(cwd, 'data', 'baton.db'))).toBe(true);
    expect(run(['migrate'], {}, cwd).stdout).toMatch(/up to date/);
  });

  it('serve with the defaults (as `npm start` runs it) answers /healthz and shuts down cleanly on SIGTERM', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'baton-cli-'));
    const port = await freePort();
    const child = spawn(process.execPath, [CLI, 'serve'], {
      cwd,
      env: { PATH: process.env.PATH ?? '', BATON_PORT: String(port) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    try {
      let healthy = false;
      for (let i = 0; i < 100 && !healthy; i++) {
        await new Promise((r) => setTimeout(r, 100));
        healthy = await fetch(`http://127.0.0.1:${port}/healthz`).then(
          (r) => r.ok,
          () => false,
        );
      }
      expect(healthy).toBe(true);
      expect(out).toContain(`issuer http://localhost:${port}`);
      expect(existsSync(join(cwd, 'data', 'baton.db'))).toBe(true);
      const page = await fetch(`http://127.0.0.1:${port}/`);
      expect(page.headers.get('content-type')).toMatch(/text\/html/);
    } finally {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    }
  });
});
