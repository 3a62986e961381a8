#!/usr/bin/env node
// `npm run chaos`: Baton's promise under faults. Nobody is signed out by
// accident, calls keep working, and a stolen refresh token is still caught.
//
//   npm run chaos                          full run (about 6 min): both databases, every scenario
//   npm run chaos -- --quick               the shortened CI run (about 2 min)
//   npm run chaos -- --help                the options (USAGE below)
//
// Needs the built packages (`npm run build`); PostgreSQL at CHAOS_POSTGRES_URL
// (default postgres://postgres@127.0.0.1:5432/test), Chromium at CHROMIUM_PATH
// (default /usr/bin/chromium). Exits 1 when any scenario misses its bar.
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { parseArgs } from 'node:util';
import { CLI, DIST, POSTGRES_URL } from './cluster.mjs';
import { runClusterEnvironment } from './cluster-env.mjs';
import { formatTable, misses } from './report.mjs';
import { SCENARIOS } from './scenarios.mjs';

const USAGE = `npm run chaos [-- options]
  --quick                 the shortened CI run (about 2 min); without it, the full run (about 6 min)
  --duration S            seconds per environment
  --seed N                replay a run (every run prints its seed)
  --db sqlite|postgres|both
  --only name,name        run only these scenarios
  --sessions N            sessions per population scenario (2..200, default 30)
  --require-all           a scenario that cannot run is a miss
  --rate-lost P --rate-hold P --rate-reset P --rate-delay P   fault rates per request, 0..1`;

const OPTIONS = {
  help: { type: 'boolean', default: false },
  quick: { type: 'boolean', default: false },
  duration: { type: 'string' },
  seed: { type: 'string' },
  db: { type: 'string', default: 'both' },
  only: { type: 'string' },
  sessions: { type: 'string' },
  'require-all': { type: 'boolean', default: false },
  'rate-lost': { type: 'string' },
  'rate-hold': { type: 'string' },
  'rate-reset': { type: 'string' },
  'rate-delay': { type: 'string' },
};
let values;
try {
  ({ values } = parseArgs({ options: OPTIONS }));
} catch (err) {
  console.error(`${err.message}\n\n${USAGE}`);
  process.exit(2);
}
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}

function fail(message) {
  console.error(message);
  process.exit(2);
}
const number = (text, fallback, { min = 0, max = Number.POSITIVE_INFINITY } = {}) => {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isFinite(n) || n < min || n > max) fail(`Expected a number in [${min}, ${max}], got "${text}"`);
  return n;
};

const quick = values.quick;
const seed = Math.floor(
  number(values.seed, Math.floor(Math.random() * 2 ** 31), { min: 0, max: 2 ** 32 - 1 }),
);
const clusterMs = number(values.duration, quick ? 35 : 120, { min: 10 }) * 1000;
const browserMs = values.duration ? clusterMs : (quick ? 25 : 75) * 1000;
const sessions = Math.round(number(values.sessions, 30, { min: 2, max: 200 }));
const rates = {
  reset: number(values['rate-reset'], 0.02, { max: 1 }),
  lost: number(values['rate-lost'], 0.02, { max: 1 }),
  // A quick run sees fewer refreshes: a higher rate still holds a few of them past the window.
  hold: number(values['rate-hold'], quick ? 0.01 : 0.005, { max: 1 }),
  delay: number(values['rate-delay'], 0.2, { max: 1 }),
};
if (rates.reset + rates.lost + rates.hold + rates.delay > 1) fail('The fault rates add up to more than 1');
if (!['sqlite', 'postgres', 'both'].includes(values.db))
  fail(`--db: sqlite, postgres or both (got "${values.db}")`);
const only = values.only?.split(',').map((s) => s.trim());
for (const name of only ?? [])
  if (!SCENARIOS.some((s) => s.name === name))
    fail(`Unknown scenario "${name}": one of ${SCENARIOS.map((s) => s.name).join(', ')}`);
for (const file of [CLI, DIST.client, DIST.server])
  if (!existsSync(file)) fail(`${file} is missing: run \`npm run build\` first`);

const selected = SCENARIOS.filter((s) => !only || only.includes(s.name));
const requireAll = values['require-all'];
const log = (line) => console.log(line);

function reachable(port) {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const done = (ok) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

const startedAt = Date.now();
log(
  `chaos: seed ${seed}${quick ? ' (quick)' : ''}; ${clusterMs / 1000} s per database, browser ${browserMs / 1000} s; ` +
    `faults per request: reset ${rates.reset}, lost ${rates.lost}, held 12 s ${rates.hold}, delayed 0-2 s ${rates.delay}`,
);
/** @type {import('./report.mjs').Row[]} */
const rows = [];
const clusterScenarios = selected.filter((s) => s.environment === 'cluster');
const dbs = values.db === 'both' ? ['sqlite', 'postgres'] : [values.db];
for (const db of clusterScenarios.length > 0 ? dbs : []) {
  if (db === 'postgres' && !(await reachable(Number(new URL(POSTGRES_URL).port || 5432)))) {
    // Locally a missing PostgreSQL skips its runs; in CI a missing service is a failure.
    const status = process.env.CI === 'true' ? 'error' : 'not run';
    log(`[${status}] PostgreSQL is not reachable at ${new URL(POSTGRES_URL).host}`);
    for (const s of clusterScenarios)
      rows.push({ scenario: s.name, db, status, notes: ['PostgreSQL not reachable'] });
    continue;
  }
  log(`cluster on ${db}: 3 instances behind the faulty balancer`);
  rows.push(
    ...(await runClusterEnvironment({
      db,
      scenarios: clusterScenarios,
      durationMs: clusterMs,
      sessions,
      seed,
      rates,
      log,
    })),
  );
}
for (const scenario of selected.filter((s) => s.environment === 'browser')) {
  const { probeCapabilities } = await import('./capabilities.mjs');
  const capabilities = await probeCapabilities();
  const missing = scenario.requires.filter((c) => !capabilities[c]);
  if (missing.length > 0) {
    const status = process.env.CI === 'true' ? 'error' : 'not run';
    rows.push({ scenario: scenario.name, db: 'sqlite', status, notes: [`needs ${missing.join(', ')}`] });
    continue;
  }
  log(`browser: ${scenario.name}`);
  try {
    const row = await scenario.run({ durationMs: browserMs, seed, log });
    rows.push({ scenario: scenario.name, db: 'sqlite', status: 'run', notes: [], ...row });
  } catch (error) {
    rows.push({
      scenario: scenario.name,
      db: 'sqlite',
      status: 'error',
      notes: [String(error.stack ?? error)],
    });
  }
}

log('');
log(formatTable(rows, { requireAll }));
const missed = rows.filter((row) => misses(row, { requireAll }).length > 0);
log('');
log(
  `chaos: seed ${seed}, ${((Date.now() - startedAt) / 1000).toFixed(0)} s, ` +
    `${missed.length === 0 ? 'every scenario met its bar' : `${missed.length} row(s) missed`}`,
);
process.exit(missed.length === 0 ? 0 : 1);
