import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { startPruneJob } from './prune-job.js';
import type { PruneReport } from './pruning.js';

const REPORT: PruneReport = {
  dryRun: false,
  at: 0,
  deleted: { session_tokens: 0, sessions: 0, spent_tokens: 0, trusted_devices: 0, security_events: 0 },
};

describe('the pruning job', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('first runs after the initial delay, then every interval with jitter, and never overlaps', async () => {
    const runs: number[] = [];
    let finish: (() => void) | undefined;
    const stop = startPruneJob({
      interval: 1000,
      initialDelay: 100,
      random: () => 0.5, // +12.5 %
      run: () => {
        runs.push(Date.now());
        return new Promise((resolve) => {
          finish = () => resolve(REPORT);
        });
      },
      onError: () => {},
    });
    const start = Date.now();
    await vi.advanceTimersByTimeAsync(112);
    expect(runs).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(runs).toEqual([start + 113]);
    // Still running: no second run however long it takes.
    await vi.advanceTimersByTimeAsync(5000);
    expect(runs).toHaveLength(1);
    finish!();
    await vi.advanceTimersByTimeAsync(0); // the finished run schedules the next one
    const finished = Date.now();
    await vi.advanceTimersByTimeAsync(1124);
    expect(runs).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(runs).toEqual([start + 113, finished + 1125]);
    finish!();
    await stop();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(runs).toHaveLength(2);
  });

  it('stop aborts a run in progress and waits for it; a failed run is reported and the job goes on', async () => {
    const errors: unknown[] = [];
    let signal: AbortSignal | undefined;
    let calls = 0;
    let release: (() => void) | undefined;
    const stop = startPruneJob({
      interval: 1000,
      initialDelay: 10,
      random: () => 0,
      run: async (s) => {
        calls++;
        if (calls === 1) throw new Error('database away');
        signal = s;
        await new Promise<void>((resolve) => {
          release = resolve;
        });
        return REPORT;
      },
      onError: (err) => errors.push(err),
    });
    await vi.advanceTimersByTimeAsync(10);
    expect(errors).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1000);
    expect(calls).toBe(2);
    let stopped = false;
    const stopping = stop().then(() => {
      stopped = true;
    });
    await vi.advanceTimersByTimeAsync(0);
    expect(signal?.aborted).toBe(true);
    expect(stopped).toBe(false);
    release!();
    await stopping;
    expect(stopped).toBe(true);
  });
});
