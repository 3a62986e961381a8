// A fault-injecting HTTP balancer on loopback, in front of the `baton serve`
// instances. It works at the HTTP level because the fault that matters most
// to a rotating refresh token is "the server processed the request and the
// answer never arrived": only a proxy that reads the whole upstream response
// and then drops the client's connection can produce exactly that.
import { Agent, createServer, request } from 'node:http';
import { seededRandom } from './rng.mjs';

/**
 * @typedef {object} FaultRates  probabilities per request, drawn in this order
 * @property {number} reset   connection reset before anything is forwarded
 * @property {number} lost    forwarded and fully answered upstream, then the client connection is dropped
 * @property {number} hold    forwarded, answer held `holdMs` (past the reuse grace window), then relayed
 * @property {number} delay   a random delay of 0..`maxDelayMs` before forwarding
 */

/** @typedef {'reset' | 'lost' | 'hold' | 'delay' | 'none'} Fault */

/**
 * The class of a request for the statistics: refreshes are what the grace
 * window is about, everything else is the workload.
 * @param {import('node:http').IncomingMessage} req
 */
const classOf = (req) =>
  req.method === 'POST' && req.url?.startsWith('/auth/refresh') ? 'refresh' : 'other';

/**
 * Starts the balancer.
 * @param {object} opts
 * @param {number} opts.port            where to listen (127.0.0.1)
 * @param {number[]} opts.upstreams     the instances' ports
 * @param {FaultRates} opts.rates
 * @param {number} opts.seed
 * @param {number} [opts.holdMs]        default 12 000 (the default grace window is 10 s)
 * @param {number} [opts.maxDelayMs]    default 2 000
 */
export async function startBalancer(opts) {
  const random = seededRandom(opts.seed);
  const holdMs = opts.holdMs ?? 12_000;
  const maxDelayMs = opts.maxDelayMs ?? 2000;
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  /** While false (setup and teardown) every request passes untouched. */
  let faultsOn = false;
  /** 'skip': an instance that refused a connection is skipped for a while; 'pass': the client sees the error. */
  let downMode = /** @type {'skip' | 'pass'} */ ('skip');
  /** @type {Map<number, number>} port → marked down until (ms) */
  const downUntil = new Map();
  let next = 0;
  const stats = {
    requests: { refresh: 0, other: 0 },
    faults: /** @type {Record<string, Record<Fault, number>>} */ ({
      refresh: { reset: 0, lost: 0, hold: 0, delay: 0, none: 0 },
      other: { reset: 0, lost: 0, hold: 0, delay: 0, none: 0 },
    }),
    /** Refresh answers relayed to clients, by status. */
    refreshStatus: /** @type {Record<string, number>} */ ({}),
    upstreamErrors: 0,
    skippedDown: 0,
  };
  /** @type {Set<NodeJS.Timeout>} */
  const timers = new Set();
  const later = (ms, fn) => {
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, ms);
    timers.add(t);
  };

  /** @returns {{ fault: Fault, delayMs: number }} */
  function drawFault() {
    // Two draws per request, always, keep the schedule a pure function of the seed and the request order.
    const r = random();
    const delayMs = random() * maxDelayMs;
    if (!faultsOn) return { fault: 'none', delayMs: 0 };
    let edge = 0;
    for (const fault of /** @type {const} */ (['reset', 'lost', 'hold', 'delay'])) {
      edge += opts.rates[fault];
      if (r < edge) return { fault, delayMs };
    }
    return { fault: 'none', delayMs: 0 };
  }

  function pickUpstream(exclude = new Set()) {
    const now = Date.now();
    for (let i = 0; i < opts.upstreams.length; i++) {
      const port = opts.upstreams[(next + i) % opts.upstreams.length];
      if (exclude.has(port)) continue;
      if (downMode === 'skip' && (downUntil.get(port) ?? 0) > now) continue;
      next = (next + i + 1) % opts.upstreams.length;
      return port;
    }
    return undefined;
  }

  const server = createServer((req, res) => {
    const cls = classOf(req);
    stats.requests[cls]++;
    const { fault, delayMs } = drawFault();
    stats.faults[cls][fault]++;
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      if (fault === 'reset') {
        req.socket.destroy();
        return;
      }
      const body = Buffer.concat(chunks);
      const go = () => forward(req, res, body, cls, fault, new Set());
      if (fault === 'delay') later(delayMs, go);
      else go();
    });
  });

  /**
   * @param {import('node:http').IncomingMessage} req
   * @param {import('node:http').ServerResponse} res
   * @param {Buffer} body
   * @param {'refresh' | 'other'} cls
   * @param {Fault} fault
   * @param {Set<number>} tried
   */
  function forward(req, res, body, cls, fault, tried) {
    const port = pickUpstream(tried);
    if (port === undefined) {
      stats.upstreamErrors++;
      req.socket.destroy();
      return;
    }
    const headers = { ...req.headers, 'content-length': String(body.length) };
    delete headers.connection;
    delete headers['keep-alive'];
    const up = request(
      { host: '127.0.0.1', port, method: req.method, path: req.url, headers, agent },
      (upRes) => {
        const parts = [];
        upRes.on('data', (c) => parts.push(c));
        upRes.on('error', () => req.socket.destroy());
        upRes.on('end', () => {
          const payload = Buffer.concat(parts);
          const relay = () => {
            if (res.destroyed || req.socket.destroyed) return;
            if (cls === 'refresh') {
              const key = String(upRes.statusCode);
              stats.refreshStatus[key] = (stats.refreshStatus[key] ?? 0) + 1;
            }
            const outHeaders = { ...upRes.headers };
            delete outHeaders.connection;
            delete outHeaders['keep-alive'];
            delete outHeaders['transfer-encoding'];
            outHeaders['content-length'] = String(payload.length);
            res.writeHead(upRes.statusCode ?? 502, outHeaders);
            res.end(payload);
          };
          // The server has done its work (a refresh is committed): now lose the answer.
          if (fault === 'lost') req.socket.destroy();
          else if (fault === 'hold') later(holdMs, relay);
          else relay();
        });
      },
    );
    up.on('error', (error) => {
      const code = /** @type {{code?: string}} */ (error).code;
      // Refused means nothing reached the instance, so trying another one is safe;
      // a reset mid-request (an instance killed while working) may have been processed.
      if (code === 'ECONNREFUSED' && downMode === 'skip') {
        downUntil.set(port, Date.now() + 2000);
        stats.skippedDown++;
        tried.add(port);
        forward(req, res, body, cls, fault, tried);
        return;
      }
      stats.upstreamErrors++;
      req.socket.destroy();
    });
    up.end(body);
  }

  server.keepAliveTimeout = 5000;
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, '127.0.0.1', () => resolve(undefined));
  });

  return {
    url: `http://localhost:${opts.port}`,
    stats,
    /** @param {boolean} on */
    setFaults(on) {
      faultsOn = on;
    },
    /** @param {'skip' | 'pass'} mode */
    setDownMode(mode) {
      downMode = mode;
    },
    async close() {
      for (const t of timers) clearTimeout(t);
      timers.clear();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(() => resolve(undefined)));
      agent.destroy();
    },
  };
}
