import { describe, expect, it } from 'vitest';
import { BACKOFF_CAP_MS, backoffDelay, parseRetryAfter, RETRY_AFTER_CAP_MS } from './backoff.js';

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
