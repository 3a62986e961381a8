// Baton's server as it was at an earlier commit, built once and kept outside the repository
// (so no linter, type check or test run of this checkout ever sees it), for targets that
// compare the server with itself before a change, in the same run and on the same machine.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** Where the builds live; one directory per commit. */
export const BUILDS_DIR = process.env.BENCH_BUILDS_DIR ?? join(homedir(), '.cache', 'baton-bench');

/** The built CLI of `commit` (a full hash); it exists once {@link buildAt} has run. */
export function cliAt(commit) {
  return join(BUILDS_DIR, commit, 'packages', 'server', 'dist', 'cli', 'index.js');
}

/**
 * Builds the server of `commit` unless it is built already: `git archive` of that commit
 * into a fresh directory, `npm ci` (its own lockfile; the `prepare` script builds), then
 * the directory is renamed into place, so a build that failed half-way is never used.
 * Takes about 90 s the first time on this machine; `log` says so.
 */
export function buildAt(commit, log = () => {}) {
  const cli = cliAt(commit);
  if (existsSync(cli)) return cli;
  try {
    execFileSync('git', ['-C', ROOT, 'cat-file', '-e', `${commit}^{commit}`], { stdio: 'ignore' });
  } catch {
    throw new Error(
      `commit ${commit} is not in this clone's history (a shallow clone?): run \`git fetch --unshallow\` or leave this target out with --targets`,
    );
  }
  const dir = join(BUILDS_DIR, commit);
  const tmp = `${dir}.partial-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  log(`building the server at ${commit.slice(0, 7)} into ${dir} (once; npm ci and a build)`);
  try {
    const tar = execFileSync('git', ['-C', ROOT, 'archive', '--format=tar', commit], {
      maxBuffer: 1 << 30,
    });
    execFileSync('tar', ['-x', '-C', tmp], { input: tar });
    execFileSync('npm', ['ci', '--no-audit', '--no-fund', '--loglevel=error'], {
      cwd: tmp,
      stdio: ['ignore', 'ignore', 'inherit'],
      env: { ...process.env, CI: 'true' },
    });
    if (!existsSync(join(tmp, 'packages', 'server', 'dist', 'cli', 'index.js')))
      throw new Error(`npm ci at ${commit.slice(0, 7)} did not build packages/server/dist`);
    rmSync(dir, { recursive: true, force: true });
    renameSync(tmp, dir);
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
  return cli;
}
