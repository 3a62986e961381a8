// The registry of chaos scenarios. A scenario names the environment it runs
// in (the faulty three-instance cluster, or the browser), the capabilities it
// needs (a scenario whose capability has not landed is listed as "not run",
// never as a pass), and how to start it; stopping it returns its row.
import { runBrowserTabs } from './browser-tabs.mjs';
import { startPopulation } from './population.mjs';
import { deriveSeed, seededRandom } from './rng.mjs';
import { boundTheftAttempt, unboundTheftAttempt } from './theft.mjs';

/**
 * @typedef {object} Scenario
 * @property {string} name
 * @property {'cluster' | 'browser'} environment
 * @property {('server-dpop' | 'client-dpop' | 'chromium')[]} requires
 * @property {string} description
 * @property {(env: any) => Promise<{ stop(): Promise<Partial<import('./report.mjs').Row>> }>} [start]  cluster scenarios
 * @property {(opts: any) => Promise<Partial<import('./report.mjs').Row>>} [run]                         browser scenarios
 */

const HOUR = 3_600_000;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The unbound token-mode population: nobody may be signed out by the faults. */
function startUnboundPopulation(env) {
  return startFaultedPopulation(env, false);
}

async function startFaultedPopulation(env, dpop) {
  const random = seededRandom(deriveSeed(env.seed, 'clock-jumps'));
  const population = await startPopulation({
    baseUrl: env.balancer.url,
    dir: env.dir,
    sessions: env.sessions,
    instancesPerSession: 3,
    seed: env.seed,
    dpop,
  });
  const refreshBefore = env.balancer.stats.requests.refresh;
  const t0 = Date.now();
  await population.run();
  // A laptop that slept for 3 hours, and one whose clock is set back an hour
  // (NTP): both well inside the 14-day idle limit, so both sessions must live.
  const forward = Math.floor(random() * env.sessions);
  const back = (forward + 1 + Math.floor(random() * (env.sessions - 1))) % env.sessions;
  const timers = [
    setTimeout(() => population.jumpClock(forward, 3 * HOUR), env.durationMs * 0.45),
    setTimeout(() => population.jumpClock(back, -HOUR), env.durationMs * 0.55),
  ];
  return {
    async stop() {
      for (const t of timers) clearTimeout(t);
      const minutes = (Date.now() - t0) / 60_000;
      // The balancer's refresh count is shared by every population running at once (bound and
      // unbound run side by side), so the per-session rate is this population's own count: the
      // refreshes its clients made and got an answer to.
      const throughBalancer = env.balancer.stats.requests.refresh - refreshBefore;
      const stats = await population.stop();
      const spurious = stats.signedOut.filter((e) => e.source === 'local');
      const signedOutSessions = new Set(stats.signedOut.map((e) => e.session));
      const failed = stats.calls - stats.ok;
      // Binding as asked, on both sides: each client instance says so (client.dpop.bound), and the
      // store has the session bound to a key (or not). Without this, a bound population whose
      // logins silently fell back to unbound sessions would pass without testing DPoP at all.
      const wrongClients = stats.binding.filter((b) => b.bound !== dpop);
      const sessionIds = [...new Set(stats.binding.map((b) => b.sessionId).filter((id) => id !== undefined))];
      const stored = await Promise.all(sessionIds.map((id) => env.store.findSession(id)));
      const wrongStored = stored.filter((s) => s === null || (s.dpopJkt !== undefined) !== dpop);
      // A call that failed while (or just after) an instance was down, by how the balancer handled it.
      const during = (mode) =>
        stats.failedAt.filter((at) =>
          env.killWindows.some((w) => w.mode === mode && at >= w.from && at <= w.to + 3000),
        ).length;
      const notes = [
        `${env.sessions} sessions × 3 client instances (one per worker thread, file storage + file lock), clocks ±10 min, session ${forward} jumped +3 h, session ${back} set back 1 h`,
        `calls ${stats.calls}, first attempt failed ${stats.firstAttemptFailed}, failed after retries ${failed} ${JSON.stringify(stats.failed)}; of those, while an instance was down: ${during('pass')} with errors passed through, ${during('skip')} with it skipped`,
        `client refreshFailed events by code ${JSON.stringify(stats.refreshFailed)}; refreshes through the balancer (every population) ${throughBalancer} by status ${JSON.stringify(env.balancer.stats.refreshStatus)}; this population's own ${stats.refreshedLocal}`,
      ];
      notes.push(
        `DPoP binding (${dpop ? 'bound' : 'unbound'} expected): ${stats.binding.length - wrongClients.length}/${stats.binding.length} client instances and ${stored.length - wrongStored.length}/${stored.length} stored sessions as expected`,
      );
      if (wrongClients.length > 0)
        notes.push(`binding not as expected: ${wrongClients.map((b) => JSON.stringify(b)).join(' ')}`);
      if (stats.unhandledCount > 0)
        notes.push(
          `${stats.unhandledCount} unhandled rejection(s) in the clients' realms: ${stats.unhandled.join(' | ')}`,
        );
      if (signedOutSessions.size > 0)
        notes.push(
          `signed out: sessions ${[...signedOutSessions].join(', ')} (${spurious.map((e) => e.reason).join(', ')})`,
        );
      return {
        shared: true,
        unhandled: stats.unhandledCount,
        wrongBinding: wrongClients.length + wrongStored.length,
        signOuts: signedOutSessions.size,
        calls: stats.calls,
        failed,
        refreshesPerSessionMin: stats.refreshedLocal / env.sessions / minutes,
        notes,
      };
    },
  };
}

