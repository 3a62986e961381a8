#!/usr/bin/env node
// The closed-loop load generator, run as its own process (pinned to core 1 by the runner).
// Reads one JSON job on stdin, prints one JSON result line per concurrency level on stdout.
//
// Each virtual client has its own keep-alive connection (undici Client) and its own session,
// opened once during setup; then it chains refresh after refresh, always sending the refresh
// token the previous response returned. Per level: a warm-up (not measured), then a fixed
// window in which every request's latency, status and the server's CPU time are recorded.
// With `analyze` ({ url, schema }: a PostgreSQL target) the schema's tables are ANALYZEd
// between the warm-up and the window, as autovacuum would have by then (see analyzeSchema).
import { performance } from 'node:perf_hooks';
import { Client } from 'undici';
import { commandCpuSample, coreShares, coreTicks, cpuSinceMicros, treeCpuMicros } from './processes.mjs';
import { protocols } from './protocols.mjs';
import { withPostgres } from './targets.mjs';

const MAX_REQUESTS_PER_LOOP = 5_000_000;
const job = JSON.parse(
  await new Promise((resolve) => {
    let s = '';
    process.stdin.on('data', (d) => {
      s += d;
    });
    process.stdin.on('end', () => resolve(s));
  }),
);
const protocol = protocols[job.protocol];
if (!protocol) throw new TypeError(`unknown protocol ${job.protocol}`);
const n = Math.max(...job.levels);

const clients = Array.from(
  { length: n },
  () =>
    new Client(job.url, {
      pipelining: 1,
      headersTimeout: 15_000,
      bodyTimeout: 15_000,
      keepAliveTimeout: 60_000,
    }),
);

async function setup() {
  if (protocol.setup === null) {
    if (!Array.isArray(job.tokens) || job.tokens.length < n)
      throw new Error('the target handed over too few tokens');
    return job.tokens.slice(0, n);
  }
  const tokens = new Array(n);
  let next = 0;
  // Logins are Argon2-bound on Baton: at most `setupParallel` at a time, before anything is measured.
  await Promise.all(
    Array.from({ length: Math.min(n, job.setupParallel ?? 2) }, async () => {
      while (next < n) {
        const i = next++;
        tokens[i] = await protocol.setup(clients[i], i, job.tag);
      }
    }),
  );
  return tokens;
}

/** Runs `c` virtual clients for `ms`; returns the raw record of what happened. */
async function runLoops(tokens, c, ms, record) {
  const latencies = record ? new Float64Array(1 << 20) : null;
  let count = 0;
  const stats = { ok: 0, rotated: 0, errors: 0, byStatus: {} };
  const push = (x) => {
    if (!latencies) return;
    if (count === latencies.length) return; // bounded: beyond 1 M samples the tail is dropped
    latencies[count++] = x;
  };
  const end = performance.now() + ms;
  const cpu0 = record ? treeCpuMicros(job.serverPid) : 0;
  const db0 = record && job.databaseCommand ? commandCpuSample(job.databaseCommand) : null;
  const core0 = record ? coreTicks(job.serverCore) : null;
  const t0 = performance.now();
  const own0 = process.cpuUsage();
  await Promise.all(
    Array.from({ length: c }, async (_, i) => {
      for (let k = 0; k < MAX_REQUESTS_PER_LOOP && performance.now() < end; k++) {
        const sent = tokens[i];
        const t = performance.now();
        let status = 0;
        let nextToken;
        try {
          ({ status, next: nextToken } = await protocol.refresh(clients[i], sent));
        } catch {
          status = 0; // network error or timeout
        }
        push(performance.now() - t);
        if (status >= 200 && status < 300) {
          stats.ok++;
          if (typeof nextToken === 'string' && nextToken !== sent) {
            stats.rotated++;
            tokens[i] = nextToken;
          }
        } else {
          stats.errors++;
          stats.byStatus[status] = (stats.byStatus[status] ?? 0) + 1;
        }
      }
    }),
  );
  const elapsedMs = performance.now() - t0;
  const own = process.cpuUsage(own0);
  const cpu1 = record ? treeCpuMicros(job.serverPid) : 0;
  const db1 = record && job.databaseCommand ? commandCpuSample(job.databaseCommand) : null;
  const core1 = record ? coreTicks(job.serverCore) : null;
  return {
    ...stats,
    elapsedMs,
    latencies: latencies?.subarray(0, count),
    cpuMicros: cpu1 - cpu0,
    loadCpuMicros: own.user + own.system,
    dbCpuMicros: db0 && db1 ? cpuSinceMicros(db0, db1) : null,
    core: coreShares(core0, core1),
  };
}

/**
 * ANALYZE every table of the target's schema. A fresh schema has no statistics, and a
 * connection's cached generic plans are the ones it made while its tables were tiny (a
 * batch's lookup then scans a session's whole token chain); on a server with autovacuum on,
 * autoanalyze replaces them within a minute, and on this machine's PostgreSQL autovacuum may
 * be off (RESULTS.md says which). ANALYZE invalidates the cached plans, so the window runs on
 * plans made with statistics, as a running deployment does.
 */
function analyzeSchema({ url, schema }) {
  return withPostgres(async (db) => {
    const { rows } = await db.query('SELECT tablename FROM pg_tables WHERE schemaname = $1', [schema]);
    for (const { tablename } of rows) await db.query(`ANALYZE "${schema}"."${tablename}"`);
  }, url);
}

function percentile(sorted, q) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
}

try {
  const tokens = await setup();
  for (const c of job.levels) {
    await runLoops(tokens, c, job.warmupMs, false);
    if (job.analyze) await analyzeSchema(job.analyze);
    const r = await runLoops(tokens, c, job.durationMs, true);
    const sorted = r.latencies.sort();
    const done = r.ok + r.errors;
    const line = {
      c,
      requests: done,
      ok: r.ok,
      rotated: r.rotated,
      errors: r.errors,
      byStatus: r.byStatus,
      elapsedMs: r.elapsedMs,
      okPerS: (r.ok * 1000) / r.elapsedMs,
      rotPerS: (r.rotated * 1000) / r.elapsedMs,
      p50: percentile(sorted, 0.5),
      p95: percentile(sorted, 0.95),
      p99: percentile(sorted, 0.99),
      cpuUsPerReq: done > 0 ? r.cpuMicros / done : null,
      loadCpuUsPerReq: done > 0 ? r.loadCpuMicros / done : null,
      dbCpuUsPerReq: done > 0 && r.dbCpuMicros !== null ? r.dbCpuMicros / done : null,
      // How the server's core spent the window besides this server's own process.
      coreIdle: r.core?.idle ?? null,
      coreSteal: r.core?.steal ?? null,
      coreIrq: r.core?.irq ?? null,
    };
    process.stdout.write(`${JSON.stringify(line)}\n`);
  }
  process.stdout.write(`${JSON.stringify({ done: true })}\n`);
} finally {
  await Promise.allSettled(clients.map((cl) => cl.destroy()));
}
