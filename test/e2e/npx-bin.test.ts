import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../', import.meta.url));
const { version } = JSON.parse(readFileSync(`${root}packages/server/package.json`, 'utf8')) as {
  version: string;
};

describe('npx baton in the repository', () => {
  it('resolves to this workspace’s bin without the network (the registry has an unrelated "baton")', () => {
    const res = spawnSync('npx', ['--no-install', 'baton', '--version'], {
      cwd: root,
      env: { ...process.env, npm_config_offline: 'true', npm_config_yes: 'false' },
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(res.status, res.stderr).toBe(0);
    expect(res.stdout.trim()).toBe(version);
  });
});
