#!/usr/bin/env node
// Instructions per refresh of `baton serve` on SQLite, counted by valgrind's callgrind over
// real HTTP: a repeatable figure on a machine whose timings drift by ±30 % (two runs of one
// build agree within about 2-5 %; JIT compilation still running inside the window is most of
// that). It counts user-space instructions only: not the kernel (syscalls, page faults) and
// not cache misses, so a change that saves syscalls shows in `core-rotation.mjs` and in the
// rotation benchmark, not here. Use it to compare two builds: run it on each, alternating.
//
//   npm run build && node bench/instructions.mjs [--dist packages/server/dist]
//        [--concurrency 16] [--refreshes 60 per session] [--warmup 400 per session]
//
// The server runs under valgrind with instrumentation off for its start, the logins (Argon2)
// and the warm-up, then on for the measured refreshes only (callgrind_control).
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Client } from 'undici';
import { freePort, waitReady } from './lib/processes.mjs';
import { protocols } from './lib/protocols.mjs';

const { values } = parseArgs({
  options: {
    dist: { type: 'string', default: fileURLToPath(new URL('../packages/server/dist', import.meta.url)) },
    concurrency: { type: 'string', default: '16' },
    refreshes: { type: 'string', default: '60' },
    warmup: { type: 'string', default: '400' },
  },
});
const dist = resolve(values.dist);
const concurrency = Number(values.concurrency);
const measured = Number(values.refreshes);
const warmup = Number(values.warmup);
try {
  execFileSync('valgrind', ['--version'], { stdio: 'ignore' });
} catch {
  console.error('valgrind is not installed (apt-get install -y valgrind)');
  process.exit(2);
}

const dir = mkdtempSync(join(tmpdir(), 'baton-instructions-'));
const port = await freePort();
const url = `http://127.0.0.1:${port}`;
const server = spawn(
  'valgrind',
  [
    '--tool=callgrind',
    // V8 writes and rewrites its machine code: valgrind must notice.
    '--smc-check=all-non-file',
    '--instr-atstart=no',
    `--callgrind-out-file=${join(dir, 'callgrind.out')}`,
    process.execPath,
    join(dist, 'cli/index.js'),
    'serve',
  ],
  {
    env: {
      ...process.env,
      BATON_PORT: String(port),
      BATON_HOST: '127.0.0.1',
      BATON_ISSUER: url,
      BATON_DATABASE_URL: `sqlite:${join(dir, 'baton.db')}`,
      BATON_LIMIT_IP_PER_MIN: 'off',
      BATON_LIMIT_LOGIN_FAILURES: 'off',
      BATON_LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  },
);
let stderr = '';
server.stderr.on('data', (d) => {
  stderr = (stderr + d).slice(-4000);
});
const exited = new Promise((r) => server.once('exit', r));
const clients = Array.from({ length: concurrency }, () => new Client(url, { connections: 1 }));

// The same requests as the rotation benchmark's `baton-sqlite /auth/refresh` target.
const { setup, refresh } = protocols['baton-auth'];

try {
  // Under valgrind the start takes a minute or two.
  await waitReady({ child: server, output: () => stderr }, `${url}/healthz`, 300_000);
  const tokens = [];
  for (const [i, client] of clients.entries()) tokens.push(await setup(client, i, 'instructions'));
  const refreshAll = (n) =>
    Promise.all(
      clients.map(async (client, i) => {
        for (let k = 0; k < n; k++) {
          const r = await refresh(client, tokens[i]);
          if (r.status !== 200) throw new Error(`refresh answered HTTP ${r.status}`);
          tokens[i] = r.next;
        }
      }),
    );
  await refreshAll(warmup);
  const control = (...args) =>
    execFileSync('callgrind_control', [...args, String(server.pid)], { stdio: 'ignore' });
  control('-i', 'on');
  await refreshAll(measured);
  control('-d');
  control('-i', 'off');
  // The dump requested above is the file whose trigger is "dump"; the one written at exit is not counted.
  const dump = readdirSync(dir)
    .filter((f) => f.startsWith('callgrind.out'))
    .map((f) => readFileSync(join(dir, f), 'utf8'))
    .find((text) => /^desc: Trigger: dump/m.test(text));
  const total = Number(dump?.match(/^totals: (\d+)/m)?.[1]);
  if (!Number.isFinite(total)) throw new Error('callgrind wrote no dump');
  const refreshes = concurrency * measured;
  console.log(
    `${dist}: ${refreshes} refreshes at c=${concurrency}, ${(total / refreshes / 1000).toFixed(1)}k instructions per refresh`,
  );
} finally {
  await Promise.all(clients.map((c) => c.close()));
  server.kill('SIGTERM');
  await exited;
  rmSync(dir, { recursive: true, force: true });
}
