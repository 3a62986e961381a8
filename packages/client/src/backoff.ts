import { startTimer } from './coordination.js';
import { BatonClientError } from './errors.js';

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

/** Background retries after failed refreshes; after that, retries happen on demand (a request, a wake-up). */
export const MAX_BACKGROUND_RETRIES = 6;

/** What {@link RefreshBackoff.fail} recorded, for the `refreshFailed` event. */
export interface RecordedFailure {
  /** The error to report: the original one, with `retryAfterMs` set to the delay picked. */
  error: BatonClientError;
  attempt: number;
  delayMs: number;
}

/**
 * All the state of backing off after failed refreshes: the attempt count, the
 * window in which a refresh is refused without a request, and the short
 * background retry timer. A success, a sign-out or coming back online resets it.
 */
export class RefreshBackoff {
  private attempt = 0;
  private since = 0;
  private until = 0;
  private error: BatonClientError | null = null;
  /** Retries scheduled by {@link rescheduleIfIdle} since the last reset. */
  private rescues = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly random: () => number,
    /** Runs when the background retry timer fires. */
    private readonly retry: () => void,
  ) {}

  /** Throws the last failure (with the time left) while backing off, so a refresh is not even attempted. */
  assertReady(now: number): void {
    const { error, until } = this;
    const waitMs = this.waitMs(now);
    if (error !== null && waitMs > 0) {
      throw new BatonClientError(error.code, error.message, {
        ...(error.status === undefined ? {} : { status: error.status }),
        retryable: error.retryable,
        retryAfterMs: until - now,
        cause: error,
      });
    }
  }

  /** How long until the backoff window ends (0: a refresh may be attempted now). */
  waitMs(now: number): number {
    const { error, since, until } = this;
    // `since <= now`: a clock set back must not stretch a backoff into hours.
    return error !== null && since <= now && now < until ? until - now : 0;
  }

  /** Records a failed refresh at `now` and picks the delay before the next attempt ({@link backoffDelay}). */
  fail(error: BatonClientError, now: number, notAfterMs?: number): RecordedFailure {
    const failure = this.plan(error, notAfterMs);
    this.record(failure, now);
    return failure;
  }

  /**
   * The failure {@link fail} would record, without recording it: the next
   * attempt number and its delay. `notAfterMs` caps the delay (never below a
   * server's `Retry-After`, which only comes with answers that rotated nothing).
   */
  plan(error: BatonClientError, notAfterMs?: number): RecordedFailure {
    const attempt = this.attempt + 1;
    let delayMs = backoffDelay(attempt, this.random, error.retryAfterMs);
    if (notAfterMs !== undefined && error.retryAfterMs === undefined)
      delayMs = Math.min(delayMs, Math.max(0, Math.floor(notAfterMs)));
    const failure = new BatonClientError(error.code, error.message, {
      ...(error.status === undefined ? {} : { status: error.status }),
      retryable: error.retryable,
      retryAfterMs: delayMs,
      cause: error.cause ?? error,
    });
    return { error: failure, attempt, delayMs };
  }

  /** Records a failure planned by {@link plan} (here or by another client sharing the refresh) at `now`. */
  record(failure: RecordedFailure, now: number): void {
    this.attempt = Math.max(this.attempt, failure.attempt);
    this.since = now;
    this.until = now + failure.delayMs;
    this.error = failure.error;
  }

  /** After {@link fail}: retries in the background, for the first {@link MAX_BACKGROUND_RETRIES} retryable failures. */
  scheduleRetry(failure: RecordedFailure): void {
    if (!failure.error.retryable || failure.attempt > MAX_BACKGROUND_RETRIES) return;
    this.startRetryTimer(failure.delayMs);
  }

  /**
   * For a background check that failed without recording a failure (it was
   * refused by the window, or something other than the refresh threw): if a
   * retryable failure is still pending and no retry is scheduled, schedule
   * one, so that a swallowed error never silently ends the retries. Bounded
   * like the background retries themselves.
   */
  rescheduleIfIdle(now: number): void {
    const { error } = this;
    if (this.timer !== undefined || error === null || !error.retryable) return;
    if (this.rescues >= MAX_BACKGROUND_RETRIES) return;
    this.rescues++;
    // At least the base delay: a check that fails at once must not spin.
    this.startRetryTimer(Math.max(this.until - now, BACKOFF_BASE_MS));
  }

  private startRetryTimer(delayMs: number): void {
    clearTimeout(this.timer);
    // A short timer: if the laptop sleeps through it, the wake-up events do the same job.
    this.timer = startTimer(
      () => {
        this.timer = undefined;
        // The timer IS the scheduled retry, so it ends the window. Timers and
        // `now()` are different clocks: a timer may fire a millisecond before
        // `until` by `now()`, and the window check would then refuse the very
        // retry it was waiting for.
        this.until = this.since;
        this.retry();
      },
      delayMs,
      { background: true },
    );
  }

  /** Forgets every failure and cancels the background retry. */
  reset(): void {
    this.attempt = 0;
    this.since = 0;
    this.until = 0;
    this.error = null;
    this.rescues = 0;
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}
