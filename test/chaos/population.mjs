// The "must not sign out" population in token mode: N sessions, each with one
// client instance in every worker thread (so several instances per session in
// separate realms, sharing one file storage and its lock).
import { join } from 'node:path';
import { inspect } from 'node:util';
import { Worker } from 'node:worker_threads';
import { DIST } from './cluster.mjs';
import { deriveSeed, seededRandom } from './rng.mjs';

const WORKER = new URL('./client-worker.mjs', import.meta.url);

/**
 * Starts the workers, creates the sessions (faults must be off) and lets
 * every instance adopt them.
 * @param {object} opts
 * @param {string} opts.baseUrl
 * @param {string} opts.dir            folder for the session files
 * @param {number} opts.sessions
 * @param {number} opts.instancesPerSession   one worker thread per instance
 * @param {number} opts.seed
 * @param {number} [opts.maxSkewMs]    clocks are off by up to this much either way (default 10 min)
 * @param {number} [opts.thinkMs]      pause between one client's calls (default 1 000)
 */
export async function startPopulation(opts) {
  // Both populations (bound and unbound) may run at once on one cluster: their accounts and files differ.
  const kind = opts.dpop ? 'bound' : 'unbound';
  const random = seededRandom(deriveSeed(opts.seed, opts.dpop ? 'population-dpop' : 'population'));
  const maxSkewMs = opts.maxSkewMs ?? 600_000;
  const tag = Math.floor(random() * 1e9).toString(36);
  const sessions = Array.from({ length: opts.sessions }, (_, i) => ({
    email: `chaos-${kind}-${tag}-${i}@example.com`,
    password: `chaos password ${tag} ${i}`,
    storagePath: join(opts.dir, `${kind}-session-${i}.json`),
    storageKey: `chaos:${kind}:${i}`,
  }));
  const offsets = new SharedArrayBuffer(8 * opts.sessions);
  const clock = new Float64Array(offsets);
  for (let i = 0; i < opts.sessions; i++) clock[i] = Math.round((random() * 2 - 1) * maxSkewMs);

  const workers = [];
  const inbox = [];
  for (let w = 0; w < opts.instancesPerSession; w++) {
    const worker = new Worker(WORKER, {
      workerData: {
        baseUrl: opts.baseUrl,
        sessions,
        offsets,
        workerIndex: w,
        seed: deriveSeed(opts.seed, `worker-${w}`),
        thinkMs: opts.thinkMs ?? 1000,
        appTimeoutMs: 15_000,
        appAttempts: 4,
        dpop: opts.dpop ?? false,
        dist: { client: DIST.client, fileStorage: DIST.fileStorage },
      },
    });
    const queue = [];
    const waiters = [];
    worker.on('message', (msg) => {
      if (msg.type === 'error') console.error(`worker ${w}: ${msg.message}`);
      const waiter = waiters.shift();
      if (waiter) waiter(msg);
      else queue.push(msg);
    });
    const crash = (why) => {
      // Whoever waits for this worker gets the crash instead of waiting forever.
      const msg = { type: 'error', message: why };
      for (const waiter of waiters.splice(0)) waiter(msg);
      queue.push(msg);
    };
    worker.on('error', (error) => crash(`crashed: ${inspect(error, { depth: 3 })}`));
    worker.on('exit', (code) => crash(`exited with ${code}`));
    workers.push(worker);
    inbox.push({
      next: () =>
        new Promise((resolve) => (queue.length > 0 ? resolve(queue.shift()) : waiters.push(resolve))),
    });
  }
  /** Sends `type` and waits for the answer of type `want` from worker `w`. */
  async function ask(w, type, want) {
    workers[w].postMessage({ type });
    for (;;) {
      const msg = await inbox[w].next();
      if (msg.type === want) return msg;
      if (msg.type === 'error') throw new Error(`worker ${w}: ${msg.message}`);
    }
  }
  await Promise.all(workers.map((_, w) => inbox[w].next()));
  await ask(0, 'login', 'loggedIn');
  const adopted = await Promise.all(workers.slice(1).map((_, w) => ask(w + 1, 'adopt', 'adopted')));
  const missing = adopted.flatMap((a) => a.missing);
  if (missing.length > 0)
    throw new Error(`instances did not adopt sessions ${missing.join(', ')} from storage`);

  return {
    sessions,
    /** The session's clock, moved forward as a laptop that slept. */
    jumpClock(i, ms) {
      clock[i] += ms;
    },
    async run() {
      await Promise.all(workers.map((_, w) => ask(w, 'run', 'running')));
    },
    /** Stops the loops and merges every worker's figures. */
    async stop() {
      const all = await Promise.all(workers.map((_, w) => ask(w, 'stop', 'stats')));
      await Promise.all(workers.map((w) => w.terminate()));
      const merged = {
        calls: 0,
        ok: 0,
        failed: {},
        firstAttemptFailed: 0,
        refreshFailed: {},
        refreshedLocal: 0,
        signedOut: [],
        failedAt: [],
        unhandled: [],
        unhandledCount: 0,
        binding: [],
      };
      for (const { stats } of all) {
        merged.calls += stats.calls;
        merged.ok += stats.ok;
        merged.firstAttemptFailed += stats.firstAttemptFailed;
        merged.refreshedLocal += stats.refreshedLocal;
        merged.signedOut.push(...stats.signedOut);
        merged.failedAt.push(...stats.failedAt);
        merged.unhandled.push(...stats.unhandled);
        merged.unhandledCount += stats.unhandledCount;
        merged.binding.push(...stats.binding);
        for (const [k, v] of Object.entries(stats.failed)) merged.failed[k] = (merged.failed[k] ?? 0) + v;
        for (const [k, v] of Object.entries(stats.refreshFailed))
          merged.refreshFailed[k] = (merged.refreshFailed[k] ?? 0) + v;
      }
      return merged;
    },
  };
}
