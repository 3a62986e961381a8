/** Base of the exponential backoff after a failed refresh. */
export const BACKOFF_BASE_MS = 1_000;
/** Longest backoff the client picks by itself. */
export const BACKOFF_CAP_MS = 60_000;
/** Longest `Retry-After` the client honours; a larger value is clamped so a bad header cannot park a session for a day. */
export const RETRY_AFTER_CAP_MS = 10 * 60_000;

/**
 * Delay before retry number `attempt` (1 = first retry): "full jitter", a
 * uniform pick in [0, min(cap, base · 2^(attempt-1))]. Full jitter spreads the
 * retries of many tabs and many users that failed at the same moment (a
 * server restart) instead of bringing them back in lockstep. A server's
 * `Retry-After` is a floor.
 */
export function backoffDelay(attempt: number, random: () => number, retryAfterMs?: number): number {
  const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** Math.max(0, attempt - 1));
  const jittered = Math.floor(random() * ceiling);
  return retryAfterMs === undefined ? jittered : Math.max(jittered, retryAfterMs);
}

/**
 * Parses `Retry-After` (RFC 9110 §10.2.3): delay-seconds or an HTTP date. A
 * date is measured against the response's own `Date` header when present, so
 * a client clock that is off does not turn "in 30 s" into "in 10 min" or
 * "already passed".
 */
export function parseRetryAfter(
  value: string | null,
  dateHeader: string | null,
  now: number,
): number | undefined {
  if (value === null) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Math.min(Number(trimmed) * 1000, RETRY_AFTER_CAP_MS);
  // An HTTP date always names a weekday and month; without letters, Date.parse would read "-5" as a year.
  if (!/[a-z]/i.test(trimmed)) return undefined;
  const at = Date.parse(trimmed);
  if (Number.isNaN(at)) return undefined;
  const serverNow = dateHeader === null ? Number.NaN : Date.parse(dateHeader);
  const delay = at - (Number.isNaN(serverNow) ? now : serverNow);
  return Math.min(Math.max(0, delay), RETRY_AFTER_CAP_MS);
}
