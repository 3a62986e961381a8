import { BatonError } from '../../core/errors.js';
import {
  optStr,
  prefixed,
  type Row,
  SESSION_COLUMNS,
  str,
  TOKEN_COLUMNS,
  toSession,
  toToken,
} from '../rows.js';
import type { RefreshTokenState, RotationResult, RotationWrite } from '../store.js';
import { changesOf, rowsOf, type SqlDialect, type Statement, type Work } from './dialect.js';
import { createRecentTokens, type RecentTokens } from './recent-tokens.js';
import { prepared, SqlFragment, type SqlTag } from './statement.js';
import { createStatementBatch } from './statement-batch.js';

/** The most lookups, or rotations, one shared statement carries. */
const BATCH_MAX = 64;

/**
 * The fewest elements an array parameter of a shared statement has: shorter
 * arrays are padded with NULLs, which match no row. PostgreSQL plans a
 * prepared statement again for each execution (a custom plan) while that
 * plan looks cheaper than the generic one; the generic plan assumes an array
 * parameter of 10 elements, a custom plan counts them, so without padding the
 * small batches of a turn always look cheaper, and every batch would be
 * planned anew (seen with 200,000 tokens: 30 executions, 30 custom plans;
 * EXPLAIN puts the rotation's planning near 0.5 ms, more than its execution).
 * Padded, the custom plans never look cheaper, and after its
 * first five executions the statement keeps its generic plan on the
 * connection. A NULL costs an index probe that ends at once.
 */
const ARRAY_MIN = 16;
const padded = <T>(values: readonly T[]): (T | null)[] =>
  values.length >= ARRAY_MIN
    ? [...values]
    : [...values, ...new Array<null>(ARRAY_MIN - values.length).fill(null)];

/** The hot path of a refresh in the store: the token's lookup and its rotation. */
export interface RefreshTokenStatements {
  /** `Store.findRefreshToken`. */
  find(id: string): Promise<RefreshTokenState | null>;
  /** `Store.findRefreshTokenToRotate`: from the recent tokens when there, else as `find`. */
  findToRotate(id: string): Promise<RefreshTokenState | null>;
  /** `Store.rotateRefreshToken`. */
  rotate(w: RotationWrite): Promise<RotationResult>;
  /** Sends what this turn has queued now (before the connections close). */
  flush(): void;
  /** The store's other writes tell it which sessions they revoked (see `recent-tokens.ts`). */
  recent: Pick<RecentTokens, 'forgetSession' | 'forgetAll'>;
}

/**
 * The refresh-token lookup and rotation of the SQL store, with their
 * variants: one statement per call, two in one transaction (SQLite), or one
 * shared by the calls of an event-loop turn (PostgreSQL). Kept apart from
 * `sql-store.ts` because it is the one path every refresh takes.
 */
