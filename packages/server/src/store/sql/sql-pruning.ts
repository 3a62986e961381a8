import type { PruneCutoffs, PruneKind } from '../store.js';
import type { Statement } from './dialect.js';
import { SqlFragment, type SqlTag } from './statement.js';

/** The tables pruning reads and deletes from, as the SQL store names them. */
export interface PrunedTables {
  sessions: SqlFragment;
  tokens: SqlFragment;
  devices: SqlFragment;
  events: SqlFragment;
}

/**
 * Pruning's statements, for `sql-store.ts` (kept apart only to keep that file
 * under 500 lines; written with the same `sql` tag, for every dialect). The
 * result builds the statement that deletes, or counts, the rows of `kind`
 * past their cut-off, at most `limit`: a dry run counts exactly what a run
 * would delete. Each selection is answered from an index (migrations 4
 * and 5), except PostgreSQL's idle-ended sessions, found by a scan that
 * locks nothing it does not delete (see its migration 5).
 */
export function pruneStatements(
  sql: SqlTag,
  { sessions, tokens, devices, events }: PrunedTables,
): (kind: PruneKind, c: PruneCutoffs, limit: number, mode: 'delete' | 'count') => Statement {
  const PRUNED_TABLE: Record<PruneKind, SqlFragment> = {
    session_tokens: tokens,
    sessions,
    spent_tokens: tokens,
    trusted_devices: devices,
    security_events: events,
  };

  return (kind, c, limit, mode) => {
    const open = new SqlFragment(
      mode === 'delete'
        ? `DELETE FROM ${PRUNED_TABLE[kind].text} WHERE id IN (`
        : 'SELECT CAST(COUNT(*) AS INTEGER) AS n FROM (',
    );
    const close = new SqlFragment(mode === 'delete' ? ')' : ') v');
    const ended = c.sessionsEndedBefore;
    switch (kind) {
      // An ended session's tokens go first, in batches, so deleting the
      // session itself never cascades over thousands of rows in one go.
      case 'session_tokens':
        return sql`${open}SELECT t.id FROM ${tokens} t WHERE t.session_id IN (
            SELECT id FROM ${sessions} WHERE revoked_at < ${ended}
            UNION ALL SELECT id FROM ${sessions} WHERE revoked_at IS NULL AND idle_expires_at < ${ended})
          LIMIT ${limit}${close}`;
      case 'sessions':
        return sql`${open}SELECT id FROM ${sessions} WHERE revoked_at < ${ended}
          UNION ALL SELECT id FROM ${sessions} WHERE revoked_at IS NULL AND idle_expires_at < ${ended}
          LIMIT ${limit}${close}`;
      // Inside sessions still kept: a spent token past the reuse-detection
      // horizon whose successor is spent too. Never the current token (unused),
      // never the parent of the current one (a grace replay or a client whose
      // response was lost derives that successor from it). Successors are
      // always younger than their parent, so a token inside the horizon keeps
      // its whole chain forward. A token is spent after it was created, so
      // the condition on created_at changes nothing but lets the index on
      // it (which rotations never update) find the candidates.
      case 'spent_tokens':
        return sql`${open}SELECT t.id FROM ${tokens} t
            JOIN ${tokens} n ON n.id = t.successor_id
            JOIN ${sessions} s ON s.id = t.session_id
          WHERE t.created_at < ${c.tokensUsedBefore}
            AND t.used_at IS NOT NULL AND t.used_at < ${c.tokensUsedBefore} AND n.used_at IS NOT NULL
            AND (s.revoked_at IS NULL OR s.revoked_at >= ${ended}) AND s.idle_expires_at >= ${ended}
          LIMIT ${limit}${close}`;
      case 'trusted_devices':
        return sql`${open}SELECT id FROM ${devices} WHERE last_used_at < ${c.devicesUsedBefore}
          LIMIT ${limit}${close}`;
      case 'security_events':
        return sql`${open}SELECT id FROM ${events} WHERE at < ${c.eventsBefore} LIMIT ${limit}${close}`;
    }
  };
}