/** Runs `attempt` in `chains` back-to-back loops until stopped; tallies thefts. */
function theftLoop(chains, attempt) {
  let running = true;
  const tally = { attempted: 0, detected: 0, accepted: 0, errors: [], misses: [] };
  const loops = Array.from({ length: chains }, async (_, c) => {
    await sleep(c * 5000);
    while (running) {
      try {
        const r = await attempt();
        tally.attempted++;
        if (r.detected) tally.detected++;
        else tally.misses.push(JSON.stringify(r));
        if (r.accepted) tally.accepted++;
      } catch (error) {
        // An attempt the environment broke (every instance down at once) is not a theft attempted.
        tally.errors.push(String(error.message ?? error));
        await sleep(1000);
      }
    }
  });
  return {
    async stop() {
      running = false;
      await Promise.all(loops);
      const notes = [
        ...tally.misses.map((m) => `missed: ${m}`),
        ...tally.errors.map((e) => `attempt not made: ${e}`),
      ];
      return {
        acceptedReplays: tally.accepted,
        thefts: { attempted: tally.attempted, detected: tally.detected },
        notes,
      };
    },
  };
}

/** @type {Scenario[]} */
export const SCENARIOS = [
  {
    name: 'unbound-population',
    environment: 'cluster',
    requires: [],
    description:
      'token-mode sessions through the faulty balancer: lost and held answers, resets, delays, SIGKILLed instances, skewed and jumping clocks',
    start: startUnboundPopulation,
  },
  {
    name: 'unbound-theft',
    environment: 'cluster',
    requires: [],
    description:
      'a spent unbound refresh token replayed after the grace window: refused, the session revoked, refresh_token_reuse recorded',
    start: async (env) => theftLoop(2, () => unboundTheftAttempt(env)),
  },
  {
    name: 'dpop-theft',
    environment: 'cluster',
    requires: ['server-dpop'],
    description:
      'a DPoP-bound refresh token stolen without the key, tried at /auth/refresh, /auth/logout and /oauth/revoke (no proof, then another key): each refused with its code and recorded per action, the session stays live, the owner refreshes and then signs out with the key',
    start: async (env) => theftLoop(1, () => boundTheftAttempt(env)),
  },
  {
    name: 'dpop-population',
    environment: 'cluster',
    requires: ['server-dpop', 'client-dpop'],
    description:
      'DPoP-bound token-mode sessions under the same faults: a lost answer is recovered at any age, so no sign-out even past the grace window',
    start: (env) => startFaultedPopulation(env, true),
  },
  {
    name: 'browser-tabs',
    environment: 'browser',
    requires: ['chromium'],
    description:
      '8 Chromium tabs on the demo page (cookie mode): the network toggled offline and back, tabs frozen and resumed',
    run: runBrowserTabs,
  },
];
