import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The built CLI; `npm test` builds it first. */
export const CLI = fileURLToPath(new URL('../../../packages/server/dist/cli/index.js', import.meta.url));

/** A Baton server process started by a test. */
export interface RunningBaton {
  /** Base URL and issuer, e.g. `http://localhost:41234`. */
  url: string;
  port: number;
  /** Folder holding the SQLite file (`baton.db`). */
  dataDir: string;
  databaseUrl: string;
  child: ChildProcess;
  /** Output the process wrote so far (stdout and stderr). */
  output(): string;
  /** Raw `/metrics` text. */
  metrics(): Promise<string>;
  /** Stops the process (SIGTERM, then SIGKILL after 5 s). */
  stop(): Promise<void>;
}

/** Options of {@link startBaton}. */
export interface StartBatonOptions {
  /** Extra `BATON_*` variables (they win over the defaults below). */
  env?: Record<string, string>;
  /** Reuse a data folder (e.g. a second process on the same SQLite file). */
  dataDir?: string;
}

/** A TCP port that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Reads one counter value out of Prometheus text, e.g. `metricValue(text, 'baton_refresh_total', {outcome: 'rotated'})`. */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  const want = Object.entries(labels);
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{([^}]*)\})? (.+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries(
      (m[2] ?? '')
        .split(',')
        .filter(Boolean)
        .map((kv) => {
          const [k, v] = kv.split('=');
          return [k!, (v ?? '').replace(/^"|"$/g, '')];
        }),
    );
    if (want.every(([k, v]) => have[k] === v)) return Number(m[3]);
  }
  return 0;
}

/**
 * Starts the real CLI (`baton serve`) on a fresh SQLite file and waits until
 * `/healthz` answers. The issuer is `http://localhost:<port>`, which is also
 * the default allowed origin for cookie mode.
 */
export async function startBaton(opts: StartBatonOptions = {}): Promise<RunningBaton> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first`);
  const port = await freePort();
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'baton-e2e-'));
  const url = `http://localhost:${port}`;
  const databaseUrl = `sqlite:${join(dataDir, 'baton.db')}`;
  const env = {
    ...process.env,
    BATON_PORT: String(port),
    BATON_HOST: '127.0.0.1',
    BATON_ISSUER: url,
    BATON_DATABASE_URL: databaseUrl,
    BATON_LOG_LEVEL: 'warn',
    ...opts.env,
  };
  const child = spawn(process.execPath, [CLI, 'serve'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`baton serve exited with ${child.exitCode}:\n${out}`);
    try {
      const res = await fetch(`http://127.0.0.1:${port}/healthz`);
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`baton serve did not become healthy within 20 s:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }

  return {
    url,
    port,
    dataDir,
    databaseUrl,
    child,
    output: () => out,
    metrics: async () => (await fetch(`http://127.0.0.1:${port}/metrics`)).text(),
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Runs the CLI to completion without blocking the event loop (several may run at once); env is all it gets besides PATH. */
export function runCli(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, out }));
  });
}

/**
 * Two `baton serve` processes on one SQLite file with one issuer (the
 * deployment of many instances, in small), and a registered user.
 */
export async function startPairWithUser(
  env: Record<string, string>,
  user: { email: string; password: string },
): Promise<[RunningBaton, RunningBaton]> {
  const a = await startBaton({ env });
  const b = await startBaton({ env: { ...env, BATON_ISSUER: a.url }, dataDir: a.dataDir });
  const res = await fetch(`http://127.0.0.1:${a.port}/auth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(user),
  });
  if (res.status !== 201) throw new Error(`registering the test user answered ${res.status}`);
  return [a, b];
}
