#!/usr/bin/env node
// `npm run bench`: Baton's refresh rotation against its baselines and peers, plus logins,
// verifications and memory. Writes bench/RESULTS.md and bench/results/rotations.svg.
//
//   npm run bench                      full run: 3 reps × 10 s × c=1,16,64,256, then the extras
//   npm run bench -- --quick           smoke run: 1 rep × 3 s × c=1,16, short extras
//   npm run bench -- rotations|logins|verify|memory   one part only
//   options: --reps N --duration S --warmup S --levels 1,16 --targets key,key --rss-duration S
//            --sessions N (memory figure) --no-write (print, do not write the files)
//            --cpu-prof DIR (each server writes a V8 CPU profile into DIR; implies --no-write,
//            since profiling slows the servers down)
//   experiment targets run only when --targets names them: baton-lean (Baton's token service
//   and store behind bare node:http, what the HTTP layer costs; see bench/baselines/baton-lean)
//
// Needs the built server (`npm run build`) and PostgreSQL at BENCH_POSTGRES_URL
// (default postgres://postgres@127.0.0.1:5432/test) for the PostgreSQL targets. The
// baton-postgres-before target is the server as it was before the speed work: the first run
// builds it from this clone's git history into BENCH_BUILDS_DIR (default ~/.cache/baton-bench;
// npm ci and a build, 85 s on this machine), and later runs reuse that build.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { checkBaton, checkScript, checkSeedAsWritten } from './lib/checks.mjs';
import { measureLogins, measureMemory, measureRssOverTime, measureVerify } from './lib/extras.mjs';
import { killAll, PINNING, profileServersInto, spawnNode, stop, waitForLine } from './lib/processes.mjs';
import { machine, markdown, summarize, svgChart } from './lib/report.mjs';
import { BATON_CLI, LOAD_CORE, SERVER_CORE, TARGETS, withPostgres } from './lib/targets.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    quick: { type: 'boolean', default: false },
    reps: { type: 'string' },
    duration: { type: 'string' },
    warmup: { type: 'string' },
    levels: { type: 'string' },
    targets: { type: 'string' },
    'rss-duration': { type: 'string' },
    sessions: { type: 'string' },
    note: { type: 'string' },
    'no-write': { type: 'boolean', default: false },
    'cpu-prof': { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (values.help) {
  // The usage is the comment at the top of this file.
  const { readFileSync } = await import('node:fs');
  const head = readFileSync(fileURLToPath(import.meta.url), 'utf8')
    .split('\n')
    .slice(1);
  const usage = head.slice(
    0,
    head.findIndex((l) => !l.startsWith('//')),
  );
  console.log(usage.map((l) => l.replace(/^\/\/ ?/, '')).join('\n'));
  process.exit(0);
}
if (values['cpu-prof'] !== undefined) {
  mkdirSync(values['cpu-prof'], { recursive: true });
  profileServersInto(values['cpu-prof']);
  values['no-write'] = true;
}
const PARTS = ['rotations', 'logins', 'verify', 'memory'];
const part = positionals[0];
if (part !== undefined && !PARTS.includes(part)) {
  console.error(`Unknown part "${part}": one of ${PARTS.join(', ')}`);
  process.exit(2);
}
const num = (v, d) => {
  if (v === undefined) return d;
  const n = Number(v);
  if (!(n > 0) || !Number.isFinite(n)) {
    console.error(`Expected a positive number, got "${v}"`);
    process.exit(2);
  }
  return n;
};
const quick = values.quick;
const opts = {
  reps: Math.round(num(values.reps, quick ? 1 : 3)),
  durationMs: num(values.duration, quick ? 3 : 10) * 1000,
  warmupMs: num(values.warmup, quick ? 1 : 2) * 1000,
  levels: (values.levels ?? (quick ? '1,16' : '1,16,64,256')).split(',').map((x) => Math.round(num(x))),
  // A 5-minute RSS run on its own (`memory`); inside the full run 60 s keeps it well under 30 min.
  rssSeconds: num(values['rss-duration'], quick ? 20 : part === 'memory' ? 300 : 60),
  sessions: Math.round(num(values.sessions, quick ? 10_000 : 100_000)),
  extrasSeconds: quick ? 2 : 5,
  note: values.note,
  loadSamples: [],
};
const keys = values.targets?.split(',');
const targets = keys ? TARGETS.filter((t) => keys.includes(t.key)) : TARGETS.filter((t) => !t.experiment);
if (keys && targets.length !== keys.length) {
  console.error(`Unknown target in "${values.targets}": ${TARGETS.map((t) => t.key).join(', ')}`);
  process.exit(2);
}
if (!existsSync(BATON_CLI)) {
  console.error(`${BATON_CLI} is missing: run \`npm run build\` first`);
  process.exit(2);
}

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    killAll();
    process.exit(130);
  });
}
process.on('exit', killAll);

