import { Counter, collectDefaultMetrics, Histogram, Registry } from 'prom-client';
import type { TokenServiceEvent } from '../core/token-service.js';

/** The Prometheus metrics of one server instance (its own registry, so tests can run several apps). */
export interface Metrics {
  registry: Registry;
  httpDuration: Histogram<'method' | 'route' | 'status'>;
  observe(event: TokenServiceEvent): void;
}

/** Creates the registry with Baton's counters and Node's default process metrics. */
export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
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
  for (const o of ['rotated', 'grace_replay', 'reuse_detected', 'invalid']) refresh.inc({ outcome: o }, 0);
  return {
    registry,
    httpDuration,
    observe(event) {
      if (event.kind === 'refresh') refresh.inc({ outcome: event.outcome });
      else if (event.kind === 'login') login.inc({ outcome: event.outcome });
      else if (event.count > 0) revoked.inc({ reason: event.reason }, event.count);
    },
  };
}
