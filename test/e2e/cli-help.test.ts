import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI } from './support/baton.js';

// A database URL that fails at once if a command touches it: --help must not.
const run = (args: string[]) =>
  spawnSync(process.execPath, [CLI, ...args], {
    cwd: mkdtempSync(join(tmpdir(), 'baton-help-')),
    env: { PATH: process.env.PATH ?? '', BATON_DATABASE_URL: 'sqlite:/proc/never/baton.db' },
    encoding: 'utf8',
    timeout: 10_000,
  });

const root = new URL('../../', import.meta.url);
const version = (
  JSON.parse(readFileSync(new URL('packages/server/package.json', root), 'utf8')) as { version: string }
).version;
/** Every variable cli/config.ts reads, straight from its source. */
const variables = [
  ...new Set(
    readFileSync(new URL('packages/server/src/cli/config.ts', root), 'utf8').match(/BATON_[A-Z_]+/g),
  ),
];

describe('baton --help and --version', () => {
  it('--version and -v print the server package version', () => {
    for (const flag of ['--version', '-v']) {
      const res = run([flag]);
      expect(res.status, res.stderr).toBe(0);
      expect(res.stdout.trim()).toBe(version);
    }
  });

  it('serve --help lists every setting with its flag, variable and default, and touches nothing', () => {
    for (const flag of ['--help', '-h']) {
      const res = run(['serve', flag]);
      expect(res.status, res.stderr).toBe(0);
      expect(res.stdout).toMatch(/^Usage: baton serve/);
      expect(variables.length).toBeGreaterThan(15);
      for (const name of variables) {
        const flagName = `--${name.slice('BATON_'.length).toLowerCase().replaceAll('_', '-')}`;
        const line = res.stdout.split('\n').find((l) => l.includes(flagName));
        expect(line, `${flagName} is listed`).toBeDefined();
        expect(res.stdout).toContain(name);
      }
      expect(res.stdout).toMatch(/--database-url[^\n]*\n?[^\n]*sqlite:\.\/data\/baton\.db/);
      expect(res.stdout).toMatch(/--access-ttl[^\n]*900/);
    }
  });

  const commands = [
    ['migrate'],
    ['users'],
    ['users', 'list'],
    ['users', 'disable'],
    ['sessions'],
    ['sessions', 'list'],
    ['sessions', 'revoke'],
    ['clients'],
    ['clients', 'create'],
    ['clients', 'list'],
    ['keys'],
    ['keys', 'rotate'],
    ['keys', 'list'],
    ['prune'],
    ['events'],
  ];
  for (const command of commands) {
    it(`${command.join(' ')} --help prints its usage and touches nothing`, () => {
      for (const flag of ['--help', '-h']) {
        const res = run([...command, flag]);
        expect(res.status, res.stderr).toBe(0);
        expect(res.stdout).toMatch(new RegExp(`^Usage: baton ${command[0]}`));
        expect(res.stderr).toBe('');
      }
    });
  }
});
