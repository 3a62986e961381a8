import type { PruneReport } from './pruning.js';

/** Options of {@link startPruneJob} (ms). */
export interface PruneJobOptions {
  /** Time between runs (e.g. 10 min). */
  interval: number;
  /** Delay of the first run after start (e.g. 1 min: not while the instance warms up). */
  initialDelay: number;
  /** Runs the pruning once. */
  run: (signal: AbortSignal) => Promise<PruneReport>;
  /** A run that failed (the next one is still scheduled). */
  onError: (err: unknown) => void;
  /** Random number in [0, 1), for the jitter. */
  random?: () => number;
}

/**
 * Runs pruning on a timer in every instance. Each delay is jittered by up to
 * a quarter of it, so instances started together do not all prune at the
 * same moment (running together is safe, just wasteful). Runs never
 * overlap. Returns `stop`, which cancels the next run, ends a run in
 * progress after its current batch, and resolves once it has, so the
 * store can be closed after it.
 */
export function startPruneJob(opts: PruneJobOptions): () => Promise<void> {
  const random = opts.random ?? Math.random;
  const jittered = (ms: number) => Math.round(ms * (1 + random() / 4));
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let running: Promise<void> | undefined;
  const abort = new AbortController();

  const schedule = (ms: number) => {
    timer = setTimeout(() => {
      running = opts
        .run(abort.signal)
        .then(
          () => {},
          (err: unknown) => opts.onError(err),
        )
        .finally(() => {
          running = undefined;
          if (!stopped) schedule(jittered(opts.interval));
        });
    }, ms);
    // A pending run must not keep a process alive that is otherwise done.
    timer.unref();
  };
  schedule(jittered(opts.initialDelay));

  return async () => {
    stopped = true;
    clearTimeout(timer);
    abort.abort();
    await running;
  };
}
