// Three (or any number of) `baton serve` processes of one deployment: one
// issuer, one database (a SQLite file, or a fresh PostgreSQL schema dropped
// afterwards), each on its own loopback port. Instances can be killed with
// SIGKILL and restarted on the same port and database, as a crashed pod is.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The built CLI (`npm run build`). */
export const CLI = fileURLToPath(new URL('../../packages/server/dist/cli/index.js', import.meta.url));
/** The built packages the suite drives. */
export const DIST = {
  client: fileURLToPath(new URL('../../packages/client/dist/index.js', import.meta.url)),
  fileStorage: fileURLToPath(new URL('../../packages/client/dist/file-storage.js', import.meta.url)),
  server: fileURLToPath(new URL('../../packages/server/dist/index.js', import.meta.url)),
};
/** Where the PostgreSQL runs get their schema (override with CHAOS_POSTGRES_URL). */
export const POSTGRES_URL = process.env.CHAOS_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** A TCP port that was free a moment ago. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      srv.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitHealthy(port, child, output) {
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`baton serve exited with ${child.exitCode}:\n${output()}`);
    try {
      const res = await fetch(`http://127.0.0.1:${port}/healthz`);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`baton serve on ${port} did not become healthy within 30 s:\n${output()}`);
    }
    await sleep(100);
  }
}

/**
 * Creates the database for one run: a temp folder with a SQLite file, or a
 * fresh schema on PostgreSQL (`?schema=chaos_<random>`).
 * @param {'sqlite' | 'postgres'} db
 */
export async function createDatabase(db) {
  if (db === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'baton-chaos-'));
    return {
      url: `sqlite:${join(dir, 'baton.db')}`,
      dir,
      async drop() {
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  const schema = `chaos_${randomBytes(6).toString('hex')}`;
  const dir = mkdtempSync(join(tmpdir(), 'baton-chaos-'));
  return {
    url: `${POSTGRES_URL}?schema=${schema}`,
    dir,
    async drop() {
      const { default: pg } = await import('pg');
      const client = new pg.Client({ connectionString: POSTGRES_URL });
      await client.connect();
      try {
        await client.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(schema)} CASCADE`);
      } finally {
        await client.end();
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Starts `count` instances on one database with one issuer.
 * @param {object} opts
 * @param {string} opts.databaseUrl
 * @param {string | ((ports: number[]) => string)} opts.issuer  the balancer's URL: every instance signs for it
 * @param {number} opts.count
 * @param {Record<string, string>} [opts.env]
 */
export async function startCluster(opts) {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first`);
  const ports = [];
  for (let i = 0; i < opts.count; i++) ports.push(await freePort());
  /** @type {{ port: number, child: import('node:child_process').ChildProcess | null, log: string[], starts: number }[]} */
  const issuer = typeof opts.issuer === 'function' ? opts.issuer(ports) : opts.issuer;
  const instances = ports.map((port) => ({ port, child: null, log: [], starts: 0 }));

  async function start(i) {
    const inst = instances[i];
    const env = {
      PATH: process.env.PATH ?? '',
      BATON_PORT: String(inst.port),
      BATON_HOST: '127.0.0.1',
      BATON_ISSUER: issuer,
      BATON_DATABASE_URL: opts.databaseUrl,
      BATON_LOG_LEVEL: 'warn',
      BATON_LIMIT_IP_PER_MIN: 'off',
      ...opts.env,
    };
    const child = spawn(process.execPath, [CLI, 'serve'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    inst.child = child;
    inst.starts++;
    const keep = (d) => {
      inst.log.push(d.toString());
      // Only the tail matters when a run goes wrong; a long run must not hoard output.
      if (inst.log.length > 200) inst.log.splice(0, inst.log.length - 200);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    await waitHealthy(inst.port, child, () => inst.log.join(''));
  }

  function stopOne(child, signal) {
    if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
    const exited = new Promise((r) => child.once('exit', r));
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    return exited.then(() => clearTimeout(timer));
  }

  // The first start migrates the database; the others then start together.
  await start(0);
  await Promise.all(instances.slice(1).map((_, i) => start(i + 1)));

  return {
    ports,
    instances,
    /** SIGKILL: no drain, no clean shutdown, requests in flight are cut. */
    async kill(i) {
      await stopOne(instances[i].child, 'SIGKILL');
    },
    async restart(i) {
      await start(i);
    },
    isUp(i) {
      const c = instances[i].child;
      return c !== null && c.exitCode === null && c.signalCode === null;
    },
    /** The tail of every instance's output (warnings, errors). */
    output() {
      return instances
        .map((inst, i) => `--- instance ${i} (port ${inst.port})\n${inst.log.join('')}`)
        .join('\n');
    },
    async stop() {
      await Promise.all(instances.map((inst) => stopOne(inst.child, 'SIGTERM')));
    },
  };
}
