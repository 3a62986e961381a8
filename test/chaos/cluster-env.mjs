// The environment the cluster scenarios share in one run: a database, three
// instances, the fault-injecting balancer in front of them, the schedule of
// instance kills, and the instances' refresh counters. Every cluster scenario
// runs at the same time inside it, so theft control happens in the same run,
// under the same faults, as the population that must not be signed out.
import { probeCapabilities } from './capabilities.mjs';
import { createDatabase, DIST, freePort, startCluster } from './cluster.mjs';
import { deriveSeed, seededRandom } from './rng.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const OUTCOMES = ['rotated', 'grace_replay', 'reuse_detected', 'invalid'];

/** Sums `baton_refresh_total{outcome=…}` in Prometheus text. */
function refreshCounts(text) {
  const counts = Object.fromEntries(OUTCOMES.map((o) => [o, 0]));
  for (const line of text.split('\n')) {
    const m = /^baton_refresh_total\{([^}]*)\} (\S+)$/.exec(line);
    const outcome = m && /outcome="([^"]+)"/.exec(m[1])?.[1];
    if (outcome && outcome in counts) counts[outcome] += Number(m[2]);
  }
  return counts;
}

/**
 * Runs `scenarios` (already filtered to the cluster environment) on one database.
 * @param {object} opts
 * @param {'sqlite' | 'postgres'} opts.db
 * @param {import('./scenarios.mjs').Scenario[]} opts.scenarios
 * @param {number} opts.durationMs
 * @param {number} opts.sessions       the population's size
 * @param {number} opts.seed
 * @param {import('./balancer.mjs').FaultRates} opts.rates
 * @param {(line: string) => void} opts.log
 * @returns {Promise<import('./report.mjs').Row[]>}
 */