const log = (...a) => console.error(`[bench ${new Date().toISOString().slice(11, 19)}]`, ...a);

/** One target, one repetition: fresh server, the load generator on its core, every level. */
async function runTarget(target, rep) {
  const n = Math.max(...opts.levels);
  opts.loadSamples.push(loadavg()[0]);
  const server = await target.start({ sessions: n });
  try {
    const worker = spawnNode([fileURLToPath(new URL('./lib/load-worker.mjs', import.meta.url))], {
      core: LOAD_CORE,
      stdin: 'pipe',
    });
    worker.child.stdin.end(
      JSON.stringify({
        protocol: target.protocol,
        url: server.url,
        levels: opts.levels,
        warmupMs: opts.warmupMs,
        durationMs: opts.durationMs,
        serverPid: server.pid,
        // The core the server is pinned to; unpinned, the whole machine is sampled.
        serverCore: PINNING ? SERVER_CORE : undefined,
        databaseCommand: target.databaseCommand,
        tokens: server.tokens,
        analyze: server.analyze,
        tag: `r${rep}`,
      }),
    );
    const perLevel = opts.warmupMs + opts.durationMs + 30_000;
    const m = await waitForLine(worker, /^\{"done":true\}\n/m, 300_000 + opts.levels.length * perLevel);
    await stop(worker);
    const out = worker.output();
    const rows = out
      .split('\n')
      .filter((l) => l.startsWith('{"c"'))
      .map((l) => ({ ...JSON.parse(l), target: target.key, rep }));
    if (!m) throw new Error(out);
    return rows;
  } finally {
    await server.stop();
  }
}

/** The PostgreSQL server's version and the settings that shape its figures. */
function postgresSettings() {
  return withPostgres(async (db) => {
    const names = ['autovacuum', 'fsync', 'synchronous_commit', 'shared_buffers', 'jit'];
    // shared_buffers comes in pages of 8 kB.
    const { rows } = await db.query(
      'SELECT name, setting FROM pg_settings WHERE name = ANY($1) ORDER BY name',
      [names],
    );
    const version = (await db.query('SHOW server_version')).rows[0].server_version;
    const settings = rows
      .map((r) =>
        r.name === 'shared_buffers'
          ? `${r.name} ${(Number(r.setting) * 8) / 1024} MiB`
          : `${r.name} ${r.setting}`,
      )
      .join(', ');
    return { version, settings };
  });
}

async function checks() {
  const out = {};
  const by = (key) => targets.find((t) => t.key === key);
  const run = async (name, fn) => {
    try {
      out[name] = await fn();
    } catch (err) {
      out[name] = { error: String(err?.message ?? err).split('\n')[0] };
    }
    log('check', name, JSON.stringify(out[name]));
  };
  for (const t of targets.filter((x) => x.baton))
    await run(t.name, () => checkBaton(t.db, t.protocol, t.cli));
  if (by('seed-fixed')) await run(by('seed-fixed').name, () => checkScript(by('seed-fixed'), {}));
  if (by('floor')) await run(by('floor').name, () => checkScript(by('floor'), { REUSE_GRACE_MS: '1000' }));
  if (by('oidc-provider')) await run(by('oidc-provider').name, () => checkScript(by('oidc-provider'), {}));
  if (by('seed-as-written')) await run('seed as written', () => checkSeedAsWritten(by('seed-as-written')));
  return out;
}

