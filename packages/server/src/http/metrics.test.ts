// The metrics an operator alerts on, read back from the Prometheus text after
// a scripted flow on an in-process app (real SQLite file, movable clock).
import { afterEach, describe, expect, it } from 'vitest';
import { metricValue } from '../../../../test/e2e/support/baton.js';
import { refresh, signUp, type TestApp, testApp } from '../../test/helpers.js';
import { ACTIVE_SESSIONS_CACHE_MS, createMetrics } from './metrics.js';

const EMAIL = 'ada@example.com';
const PASSWORD = 'correct horse battery';

describe('metrics after a scripted flow', () => {
  let t: TestApp | undefined;
  afterEach(() => t?.close());
  const scrape = async () => {
    const res = await t!.app.inject({ url: '/metrics' });
    expect(res.statusCode).toBe(200);
    return res.body;
  };

  it('counts store calls, live sessions, rate-limit refusals and pruned rows', async () => {
    t = await testApp({ limits: { loginFailuresPerAccount: 2 }, retention: { endedSessions: 60_000 } });
    const first = await signUp(t.app, EMAIL, PASSWORD);
    const second = await signUp(t.app, EMAIL, PASSWORD);
    expect((await refresh(t.app, first.refresh_token)).statusCode).toBe(200);

    let text = await scrape();
    expect(metricValue(text, 'baton_active_sessions')).toBe(2);
    expect(
      metricValue(text, 'baton_store_query_duration_seconds_count', {
        operation: 'rotateRefreshToken',
        outcome: 'ok',
      }),
    ).toBe(1);
    expect(
      metricValue(text, 'baton_store_query_duration_seconds_count', {
        operation: 'createSession',
        outcome: 'ok',
      }),
    ).toBe(2);

    // Two wrong passwords use up the account's budget; the third attempt is refused by the limit.
    for (let i = 0; i < 3; i++)
      await t.app.inject({
        method: 'POST',
        url: '/auth/login',
        payload: { email: EMAIL, password: 'wrong one!' },
      });
    const logout = await t.app.inject({
      method: 'POST',
      url: '/auth/logout',
      payload: { refresh_token: second.refresh_token },
    });
    expect(logout.statusCode).toBeLessThan(300);

    // Cached: the same count until the cache runs out, then the new one.
    text = await scrape();
    expect(metricValue(text, 'baton_active_sessions')).toBe(2);
    expect(metricValue(text, 'baton_rate_limited_total', { kind: 'login_account' })).toBe(1);
    t.clock.advance(ACTIVE_SESSIONS_CACHE_MS);
    text = await scrape();
    expect(metricValue(text, 'baton_active_sessions')).toBe(1);

    t.clock.advance(60_001);
    const report = await t.app.baton.prune();
    expect(report.deleted).toMatchObject({ sessions: 1, session_tokens: 1 });
    text = await scrape();
    expect(metricValue(text, 'baton_pruned_rows_total', { kind: 'sessions' })).toBe(1);
    expect(metricValue(text, 'baton_pruned_rows_total', { kind: 'session_tokens' })).toBe(1);
    expect(metricValue(text, 'baton_sessions_revoked_total', { reason: 'logout' })).toBe(1);
  });

  it('counts a refused DPoP proof by its error code', async () => {
    t = await testApp();
    await signUp(t.app, EMAIL, PASSWORD);
    const res = await t.app.inject({
      method: 'POST',
      url: '/auth/login',
      headers: { dpop: 'not-a-proof' },
      payload: { email: EMAIL, password: PASSWORD },
    });
    expect(res.json().error).toBe('invalid_dpop_proof');
    const text = await scrape();
    expect(metricValue(text, 'baton_proof_refusals_total', { reason: 'invalid_dpop_proof' })).toBe(1);
  });

  it('counts refused proofs and per-IP refusals by kind', async () => {
    const metrics = createMetrics();
    metrics.observe({ kind: 'proof_refused', reason: 'replayed' });
    metrics.observe({ kind: 'proof_refused', reason: 'replayed' });
    metrics.limited('ip');
    const text = await metrics.registry.metrics();
    expect(metricValue(text, 'baton_proof_refusals_total', { reason: 'replayed' })).toBe(2);
    expect(metricValue(text, 'baton_rate_limited_total', { kind: 'ip' })).toBe(1);
  });
});