export async function runClusterEnvironment(opts) {
  const random = seededRandom(deriveSeed(opts.seed, `cluster-${opts.db}`));
  const database = await createDatabase(opts.db);
  const balancerPort = await freePort();
  const issuer = `http://localhost:${balancerPort}`;
  const graceMs = 10_000;
  const cluster = await startCluster({
    databaseUrl: database.url,
    issuer,
    count: 3,
    // Short access tokens make refreshes constant; the CLI warns that 4 s is unusual.
    env: { BATON_ACCESS_TTL: '4s', BATON_REUSE_GRACE: `${graceMs / 1000}s` },
  });
  const { startBalancer } = await import('./balancer.mjs');
  const balancer = await startBalancer({
    port: balancerPort,
    upstreams: cluster.ports,
    rates: opts.rates,
    seed: deriveSeed(opts.seed, `balancer-${opts.db}`),
  });
  const { openStore } = await import(DIST.server);
  const store = await openStore(database.url);
  const capabilities = await probeCapabilities(`http://127.0.0.1:${cluster.ports[0]}`);

  /** Latest counters per instance incarnation: a killed process takes its counters with it. */
  const scraped = new Map();
  async function scrape() {
    await Promise.all(
      cluster.instances.map(async (inst, i) => {
        if (!cluster.isUp(i)) return;
        try {
          const res = await fetch(`http://127.0.0.1:${inst.port}/metrics`);
          if (res.ok) scraped.set(`${i}:${inst.starts}`, refreshCounts(await res.text()));
        } catch {
          // being killed; the last scrape stands
        }
      }),
    );
  }
  const serverCounts = () => {
    const sum = Object.fromEntries(OUTCOMES.map((o) => [o, 0]));
    for (const c of scraped.values()) for (const o of OUTCOMES) sum[o] += c[o];
    return sum;
  };

  const env = {
    db: opts.db,
    issuer,
    balancer,
    cluster,
    store,
    graceMs,
    capabilities,
    durationMs: opts.durationMs,
    sessions: opts.sessions,
    seed: deriveSeed(opts.seed, opts.db),
    dir: database.dir,
    log: opts.log,
    liveUrls: () => cluster.ports.filter((_, i) => cluster.isUp(i)).map((p) => `http://127.0.0.1:${p}`),
    serverCounts,
    /** When an instance was down, as `{ from, to, mode }` (epoch ms), filled in as the kills happen. */
    killWindows: [],
  };

  /** @type {import('./report.mjs').Row[]} */
  const rows = [];
  const started = [];
  try {
    for (const scenario of opts.scenarios) {
      const missing = scenario.requires.filter((c) => !capabilities[c]);
      if (missing.length > 0) {
        rows.push({
          scenario: scenario.name,
          db: opts.db,
          status: 'not run',
          notes: [`needs ${missing.join(', ')}: not available yet`],
        });
        continue;
      }
      opts.log(`  [${opts.db}] starting ${scenario.name}`);
      try {
        started.push({ scenario, handle: await scenario.start(env) });
      } catch (error) {
        rows.push({
          scenario: scenario.name,
          db: opts.db,
          status: 'error',
          notes: [String(error.message ?? error)],
        });
      }
    }

    balancer.setFaults(true);
    const t0 = Date.now();
    const scrapeTimer = setInterval(() => void scrape(), 2000);
    // Two kills: the first passes the connection errors through to the clients,
    // the second is a balancer that marks the instance down and skips it.
    const kills = [
      {
        at: 0.25 + random() * 0.1,
        instance: Math.floor(random() * 3),
        downMs: 3000 + random() * 3000,
        mode: 'pass',
      },
      {
        at: 0.6 + random() * 0.1,
        instance: Math.floor(random() * 3),
        downMs: 3000 + random() * 3000,
        mode: 'skip',
      },
    ];
    const killNotes = [];
    for (const kill of kills) {
      const wait = t0 + kill.at * opts.durationMs - Date.now();
      if (wait > 0) await sleep(wait);
      await scrape();
      balancer.setDownMode(/** @type {'pass' | 'skip'} */ (kill.mode));
      await cluster.kill(kill.instance);
      const downAt = Date.now();
      opts.log(
        `  [${opts.db}] t=${((downAt - t0) / 1000).toFixed(0)}s SIGKILL instance ${kill.instance} (balancer: ${kill.mode})`,
      );
      await sleep(kill.downMs);
      await cluster.restart(kill.instance);
      env.killWindows.push({ from: downAt, to: Date.now(), mode: kill.mode });
      killNotes.push(
        `instance ${kill.instance} SIGKILLed at ${((downAt - t0) / 1000).toFixed(0)} s, back after ${((Date.now() - downAt) / 1000).toFixed(1)} s (balancer ${kill.mode === 'pass' ? 'passed errors through' : 'skipped it'})`,
      );
    }
    const rest = t0 + opts.durationMs - Date.now();
    if (rest > 0) await sleep(rest);
    balancer.setFaults(false);
    clearInterval(scrapeTimer);

    for (const { scenario, handle } of started) {
      const row = await handle.stop();
      rows.push({
        scenario: scenario.name,
        db: opts.db,
        status: 'run',
        ...row,
        notes: [...(row.notes ?? [])],
      });
    }
    await scrape();
    const counts = serverCounts();
    const f = balancer.stats.faults;
    const shared = [
      `faults injected (refresh / other): reset ${f.refresh.reset}/${f.other.reset}, lost ${f.refresh.lost}/${f.other.lost}, held ${balancer.stats.faults.refresh.hold}/${f.other.hold}, delayed ${f.refresh.delay}/${f.other.delay}; upstream errors ${balancer.stats.upstreamErrors}, skipped down ${balancer.stats.skippedDown}`,
      `server refresh outcomes (all instances, theft control included): rotated ${counts.rotated}, grace_replay ${counts.grace_replay}, reuse_detected ${counts.reuse_detected}, invalid ${counts.invalid}`,
      ...killNotes,
    ];
    for (const row of rows) if (row.status === 'run' && row.shared) row.notes.push(...shared);
    return rows;
  } catch (error) {
    opts.log(cluster.output());
    throw error;
  } finally {
    balancer.setFaults(false);
    await balancer.close();
    await store.close();
    await cluster.stop();
    await database.drop();
  }
}
