import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { TokenServiceEvent } from '../core/token-service.js';
import type { LimitKind } from './rate-limits.js';

/** The Prometheus metrics of one server instance (its own registry, so tests can run several apps). */
export interface Metrics {
  registry: Registry;
  httpDuration: Histogram<'method' | 'route' | 'status'>;
  /** Store calls by operation (the `Store` method) and outcome, measured at the store boundary. */
  storeDuration: Histogram<'operation' | 'outcome'>;
  observe(event: TokenServiceEvent): void;
  /** Counts a request refused by a rate limit. */
  limited(kind: LimitKind): void;
  /**
   * Reports live sessions through `count`, asked on scrape but at most once
   * per `cacheMs`: many scrapers (or a scrape every second) cost one COUNT.
   */
  trackActiveSessions(count: () => Promise<number>, cacheMs?: number): void;
}

/** How long the active-sessions count is reused between scrapes (ms). */
export const ACTIVE_SESSIONS_CACHE_MS = 5000;

/** Creates the registry with Baton's counters and Node's default process metrics. */
export function createMetrics(now: () => number = Date.now): Metrics {
  const registry = new Registry();
  // The event-loop lag histogram samples the loop with a timer. At prom-client's
  // default of every 10 ms that timer alone woke an idle server 100 times a
  // second (9 ms of CPU per second against 2 ms at 100 ms, bench/ANALYSIS.md);
  // a stall still shows as a late timer, only sampled less often.
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 100 });
  const refresh = new Counter({
    name: 'baton_refresh_total',
    help: 'Refresh attempts by outcome (rotated, grace_replay, reuse_detected, invalid)',
    labelNames: ['outcome'] as const,
    registers: [registry],
  });
  const login = new Counter({
    name: 'baton_login_total',
    help: 'Login attempts by outcome',
    labelNames: ['outcome'] as const,
    registers: [registry],
  });
  const revoked = new Counter({
    name: 'baton_sessions_revoked_total',
    help: 'Sessions revoked, by reason',
    labelNames: ['reason'] as const,
    registers: [registry],
  });
  const httpDuration = new Histogram({
    name: 'baton_http_request_duration_seconds',
    help: 'HTTP request duration by route and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  const storeDuration = new Histogram({
    name: 'baton_store_query_duration_seconds',
    help: 'Store calls (one unit of work each) by operation and outcome (ok, error)',
    labelNames: ['operation', 'outcome'] as const,
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [registry],
  });
  const rateLimited = new Counter({
    name: 'baton_rate_limited_total',
    help: 'Requests refused by a rate limit, by limit (ip, login_account, login_device, login_ip)',
    labelNames: ['kind'] as const,
    registers: [registry],
  });
  const proofRefused = new Counter({
    name: 'baton_proof_refusals_total',
    help: 'Proofs of possession (DPoP) refused, by reason',
    labelNames: ['reason'] as const,
    registers: [registry],
  });
  const pruned = new Counter({
    name: 'baton_pruned_rows_total',
    help: 'Rows deleted by pruning, by kind',
    labelNames: ['kind'] as const,
    registers: [registry],
  });
  let countActive: (() => Promise<number>) | undefined;
  let cache = { at: Number.NEGATIVE_INFINITY, value: 0 };
  let cacheFor = ACTIVE_SESSIONS_CACHE_MS;
  new Gauge({
    name: 'baton_active_sessions',
    help: 'Sessions neither revoked nor expired (cached for a few seconds)',
    registers: [registry],
    async collect() {
      if (!countActive) return;
      const t = now();
      if (t - cache.at >= cacheFor) {
        // A store that does not answer leaves the last value, rather than failing the whole scrape.
        try {
          cache = { at: t, value: await countActive() };
        } catch {
          // the next scrape tries again
        }
      }
      this.set(cache.value);
    },
  });
  for (const o of ['rotated', 'grace_replay', 'reuse_detected', 'invalid']) refresh.inc({ outcome: o }, 0);
  return {
    registry,
    httpDuration,
    storeDuration,
    observe(event) {
      if (event.kind === 'refresh') refresh.inc({ outcome: event.outcome });
      else if (event.kind === 'login') login.inc({ outcome: event.outcome });
      else if (event.kind === 'session_revoked') {
        if (event.count > 0) revoked.inc({ reason: event.reason }, event.count);
      } else if (event.kind === 'pruned') {
        for (const [kind, n] of Object.entries(event.deleted)) pruned.inc({ kind }, n);
      } else proofRefused.inc({ reason: event.reason });
    },
    limited: (kind) => rateLimited.inc({ kind }),
    trackActiveSessions(count, cacheMs = ACTIVE_SESSIONS_CACHE_MS) {
      countActive = count;
      cacheFor = cacheMs;
    },
  };
}
