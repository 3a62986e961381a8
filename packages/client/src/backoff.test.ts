import { describe, expect, it, vi } from 'vitest';
import {
  BACKOFF_CAP_MS,
  backoffDelay,
  MAX_BACKGROUND_RETRIES,
  parseRetryAfter,
  RETRY_AFTER_CAP_MS,
  RefreshBackoff,
} from './backoff.js';
import { BatonClientError } from './errors.js';

describe('backoffDelay', () => {
  it('doubles its ceiling per attempt up to the cap (full jitter: random picks within it)', () => {
    const top = () => 0.999_999;
    expect([1, 2, 3, 4].map((n) => backoffDelay(n, top))).toEqual([999, 1999, 3999, 7999]);
    expect(backoffDelay(30, top)).toBe(BACKOFF_CAP_MS - 1);
    // Full jitter reaches down to zero, which is what spreads tabs that failed together.
    expect(backoffDelay(5, () => 0)).toBe(0);
  });

  it('never retries before Retry-After', () => {
    expect(backoffDelay(1, () => 0.5, 7_000)).toBe(7_000);
    expect(backoffDelay(10, () => 0.999, 1_000)).toBeGreaterThan(1_000);
  });
});

describe('parseRetryAfter', () => {
  const now = Date.UTC(2030, 0, 1, 12, 0, 0);

  it('reads delay-seconds', () => {
    expect(parseRetryAfter('30', null, now)).toBe(30_000);
    expect(parseRetryAfter(' 0 ', null, now)).toBe(0);
  });

  it("measures an HTTP date against the response's Date header, not the client clock", () => {
    const serverNow = new Date(now - 10 * 60_000); // our clock runs 10 min ahead
    const retryAt = new Date(serverNow.getTime() + 45_000);
    expect(parseRetryAfter(retryAt.toUTCString(), serverNow.toUTCString(), now)).toBe(45_000);
    // Without a Date header the local clock is all there is; a past date means "now".
    expect(parseRetryAfter(retryAt.toUTCString(), null, now)).toBe(0);
  });

  it('clamps absurd values and ignores garbage', () => {
    expect(parseRetryAfter('86400', null, now)).toBe(RETRY_AFTER_CAP_MS);
    expect(parseRetryAfter('soon', null, now)).toBeUndefined();
    expect(parseRetryAfter('-5', null, now)).toBeUndefined();
    expect(parseRetryAfter(null, null, now)).toBeUndefined();
  });
});

describe('RefreshBackoff', () => {
  const offline = () =>
    new BatonClientError('network_error', '/auth/refresh could not be reached', { retryable: true });

  it('refuses a refresh inside the window, with the time left, and allows it after', () => {
    const backoff = new RefreshBackoff(
      () => 0.5,
      () => {},
    );
    backoff.assertReady(0);
    const failure = backoff.fail(offline(), 10_000);
    expect(failure).toMatchObject({ attempt: 1, delayMs: 500 });
    expect(failure.error).toMatchObject({ code: 'network_error', retryable: true, retryAfterMs: 500 });
    let refused: unknown;
    try {
      backoff.assertReady(10_200);
    } catch (error) {
      refused = error;
    }
    expect(refused).toMatchObject({ code: 'network_error', retryAfterMs: 300 });
    expect(() => backoff.assertReady(10_500)).not.toThrow();
  });

  it('grows per failure, honours Retry-After, and forgets everything on reset', () => {
    const backoff = new RefreshBackoff(
      () => 0.999_999,
      () => {},
    );
    expect(backoff.fail(offline(), 0).delayMs).toBe(999);
    expect(backoff.fail(offline(), 0).delayMs).toBe(1999);
    const busy = new BatonClientError('server_error', 'x', {
      status: 503,
      retryable: true,
      retryAfterMs: 30_000,
    });
    expect(backoff.fail(busy, 0)).toMatchObject({ attempt: 3, delayMs: 30_000 });
    backoff.reset();
    expect(() => backoff.assertReady(1)).not.toThrow();
    expect(backoff.fail(offline(), 0).attempt).toBe(1);
  });

  it('does not let a clock set back stretch the window', () => {
    const backoff = new RefreshBackoff(
      () => 0.5,
      () => {},
    );
    backoff.fail(offline(), 100_000);
    expect(() => backoff.assertReady(99_999)).not.toThrow();
  });

  it('retries in the background for the first failures only, and not after reset', () => {
    vi.useFakeTimers();
    try {
      let retries = 0;
      const backoff = new RefreshBackoff(
        () => 0.5,
        () => retries++,
      );
      for (let i = 1; i <= MAX_BACKGROUND_RETRIES + 1; i++) {
        backoff.scheduleRetry(backoff.fail(offline(), 0));
        vi.runOnlyPendingTimers();
      }
      expect(retries).toBe(MAX_BACKGROUND_RETRIES);
      backoff.reset();
      backoff.scheduleRetry(backoff.fail(offline(), 0));
      backoff.reset();
      vi.runOnlyPendingTimers();
      expect(retries).toBe(MAX_BACKGROUND_RETRIES);
      // A failure that cannot succeed later is not retried.
      backoff.scheduleRetry(backoff.fail(new BatonClientError('request_failed', 'x', { status: 400 }), 0));
      vi.runOnlyPendingTimers();
      expect(retries).toBe(MAX_BACKGROUND_RETRIES);
    } finally {
      vi.useRealTimers();
    }
  });

  it('ends the window when its timer fires, even a moment early by the clock', () => {
    vi.useFakeTimers();
    try {
      let retries = 0;
      const backoff = new RefreshBackoff(
        () => 0.5,
        () => retries++,
      );
      const failure = backoff.fail(offline(), 10_000);
      backoff.scheduleRetry(failure);
      vi.advanceTimersByTime(failure.delayMs);
      expect(retries).toBe(1);
      // The timer fired at 10 499 by `now()`: the gate must let its retry through.
      expect(() => backoff.assertReady(10_499)).not.toThrow();
    } finally {
      vi.useRealTimers();
    }
  });

  it('reschedules a retry that a swallowed error would have lost, a bounded number of times', () => {
    vi.useFakeTimers();
    try {
      let retries = 0;
      const backoff = new RefreshBackoff(
        () => 0.5,
        () => retries++,
      );
      backoff.rescheduleIfIdle(0); // nothing failed: nothing to retry
      vi.runOnlyPendingTimers();
      expect(retries).toBe(0);
      backoff.fail(offline(), 0); // recorded, but no timer was started
      for (let i = 0; i < MAX_BACKGROUND_RETRIES + 2; i++) {
        backoff.rescheduleIfIdle(0);
        backoff.rescheduleIfIdle(0); // already scheduled: no second timer
        vi.runOnlyPendingTimers();
      }
      expect(retries).toBe(MAX_BACKGROUND_RETRIES);
    } finally {
      vi.useRealTimers();
    }
  });
});