export function refreshTokenStatements(
  dialect: SqlDialect,
  sql: SqlTag,
  { tokens, sessions, users }: { tokens: SqlFragment; sessions: SqlFragment; users: SqlFragment },
): RefreshTokenStatements {
  const read = (work: () => Work<Row[]>) => dialect.run(work);
  const tokenColumns = new SqlFragment(TOKEN_COLUMNS.join(', '));
  const tokenAndSession = new SqlFragment(
    `${prefixed('t', TOKEN_COLUMNS)}, ${prefixed('s', SESSION_COLUMNS)}`,
  );

  /** A lookup's answer from its rows: the token joined with its session, and its successor's row if spent. */
  const stateOf = (r: Row, n: Row | undefined): RefreshTokenState => ({
    token: toToken(r, 't_'),
    session: toSession(r, 's_'),
    successor: n ? toToken(n) : null,
  });

  function* refreshTokenState(id: string): Work<RefreshTokenState | null> {
    // One join: the hot path (an unused token) needs the token and its session only.
    const [r] = yield* rowsOf(
      prepared(sql`SELECT ${tokenAndSession}
      FROM ${tokens} t JOIN ${sessions} s ON s.id = t.session_id
      WHERE t.id = ${id}`),
    );
    if (!r) return null;
    // A spent token's successor decides between a grace replay and reuse; it is
    // written with the parent's used_at in one transaction, so it exists here.
    const successorId = optStr(r.t_successor_id);
    const [n] = successorId
      ? yield* rowsOf(prepared(sql`SELECT ${tokenColumns} FROM ${tokens} WHERE id = ${successorId}`))
      : [];
    return stateOf(r, n);
  }

  /**
   * The lookups of several tokens at once, for dialects with array parameters
   * (PostgreSQL): the same join for every id in one statement, and the
   * successors of the spent ones (rare) in a second. Answers in the order of
   * `ids`, null for an unknown one. The ids come as rows of `unnest` rather
   * than `= ANY(…)`, whose custom plans do not count the padding NULLs (see
   * {@link ARRAY_MIN}).
   */
  function* refreshTokenStates(ids: readonly string[]): Work<(RefreshTokenState | null)[]> {
    const found = new Map<string, Row>();
    for (const r of yield* rowsOf(
      prepared(sql`SELECT ${tokenAndSession}
      FROM unnest(CAST(${padded([...new Set(ids)])} AS TEXT[])) AS q (wanted)
        JOIN ${tokens} t ON t.id = q.wanted JOIN ${sessions} s ON s.id = t.session_id`),
    ))
      found.set(str(r.t_id), r);
    const spent = [...found.values()].flatMap((r) => optStr(r.t_successor_id) ?? []);
    const successors = new Map<string, Row>();
    if (spent.length > 0)
      for (const n of yield* rowsOf(
        prepared(sql`SELECT ${tokenColumns}
        FROM unnest(CAST(${padded(spent)} AS TEXT[])) AS q (wanted) JOIN ${tokens} ON id = q.wanted`),
      ))
        successors.set(str(n.id), n);
    return ids.map((id) => {
      const r = found.get(id);
      return r ? stateOf(r, successors.get(optStr(r.t_successor_id) ?? '')) : null;
    });
  }

  /**
   * The rotation as one statement, for dialects with data-modifying CTEs
   * (PostgreSQL): one round trip, atomic on its own, no transaction needed.
   * It runs alone when a rotation has its turn to itself, and when a shared
   * statement failed (see {@link rotateEachInOneStatement}).
   * `marked` is the linearisation point: concurrent rotations queue on the
   * token's row lock and, under READ COMMITTED, re-check `used_at IS NULL`
   * against the winner's committed row, so only one statement gets a row
   * out of it; the INSERT and the session touch then feed on `marked` alone.
   * A disabled user's sessions are revoked with the switch; the join on users
   * refuses them anyway, at no extra cost. The CASTs type parameters that
   * only appear in a SELECT list.
   */
  function rotateInOneStatement(w: RotationWrite): Statement {
    return prepared(sql`WITH marked AS (
      UPDATE ${tokens} SET used_at = ${w.now}, successor_id = ${w.successor.id}
      WHERE id = ${w.parentId} AND used_at IS NULL
        AND EXISTS (SELECT 1 FROM ${sessions} x JOIN ${users} u ON u.id = x.user_id
          WHERE x.id = session_id AND x.revoked_at IS NULL AND u.disabled_at IS NULL)
      RETURNING session_id
    ), inserted AS (
      INSERT INTO ${tokens} (id, session_id, secret_hash, parent_id, successor_id, created_at, used_at)
      SELECT CAST(${w.successor.id} AS TEXT), session_id, CAST(${w.successor.secretHash} AS TEXT),
        CAST(${w.parentId} AS TEXT), NULL, CAST(${w.now} AS BIGINT), NULL
      FROM marked
      RETURNING session_id
    )
    UPDATE ${sessions} s SET last_used_at = ${w.now}, idle_expires_at = ${w.idleExpiresAt}
    FROM inserted WHERE s.id = inserted.session_id
    RETURNING s.id`);
  }

  /**
   * Several rotations as one statement (PostgreSQL): {@link rotateInOneStatement}
   * over arrays, one row of `unnest` per rotation. Each row is conditional on
   * its own (its token unused, its session not revoked, its user not
   * disabled) and each rotation's three writes feed on its own `marked` row,
   * so every rotation happens whole or not at all, whatever the others do;
   * the statement answers the parent ids that rotated. The caller never puts
   * one parent id in twice: the UPDATE would mark it once, but the INSERT
   * would create two successors. (Two unused tokens of one session would
   * touch the session once; a session has one unused token at a time.) The
   * rows come in parent id order (statement-batch.ts), so two such statements,
   * from one instance or two, lock the tokens they share in the same order.
   */
  function rotateEachInOneStatement(ws: readonly RotationWrite[]): Statement {
    return prepared(sql`WITH marked AS (
      UPDATE ${tokens} t SET used_at = w.used_at, successor_id = w.successor_id
      FROM unnest(CAST(${padded(ws.map((w) => w.parentId))} AS TEXT[]),
          CAST(${padded(ws.map((w) => w.successor.id))} AS TEXT[]),
          CAST(${padded(ws.map((w) => w.successor.secretHash))} AS TEXT[]),
          CAST(${padded(ws.map((w) => w.now))} AS BIGINT[]),
          CAST(${padded(ws.map((w) => w.idleExpiresAt))} AS BIGINT[]))
        AS w (parent_id, successor_id, secret_hash, used_at, idle_expires_at)
      WHERE t.id = w.parent_id AND t.used_at IS NULL
        AND EXISTS (SELECT 1 FROM ${sessions} x JOIN ${users} u ON u.id = x.user_id
          WHERE x.id = t.session_id AND x.revoked_at IS NULL AND u.disabled_at IS NULL)
      RETURNING t.id, t.session_id, w.successor_id, w.secret_hash, w.used_at, w.idle_expires_at
    ), inserted AS (
      INSERT INTO ${tokens} (id, session_id, secret_hash, parent_id, successor_id, created_at, used_at)
      SELECT successor_id, session_id, secret_hash, id, NULL, used_at, NULL
      FROM marked
      RETURNING parent_id
    ), touched AS (
      UPDATE ${sessions} s SET last_used_at = m.used_at, idle_expires_at = m.idle_expires_at
      FROM marked m WHERE s.id = m.session_id
      RETURNING s.id
    )
    SELECT parent_id FROM inserted`);
  }

  /**
   * The rotation as two statements in one transaction, for dialects without
   * data-modifying CTEs (SQLite, where the IMMEDIATE transaction holds the
   * database's one write lock throughout, so nothing interleaves).
   */
  function* rotateInTwoStatements(w: RotationWrite): Work<boolean> {
    // The check and the session touch at once: the session is touched only
    // when its token is still unused, the session not revoked and its user
    // not disabled (`user_id` in the subquery is the session's).
    const [touched] = yield* rowsOf(sql`UPDATE ${sessions} SET last_used_at = ${w.now},
      idle_expires_at = ${w.idleExpiresAt}
    WHERE id = (SELECT session_id FROM ${tokens} WHERE id = ${w.parentId} AND used_at IS NULL)
      AND revoked_at IS NULL
      AND EXISTS (SELECT 1 FROM ${users} u WHERE u.id = user_id AND u.disabled_at IS NULL)
    RETURNING id`);
    if (!touched) return false;
    // Both token writes in one statement: the successor is inserted, and the
    // parent (which exists and is unused: checked above, under the same lock)
    // takes the conflict branch, which marks it used. Its VALUES row only
    // names the key. The guards keep a spent token spent, and make a successor
    // id that collided with an existing token fail instead of touching it.
    const changed =
      yield* changesOf(sql`INSERT INTO ${tokens} (id, session_id, secret_hash, parent_id, successor_id, created_at, used_at)
    VALUES (${w.successor.id}, ${str(touched.id)}, ${w.successor.secretHash}, ${w.parentId}, NULL, ${w.now}, NULL),
      (${w.parentId}, ${str(touched.id)}, '', NULL, ${w.successor.id}, ${w.now}, ${w.now})
    ON CONFLICT (id) DO UPDATE SET used_at = excluded.used_at, successor_id = excluded.successor_id
      WHERE ${tokens}.used_at IS NULL AND excluded.parent_id IS NULL`);
    // Anything else would be a half rotation: throwing rolls the transaction back.
    if (changed !== 2) throw new Error('Refresh token rotation wrote an unexpected number of rows');
    return true;
  }

  const lookUpOne = (id: string) => dialect.run(() => refreshTokenState(id));
  const rotateOne = async (w: RotationWrite) =>
    (await read(() => rowsOf(rotateInOneStatement(w)))).length === 1;
  // An outage is every unit's answer (503); anything else is retried one unit at a time.
  const isOutage = (err: unknown) => err instanceof BatonError && err.code === 'temporarily_unavailable';
  // The lookups, and the rotations, of one event-loop turn share a statement
  // (see statement-batch.ts); where arrays cannot be parameters (SQLite), each
  // runs alone, and SQLite shares the turn's commit instead.
  const lookups = dialect.arrayParams
    ? createStatementBatch<string, RefreshTokenState | null>({
        max: BATCH_MAX,
        one: lookUpOne,
        many: (ids) => dialect.run(() => refreshTokenStates(ids)),
        failsAll: isOutage,
      })
    : null;
  const rotations =
    dialect.arrayParams && dialect.writableCte
      ? createStatementBatch<RotationWrite, boolean>({
          max: BATCH_MAX,
          keyOf: (w) => w.parentId,
          one: rotateOne,
          many: async (ws) => {
            const done = new Set(
              (await read(() => rowsOf(rotateEachInOneStatement(ws)))).map((r) => str(r.parent_id)),
            );
            return ws.map((w) => done.has(w.parentId));
          },
          failsAll: isOutage,
        })
      : null;
  const lookUp = (id: string) => (lookups ? lookups.submit(id) : lookUpOne(id));

  const recent = createRecentTokens();

  async function findToRotate(id: string): Promise<RefreshTokenState | null> {
    const known = recent.get(id);
    if (known) return known;
    const state = await lookUp(id);
    if (state) recent.remember(state);
    return state;
  }

  async function rotate(w: RotationWrite): Promise<RotationResult> {
    // Out before the write (a lookup meanwhile reads the token unused and may
    // put it back) and again after, so a spent token never stays in.
    const parent = recent.take(w.parentId);
    let rotated: boolean;
    try {
      rotated = rotations
        ? await rotations.submit(w)
        : dialect.writableCte
          ? await rotateOne(w)
          : await dialect.transaction(() => rotateInTwoStatements(w));
    } finally {
      recent.take(w.parentId);
    }
    if (rotated) {
      if (parent) recent.rotated(parent, w);
      return { outcome: 'rotated' };
    }
    // Lost the race, or the token is spent, unknown or its session revoked:
    // nothing was written. Report what is there, in a new statement, so it is
    // read after the winner committed (a sub-statement of the rotation would
    // see the snapshot from before the winner).
    return { outcome: 'conflict', state: await lookUp(w.parentId) };
  }

  return {
    find: lookUp,
    findToRotate,
    rotate,
    recent,
    flush() {
      lookups?.flush();
      rotations?.flush();
    },
  };
}
