// One worker thread of the token-mode population: one `createAuthClient`
// instance per session, each in a loop of authenticated calls through the
// balancer. Every worker is its own JavaScript realm, so the instances of one
// session in different workers share nothing in memory: they coordinate the
// way separate processes do, through the session's file storage and its file
// lock (Node 20 has no Web Locks) and the BroadcastChannel between threads.
import { inspect } from 'node:util';
import { parentPort, workerData } from 'node:worker_threads';
import { seededRandom } from './rng.mjs';

const { baseUrl, sessions, offsets, workerIndex, seed, thinkMs, dist, appTimeoutMs, appAttempts, dpop } =
  workerData;
const { createAuthClient } = await import(dist.client);
const { fileStorage } = await import(dist.fileStorage);
const random = seededRandom(seed);
const clockOffsets = new Float64Array(offsets);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/** How long a stopped worker waits for late rejections before it reports. */
const SETTLE_MS = 1_000;

const stats = {
  calls: 0,
  ok: 0,
  /** Calls that still failed after the app's retries, by cause. */
  failed: /** @type {Record<string, number>} */ ({}),
  /** Calls whose first attempt failed (recovered or not). */
  firstAttemptFailed: 0,
  refreshFailed: /** @type {Record<string, number>} */ ({}),
  refreshedLocal: 0,
  /** @type {{ session: number, reason: string, source: string, at: number }[]} */
  signedOut: [],
  /** When calls failed after retries (epoch ms), to tell the kill windows from the rest. */
  failedAt: /** @type {number[]} */ ([]),
  /** Unhandled promise rejections (the first few, inspected) and how many there were. */
  unhandled: /** @type {string[]} */ ([]),
  unhandledCount: 0,
  /** Set at stop: per session, the session id this instance ended on and whether it is DPoP-bound. */
  binding: /** @type {{ session: number, sessionId?: string, bound: boolean, reason?: string }[]} */ ([]),
};
// A rejection nobody handles would crash a real Node app (Node's default): it is a finding, kept and reported.
process.on('unhandledRejection', (reason) => {
  if (stats.unhandled.length < 5) stats.unhandled.push(inspect(reason, { depth: 2, breakLength: 200 }));
  stats.unhandledCount++;
});
process.on('uncaughtException', (error) => {
  if (stats.unhandled.length < 5)
    stats.unhandled.push(`uncaught: ${inspect(error, { depth: 2, breakLength: 200 })}`);
  stats.unhandledCount++;
});
const bump = (map, key) => {
  map[key] = (map[key] ?? 0) + 1;
};

const clients = sessions.map((s, i) => {
  const client = createAuthClient({
    baseUrl,
    mode: 'token',
    storage: fileStorage(s.storagePath),
    storageKey: s.storageKey,
    // One clock per machine: every instance of a session reads the same offset (±10 min, and the
    // jump of a laptop waking up), shared through the SharedArrayBuffer.
    now: () => Date.now() + clockOffsets[i],
    random,
    // Bound (the SDK's default) or deliberately unbound, per scenario: both populations must hold.
    dpop,
  });
  client.on('signedOut', (e) =>
    stats.signedOut.push({ session: i, reason: e.reason, source: e.source, at: Date.now() }),
  );
  client.on('refreshFailed', (e) => bump(stats.refreshFailed, e.error?.code ?? 'unknown'));
  client.on('tokenRefreshed', (e) => {
    if (e.source === 'local') stats.refreshedLocal++;
  });
  return client;
});

let running = false;
/** Aborts the calls in flight when the run ends; what they were doing is not counted. */
const stopping = new AbortController();
/** @type {Set<number>} sessions this worker saw signed out: their loops stop */
const ended = new Set();

/**
 * One call as an app makes it: a GET of a protected resource, retried on a
 * network error or a 5xx (it is idempotent) with exponential backoff
 * (0.25, 0.5, 1 s), each attempt with a timeout. What still fails after that is a failed request.
 */
async function call(client) {
  let cause = 'unknown';
  for (let attempt = 0; attempt < appAttempts; attempt++) {
    try {
      const res = await client.fetch('/auth/me', {
        signal: AbortSignal.any([AbortSignal.timeout(appTimeoutMs), stopping.signal]),
      });
      await res.arrayBuffer();
      if (res.status === 200) return { ok: true, attempts: attempt + 1 };
      cause = `status_${res.status}`;
      if (res.status < 500) return { ok: false, cause, attempts: attempt + 1 };
    } catch (error) {
      const code = error?.code ?? error?.name ?? 'error';
      if (code === 'signed_out') return { ok: false, cause: 'signed_out', attempts: attempt + 1 };
      cause = code === 'TypeError' || code === 'TimeoutError' ? `fetch_${code}` : code;
    }
    if (!running) break;
    await sleep(250 * 2 ** attempt);
  }
  return { ok: false, cause, attempts: appAttempts };
}

async function loop(i) {
  const client = clients[i];
  // Spread the first calls so the sessions do not march in step.
  await sleep(random() * thinkMs);
  while (running && !ended.has(i)) {
    const result = await call(client);
    if (!running) break;
    stats.calls++;
    if (result.attempts > 1 || !result.ok) stats.firstAttemptFailed++;
    if (result.ok) stats.ok++;
    else {
      bump(stats.failed, result.cause);
      stats.failedAt.push(Date.now());
      if (result.cause === 'signed_out') ended.add(i);
    }
    await sleep(thinkMs / 2 + random() * thinkMs);
  }
}

/** @type {Promise<unknown>[]} */
let loops = [];
parentPort.on('message', async (msg) => {
  try {
    if (msg.type === 'login') {
      // Setup, with the balancer's faults off: the first worker creates every account and session.
      for (const [i, s] of sessions.entries()) {
        await clients[i].register({ email: s.email, password: s.password });
        await clients[i].login({ email: s.email, password: s.password });
      }
      parentPort.postMessage({ type: 'loggedIn' });
    } else if (msg.type === 'adopt') {
      // The other workers start signed in from the storage their peer wrote, as a new tab does.
      const missing = [];
      for (const [i, client] of clients.entries()) {
        if ((await client.getAccessToken()) === null) missing.push(i);
      }
      parentPort.postMessage({ type: 'adopted', missing });
    } else if (msg.type === 'run') {
      running = true;
      loops = clients.map((_, i) => loop(i));
      parentPort.postMessage({ type: 'running' });
    } else if (msg.type === 'stop') {
      running = false;
      stopping.abort();
      await Promise.allSettled(loops);
      // Whether each instance ended on a bound session: a bound population that quietly fell back
      // to unbound sessions would prove nothing about DPoP.
      stats.binding = clients.map((client, i) => ({
        session: i,
        sessionId: client.getSession()?.sessionId,
        bound: client.dpop.bound,
        reason: client.dpop.reason,
      }));
      for (const client of clients) client.dispose();
      // Work a client goes on with after its callers left (a refresh attempt
      // still in flight) can still reject: give it a moment to, so that an
      // unhandled rejection at the very end is counted too, not lost with the worker.
      await sleep(SETTLE_MS);
      parentPort.postMessage({ type: 'stats', workerIndex, stats });
    }
  } catch (error) {
    parentPort.postMessage({ type: 'error', message: String(error?.stack ?? error) });
  }
});
parentPort.postMessage({ type: 'ready' });
