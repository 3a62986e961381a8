#!/usr/bin/env node
// Rows and database size after a long refresh loop, before and after pruning
// (issue 12 item 1; the figures in docs/operations.md come from this script).
//
//   npm run build && node bench/pruning.mjs [--sqlite-only] [--json]
//
// Two workloads on a fresh database each, through core (the same code paths as
// /auth/refresh, without HTTP): one session refreshed 5,000 times, and 200
// sessions refreshed 25 times each. The clock is injected: refreshes are 1 s
// apart, then it moves on 2 h and `prune()` runs with a reuse-detection
// horizon of 1 h (every spent token but the chain's last two is past it), then
// 60 days on (every session has ended and is past its 30-day retention).
// SQLite: file size after VACUUM (page_count * page_size). PostgreSQL (at
// BENCH_POSTGRES_URL, default postgres://postgres@127.0.0.1:5432/test, in a
// schema of its own, dropped at the end): pg_total_relation_size of Baton's
// tables, after VACUUM FULL of those tables.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import pg from 'pg';
import { createTokenService } from '../packages/server/dist/core/index.js';
import { createPostgresStore, createSqliteStore } from '../packages/server/dist/store/index.js';

const { values } = parseArgs({
  options: { 'sqlite-only': { type: 'boolean', default: false }, json: { type: 'boolean', default: false } },
});
const PG_URL = process.env.BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const TABLES = [
  'users',
  'sessions',
  'refresh_tokens',
  'trusted_devices',
  'security_events',
  'signing_keys',
  'clients',
];
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

const WORKLOADS = [
  { name: '1 session × 5,000 refreshes', sessions: 1, refreshes: 5000 },
  { name: '200 sessions × 25 refreshes', sessions: 200, refreshes: 25 },
];

async function run(workload, db) {
  let t = Date.UTC(2026, 0, 1);
  const now = () => t;
  const service = createTokenService({
    store: db.store,
    issuer: 'https://auth.example.com',
    now,
    retention: { spentTokens: HOUR },
    maxSessionsPerUser: 1000,
  });
  await service.init();
  await service.register({ email: 'bench@example.com', password: 'correct horse battery' });
  const tokens = [];
  for (let s = 0; s < workload.sessions; s++) {
    tokens.push(
      (await service.login({ email: 'bench@example.com', password: 'correct horse battery' })).refreshToken,
    );
  }
  for (let r = 0; r < workload.refreshes; r++) {
    t += 1000;
    for (let s = 0; s < tokens.length; s++)
      tokens[s] = (await service.refresh({ refreshToken: tokens[s] })).refreshToken;
  }
  const stages = [{ stage: 'after the loop', ...(await db.measure()) }];
  t += 2 * HOUR;
  const spent = await service.prune();
  stages.push({ stage: 'pruned, 2 h later (spent tokens)', deleted: spent.deleted, ...(await db.measure()) });
  t += 60 * DAY;
  const ended = await service.prune();
  stages.push({
    stage: 'pruned, 60 d later (ended sessions)',
    deleted: ended.deleted,
    ...(await db.measure()),
  });
  return stages;
}

async function sqlite() {
  const dir = mkdtempSync(join(tmpdir(), 'baton-prune-bench-'));
  const file = join(dir, 'baton.db');
  const store = createSqliteStore({ filename: file });
  await store.migrate();
  const measure = async () => {
    const raw = new Database(file);
    try {
      raw.exec('VACUUM');
      const rows = Object.fromEntries(
        TABLES.map((n) => [n, raw.prepare(`SELECT COUNT(*) AS n FROM ${n}`).get().n]),
      );
      const bytes = raw.pragma('page_count', { simple: true }) * raw.pragma('page_size', { simple: true });
      return { rows, bytes };
    } finally {
      raw.close();
    }
  };
  return {
    store,
    measure,
    async dispose() {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function postgres() {
  const schema = `baton_prune_bench_${process.pid}_${Date.now()}`;
  const admin = new pg.Pool({ connectionString: PG_URL, max: 1 });
  const store = createPostgresStore({ connectionString: PG_URL, schema });
  await store.migrate();
  const q = (n) => `${pg.escapeIdentifier(schema)}.${n}`;
  const measure = async () => {
    const rows = {};
    let bytes = 0;
    for (const n of TABLES) {
      await admin.query(`VACUUM FULL ${q(n)}`);
      rows[n] = Number((await admin.query(`SELECT COUNT(*) AS n FROM ${q(n)}`)).rows[0].n);
      bytes += Number((await admin.query('SELECT pg_total_relation_size($1) AS b', [q(n)])).rows[0].b);
    }
    return { rows, bytes };
  };
  return {
    store,
    measure,
    async dispose() {
      await store.close();
      await admin.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(schema)} CASCADE`);
      await admin.end();
    },
  };
}

const results = [];
for (const [dialect, open] of [
  ['sqlite', sqlite],
  ...(values['sqlite-only'] ? [] : [['postgres', postgres]]),
]) {
  for (const w of WORKLOADS) {
    const db = await open();
    try {
      results.push({ dialect, workload: w.name, stages: await run(w, db) });
    } finally {
      await db.dispose();
    }
  }
}

if (values.json) process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
else {
  const kib = (b) => `${(b / 1024).toFixed(0)} KiB`;
  process.stdout.write(
    '| database | workload | stage | sessions | refresh_tokens | security_events | size |\n|---|---|---|---:|---:|---:|---:|\n',
  );
  for (const r of results)
    for (const s of r.stages)
      process.stdout.write(
        `| ${r.dialect} | ${r.workload} | ${s.stage} | ${s.rows.sessions} | ${s.rows.refresh_tokens} | ${s.rows.security_events} | ${kib(s.bytes)} |\n`,
      );
}