const started = new Date().toISOString();
const command = `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;
const samples = [];
let checkResults = {};
const extras = {};
try {
  if (part === undefined || part === 'rotations') {
    // Builds some targets need (an earlier commit's server), before anything is measured.
    for (const target of targets) await target.prepare?.(log);
    for (let rep = 1; rep <= opts.reps; rep++) {
      for (const target of targets) {
        log(`rep ${rep}/${opts.reps}: ${target.name}`);
        const rows = await runTarget(target, rep);
        for (const r of rows)
          log(
            `  c=${r.c} rot/s=${r.rotPerS.toFixed(0)} ok/s=${r.okPerS.toFixed(0)} p99=${r.p99?.toFixed(2)} ms errors=${r.errors} cpu=${r.cpuUsPerReq?.toFixed(0)} µs/req load-cpu=${r.loadCpuUsPerReq?.toFixed(0)} µs/req${r.dbCpuUsPerReq == null ? '' : ` db-cpu=${r.dbCpuUsPerReq.toFixed(0)} µs/req`}${r.coreIdle == null ? '' : ` core idle/steal/irq=${[r.coreIdle, r.coreSteal, r.coreIrq].map((x) => (100 * x).toFixed(0)).join('/')}%`}`,
          );
        samples.push(...rows);
      }
    }
    checkResults = await checks();
  }
  if (part === undefined || part === 'logins') {
    log('logins');
    extras.logins = await measureLogins({
      seconds: opts.extrasSeconds,
      reps: opts.reps,
      warmupSeconds: opts.extrasSeconds,
    });
    log(JSON.stringify(extras.logins));
  }
  if (part === undefined || part === 'verify') {
    log('verify');
    extras.verify = await measureVerify({ seconds: opts.extrasSeconds });
    log(JSON.stringify(extras.verify));
  }
  if (part === undefined || part === 'memory') {
    log(`memory: ${opts.sessions} sessions`);
    extras.memory = await measureMemory({ sessions: opts.sessions });
    log(JSON.stringify(extras.memory));
    log(`memory: RSS over ${opts.rssSeconds} s`);
    extras.rss = await measureRssOverTime({ seconds: opts.rssSeconds });
    log(JSON.stringify(extras.rss));
  }
} catch (err) {
  log('failed:', err?.stack ?? err);
  killAll();
  process.exitCode = 1;
}

const chart = !quick && part === undefined && samples.length > 0;
const info = machine(ROOT);
if (targets.some((t) => t.db === 'postgres') && (part === undefined || part === 'rotations'))
  info.postgres = await postgresSettings().catch(() => null);
const summary = summarize(samples, targets, opts.levels);
const md = markdown({
  info,
  command,
  started,
  finished: new Date().toISOString(),
  opts,
  targets,
  levels: opts.levels,
  summary,
  samples,
  checks: checkResults,
  extras,
  chart,
});
// The full run writes RESULTS.md and the chart; a single part writes results/<part>.md and a
// --quick smoke run results/quick.md (not committed), so neither overwrites the full results.
const mdFile = quick ? './results/quick.md' : part === undefined ? './RESULTS.md' : `./results/${part}.md`;
if (values['no-write'] || process.exitCode) {
  console.log(md);
} else {
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  writeFileSync(new URL(mdFile, import.meta.url), md);
  if (chart) {
    writeFileSync(
      new URL('./results/rotations.svg', import.meta.url),
      svgChart(summary, targets, opts.levels),
    );
  }
  log(`wrote bench/${mdFile.slice(2)}${chart ? ' and bench/results/rotations.svg' : ''}`);
}
killAll();
