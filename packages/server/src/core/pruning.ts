import { PRUNE_KINDS, type PruneCutoffs, type PruneKind, type Store } from '../store/store.js';
import type { Clock } from './clock.js';
import { DEVICE_TTL_MS } from './device-token.js';

/** How long each kind of record is kept once it is no longer needed (ms). */
export interface RetentionSettings {
  /**
   * An ended session (revoked or expired) and all its tokens are kept this
   * long after it ended (default 30 d), for audit and for introspection
   * answers about it. Deleting it changes no answer: an unknown token is
   * inactive, and refused with `invalid_grant`, exactly like a revoked one.
   */
  endedSessions: number;
  /**
   * The reuse-detection horizon (default 30 d, at least the grace window):
   * a spent refresh token of a live session is kept this long after it was
   * used. Replaying one inside the horizon revokes the session (theft
   * detection); once its row is gone the token is unknown, so a replay
   * older than the horizon is refused with `invalid_grant` WITHOUT revoking
   * anything.
   */
  spentTokens: number;
  /** Security events are kept this long (default 90 d). */
  securityEvents: number;
}

/** The retention defaults. */
export const DEFAULT_RETENTION: Readonly<RetentionSettings> = Object.freeze({
  endedSessions: 30 * 86_400_000,
  spentTokens: 30 * 86_400_000,
  securityEvents: 90 * 86_400_000,
});

/** Rows deleted per batch: one short transaction each, so a refresh never waits long behind one. */
export const PRUNE_BATCH = 500;

/** What one pruning run deleted (or, in a dry run, would delete), by kind. */
export interface PruneReport {
  dryRun: boolean;
  /** The instant the cut-offs were computed from. */
  at: number;
  deleted: Record<PruneKind, number>;
}

/** Validates retention settings against the grace window; a TypeError names the bad one. */
export function resolveRetention(
  given: Partial<RetentionSettings> | undefined,
  reuseGrace: number,
): RetentionSettings {
  const r = { ...DEFAULT_RETENTION, ...given };
  for (const [name, v] of Object.entries(r)) {
    if (!Number.isSafeInteger(v) || v <= 0)
      throw new TypeError(`retention.${name} must be a positive integer of milliseconds`);
  }
  // Inside the grace window a replay must still find its token to get the same successor.
  if (r.spentTokens < reuseGrace) throw new TypeError('retention.spentTokens must be at least reuseGrace');
  return r;
}

/** The cut-offs of a run at `t`. */
export function pruneCutoffs(r: RetentionSettings, t: number): PruneCutoffs {
  return {
    sessionsEndedBefore: t - r.endedSessions,
    tokensUsedBefore: t - r.spentTokens,
    // A device unused for its lifetime no longer counts as trusted (`devices.ts`): nothing reads it again.
    devicesUsedBefore: t - DEVICE_TTL_MS,
    eventsBefore: t - r.securityEvents,
  };
}

/**
 * Deletes (or with `dryRun` counts) everything past its retention, kind by
 * kind in {@link PRUNE_KINDS} order, in batches of {@link PRUNE_BATCH}.
 * Between batches it yields to the event loop, so requests interleave;
 * an aborted `signal` ends the run after the batch in progress.
 */
export async function pruneStore(
  store: Store,
  retention: RetentionSettings,
  now: Clock,
  opts: { dryRun?: boolean; signal?: AbortSignal } = {},
): Promise<PruneReport> {
  const at = now();
  const cutoffs = pruneCutoffs(retention, at);
  const deleted = Object.fromEntries(PRUNE_KINDS.map((k) => [k, 0])) as Record<PruneKind, number>;
  for (const kind of PRUNE_KINDS) {
    if (opts.signal?.aborted) break;
    if (opts.dryRun) {
      deleted[kind] = await store.countPrunable(kind, cutoffs);
      continue;
    }
    for (;;) {
      const n = await store.pruneBatch(kind, cutoffs, PRUNE_BATCH);
      deleted[kind] += n;
      // A shutdown stops between batches; what is left waits for the next run.
      if (n < PRUNE_BATCH || opts.signal?.aborted) break;
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
  return { dryRun: opts.dryRun === true, at, deleted };
}
