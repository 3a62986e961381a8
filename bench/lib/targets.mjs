// The servers a run compares. Each `start()` launches a fresh process on a fresh database,
// pinned to core 0, on a port from the OS, and returns what the load generator needs plus a
// `stop()` that also removes the database.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { buildAt, cliAt } from './build-at.mjs';
import { freePort, spawnNode, stop, waitForLine, waitReady } from './processes.mjs';

const here = (p) => fileURLToPath(new URL(p, import.meta.url));
/** The built CLI (`npm run build`). */
export const BATON_CLI = process.env.BATON_DIST
  ? `${process.env.BATON_DIST}/cli/index.js`
  : here('../../packages/server/dist/cli/index.js');
/** The PostgreSQL database a run may create schemas in. */
export const POSTGRES_URL = process.env.BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
/** Where every server of the bench runs, and every load generator: one core each when there are two. */
export const SERVER_CORE = 0;
export const LOAD_CORE = 1;

function tempDir() {
  return mkdtempSync(join(tmpdir(), 'baton-bench-'));
}

/** Runs `fn` with one client connected to `url` (default: the bench's database), then closes it. */
export async function withPostgres(fn, url = POSTGRES_URL) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

function dropSchema(schema) {
  return withPostgres((db) => db.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`));
}

/**
 * The commit the speed work started from: the server as it was measured when that work was
 * asked for (PostgreSQL then did one rotation in six round trips). The `-before` targets run
 * it in the same run as today's server, so "N × as fast as before" is a ratio of one run.
 */
export const BEFORE_SPEED_WORK = '7c08f4479bb0b3b5756f2302814b3d801998f47d';
const BEFORE_CLI = cliAt(BEFORE_SPEED_WORK);

/**
 * Starts `baton serve` from the built CLI (`cli`: another build's, e.g. {@link cliAt}).
 * `db` is 'sqlite' or 'postgres'.
 */
export async function startBaton({ db, env = {}, cli = BATON_CLI }) {
  const port = await freePort();
  const dir = tempDir();
  const schema = `bench_${randomBytes(6).toString('hex')}`;
  const databaseUrl =
    db === 'postgres' ? `${POSTGRES_URL}?schema=${schema}` : `sqlite:${join(dir, 'baton.db')}`;
  const proc = spawnNode([cli, 'serve'], {
    core: SERVER_CORE,
    env: {
      BATON_PORT: String(port),
      BATON_HOST: '127.0.0.1',
      BATON_ISSUER: `http://127.0.0.1:${port}`,
      BATON_DATABASE_URL: databaseUrl,
      BATON_LIMIT_IP_PER_MIN: 'off',
      BATON_LIMIT_LOGIN_FAILURES: 'off',
      BATON_LOG_LEVEL: 'warn',
      ...env,
    },
  });
  const url = `http://127.0.0.1:${port}`;
  const cleanup = async () => {
    await stop(proc);
    rmSync(dir, { recursive: true, force: true });
    if (db === 'postgres') await dropSchema(schema).catch(() => {});
  };
  try {
    await waitReady(proc, `${url}/healthz`);
  } catch (err) {
    await cleanup();
    throw err;
  }
  // For PostgreSQL, what the load generator needs to ANALYZE the schema after each warm-up.
  const analyze = db === 'postgres' ? { url: POSTGRES_URL, schema } : undefined;
  return { url, pid: proc.pid, proc, dir, databaseUrl, analyze, stop: cleanup };
}

/** Starts a baseline script that prints `listening <port>` when ready. */
async function startScript(script, env, { sessions } = {}) {
  const port = await freePort();
  const dir = tempDir();
  const proc = spawnNode([here(script)], {
    core: SERVER_CORE,
    env: { PORT: String(port), DB_PATH: join(dir, 'bench.db'), SESSIONS: String(sessions ?? 1), ...env },
  });
  const cleanup = async () => {
    await stop(proc);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const tokens = script.includes('oidc-provider') ? waitForLine(proc, /tokens (\[.*\])\n/, 120_000) : null;
    await waitForLine(proc, /listening \d+/, 120_000);
    const url = `http://127.0.0.1:${port}`;
    return {
      url,
      pid: proc.pid,
      proc,
      tokens: tokens ? JSON.parse((await tokens)[1]) : undefined,
      stop: cleanup,
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

/** Every target, in the order they run within a repetition. */
export const TARGETS = [
  {
    name: 'baton-sqlite /auth/refresh',
    key: 'baton-sqlite',
    baton: true,
    db: 'sqlite',
    protocol: 'baton-auth',
    start: () => startBaton({ db: 'sqlite' }),
  },
  {
    name: 'baton-sqlite /oauth/token',
    key: 'baton-sqlite-oauth',
    baton: true,
    db: 'sqlite',
    protocol: 'baton-oauth',
    start: () => startBaton({ db: 'sqlite' }),
  },
  {
    name: 'baton-sqlite seed route',
    key: 'baton-sqlite-seed-route',
    baton: true,
    db: 'sqlite',
    protocol: 'baton-seed',
    start: () => startBaton({ db: 'sqlite' }),
  },
  {
    name: 'baton-postgres /auth/refresh',
    key: 'baton-postgres',
    baton: true,
    db: 'postgres',
    protocol: 'baton-auth',
    // The database server's own CPU is reported beside Baton's.
    databaseCommand: 'postgres',
    start: () => startBaton({ db: 'postgres' }),
  },
  {
    name: 'baton-postgres /auth/refresh at 7c08f44, before the speed work',
    key: 'baton-postgres-before',
    baton: true,
    db: 'postgres',
    protocol: 'baton-auth',
    databaseCommand: 'postgres',
    // Built once outside the repository before the first repetition (about 90 s the first time).
    cli: BEFORE_CLI,
    prepare: (log) => buildAt(BEFORE_SPEED_WORK, log),
    start: () => startBaton({ db: 'postgres', cli: BEFORE_CLI }),
  },
  {
    name: 'seed as written',
    key: 'seed-as-written',
    protocol: 'seed',
    start: () => startScript('../baselines/seed/server.mjs', { SEED_VARIANT: 'as-written' }),
  },
  {
    name: 'seed fixed',
    key: 'seed-fixed',
    protocol: 'seed',
    start: () => startScript('../baselines/seed/server.mjs', { SEED_VARIANT: 'fixed' }),
    startWith: (env) => startScript('../baselines/seed/server.mjs', { SEED_VARIANT: 'fixed', ...env }),
  },
  {
    name: 'oidc-provider 9',
    key: 'oidc-provider',
    protocol: 'oidc-provider',
    start: ({ sessions }) => startScript('../baselines/oidc-provider/server.mjs', {}, { sessions }),
    startWith: (env) => startScript('../baselines/oidc-provider/server.mjs', env, { sessions: 1 }),
  },
  {
    name: 'floor (node:http + SQLite + Ed25519)',
    key: 'floor',
    protocol: 'floor',
    start: () => startScript('../baselines/floor/server.mjs', {}),
    startWith: (env) => startScript('../baselines/floor/server.mjs', env),
  },
  {
    // A what-if (see its server.mjs): run only when named in --targets.
    name: 'what-if: Baton core on bare node:http',
    key: 'baton-lean',
    protocol: 'floor',
    experiment: true,
    start: () => startScript('../baselines/baton-lean/server.mjs', {}),
  },
];
