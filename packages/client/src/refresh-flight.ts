import type { RecordedFailure } from './backoff.js';
import { BatonClientError } from './errors.js';

/**
 * One refresh in flight in this realm, its retries included, shared through
 * `singleFlight` by every caller and every client instance that needs the
 * same token replaced. Those who joined hear of each failed attempt as it
 * happens (for their backoff and their `refreshFailed` event), and a caller
 * whose token still works stops waiting at the first one ({@link stalled}).
 */
export class RefreshFlight<T> {
  /** Settles with the final outcome, after any retries. */
  readonly done: Promise<T>;
  /**
   * Rejects at the first failed attempt, here or in the peer that holds the
   * lock: from then on the refresh is no longer quick, and a caller with a
   * token that still works goes ahead with it.
   */
  readonly stalled: Promise<never>;
  private stall: (error: BatonClientError) => void = () => {};
  private running = true;
  private readonly watchers = new Set<(failure: RecordedFailure) => void>();
  /** Errors already reported attempt by attempt, with the failure they came in. */
  private readonly reported = new WeakMap<object, RecordedFailure>();
  private readonly peerStalls = new WeakSet<object>();

  constructor(run: (flight: RefreshFlight<T>) => Promise<T>) {
    this.stalled = new Promise<never>((_, reject) => {
      this.stall = reject;
    });
    // Nobody may be listening by the time it rejects (every caller went ahead).
    this.stalled.catch(() => {});
    this.done = run(this);
    this.done.then(
      () => this.finish(),
      () => this.finish(),
    );
  }

  /** Whether the flight is still going (retries pending). */
  get isRunning(): boolean {
    return this.running;
  }

  /** Subscribes to failed attempts; returns the unsubscribe function. */
  watch(listener: (failure: RecordedFailure) => void): () => void {
    this.watchers.add(listener);
    return () => {
      this.watchers.delete(listener);
    };
  }

  /** An attempt failed and will be retried or given up on: tell every watcher. */
  attemptFailed(failure: RecordedFailure): void {
    this.reported.set(failure.error, failure);
    this.stall(failure.error);
    for (const watcher of [...this.watchers]) watcher(failure);
  }

  /** The peer holding the lock is retrying (`code` is its failure): callers with a working token go ahead. */
  peerRetrying(code: string): void {
    const error = new BatonClientError(code, 'Another context is retrying the refresh', { retryable: true });
    this.peerStalls.add(error);
    this.stall(error);
  }

  /** The failure `error` was reported in, if it is one of this flight's attempts. */
  reportedFailure(error: unknown): RecordedFailure | undefined {
    return typeof error === 'object' && error !== null ? this.reported.get(error) : undefined;
  }

  /** Whether `error` only says that a peer is retrying (nothing failed here). */
  isPeerStall(error: unknown): boolean {
    return typeof error === 'object' && error !== null && this.peerStalls.has(error);
  }

  private finish(): void {
    this.running = false;
    this.watchers.clear();
  }
}
