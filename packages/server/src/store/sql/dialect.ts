import type { Migration } from '../migration.js';
import type { Row } from '../rows.js';

/**
 * The seam between the shared SQL store (`sql-store.ts`, every query once)
 * and a database adapter (`sqlite/`, `postgres/`). An adapter supplies only
 * what differs between databases: how a parameter is written (`?`, `$1`),
 * how a table is named (PostgreSQL qualifies it with the store's schema),
 * how statements reach the driver, how a transaction is opened, which
 * driver error is a given unique violation, and its own migrations.
 *
 * Units of work are generators that yield statements and receive their
 * results. That lets one body run two ways: better-sqlite3 is synchronous,
 * so the SQLite adapter drives a unit to its end inside one synchronous
 * `BEGIN IMMEDIATE` transaction (shared with the other units of the same
 * event-loop turn, each in its own savepoint) (nothing else can interleave on the thread,
 * not even another connection to the same file in this process); `pg` is
 * asynchronous, so the PostgreSQL adapter awaits each statement on one
 * pooled client between BEGIN and COMMIT.
 */

/** One statement, compiled for a dialect. Values travel as parameters, never as SQL text. */
export interface Statement {
  text: string;
  params: unknown[];
  /** Several parameterless statements in one text (a migration step). */
  script?: boolean;
  /**
   * Keep it prepared on each connection (pg: a named statement), for the hot
   * path. Only for statements that list their result columns: a migration
   * adding a column must not change a prepared statement's result type
   * (PostgreSQL refuses to run it then). SQLite keeps every statement prepared.
   */
  prepared?: boolean;
}

/** What the driver returned: the rows (SELECT, or RETURNING) and how many rows were changed. */
export interface StatementResult {
  rows: Row[];
  changes: number;
}

/** A unit of work: yields statements, is resumed with each result, returns its outcome. */
export type Work<T> = Generator<Statement, T, StatementResult>;

/** Runs one statement inside a unit of work and returns its rows. */
export function* rowsOf(statement: Statement): Work<Row[]> {
  return (yield statement).rows;
}

/** Runs one statement inside a unit of work and returns how many rows it changed. */
export function* changesOf(statement: Statement): Work<number> {
  return (yield statement).changes;
}

/** Unique constraints the store maps to domain errors, by their PostgreSQL name. */
export type UniqueConstraint = 'users_email_key';

/** Baton's tables, as the shared store refers to them. */
export type TableName =
  | 'users'
  | 'clients'
  | 'sessions'
  | 'refresh_tokens'
  | 'signing_keys'
  | 'security_events'
  | 'trusted_devices'
  | 'server_secrets'
  | 'dpop_proofs'
  | 'baton_migrations';

/** What a database adapter gives the shared SQL store. */
export interface SqlDialect {
  /** `sqlite` or `postgres`. */
  readonly name: string;
  /** How the parameter at `index` (0-based) is written in SQL text. */
  placeholder(index: number): string;
  /** A table as written in SQL text (schema-qualified where the database has schemas). */
  table(name: TableName): string;
  /**
   * Appended to `ORDER BY <text column>` so both databases break ties the
   * same way, byte by byte, whatever collation a PostgreSQL database uses.
   */
  readonly bytewise: string;
  /**
   * Appended to a SELECT inside a transaction to lock the rows it read until
   * the commit (` FOR UPDATE`). Empty where a write transaction already
   * holds the whole database (SQLite's IMMEDIATE transactions).
   */
  readonly lockRows: string;
  /**
   * Whether `WITH … AS (UPDATE … RETURNING …)` works (PostgreSQL): then a
   * multi-table write can be one statement, one round trip, atomic without
   * a transaction. SQLite's CTEs can only read.
   */
  readonly writableCte: boolean;
  /**
   * Whether a parameter may be an array (`unnest(CAST($1 AS TEXT[]))`),
   * as on PostgreSQL: then the refresh-token lookups of one
   * event-loop turn share one statement, and so do its rotations
   * (`statement-batch.ts`). SQLite shares their commit instead.
   */
  readonly arrayParams: boolean;
  /** Runs a unit of work outside a transaction: each statement commits on its own. */
  run<T>(work: () => Work<T>): Promise<T>;
  /**
   * Runs a unit of work in one transaction, all or nothing. `work` may be
   * called again when the database rolled the attempt back by itself (a
   * deadlock): it must only yield statements, with no other side effect.
   */
  transaction<T>(work: () => Work<T>): Promise<T>;
  /** Whether `err` is the driver's report of a violation of `constraint`. */
  isUniqueViolation(err: unknown, constraint: UniqueConstraint): boolean;
  /** Applies pending numbered migrations; safe to call from several processes at once. */
  migrate(): Promise<number>;
  /** This dialect's numbered migrations, for counting the pending ones without applying them. */
  readonly migrations: readonly Migration[];
  /** Answers a row when the migrations table exists (a fresh database has none). */
  readonly migrationsTableQuery: Statement;
  /** Answers `now_ms`, the database server's clock; null where the database has no clock of its own. */
  readonly clockQuery: Statement | null;
  /** Answers `on`, whether the database server runs autovacuum; null where it has none. */
  readonly autovacuumQuery: Statement | null;
  /** Throws when the database cannot be reached. */
  ping(): Promise<void>;
  /** Releases connections; calling it twice is harmless. */
  close(): Promise<void>;
}

/** Drives a unit of work with a synchronous executor (better-sqlite3), to its end before returning. */
export function driveSync<T>(work: Work<T>, execute: (s: Statement) => StatementResult): T {
  let step = work.next();
  while (!step.done) {
    let result: StatementResult;
    try {
      result = execute(step.value);
    } catch (err) {
      // Let the unit see the failure (it may handle it); otherwise it propagates from here.
      step = work.throw(err);
      continue;
    }
    step = work.next(result);
  }
  return step.value;
}

/** Drives a unit of work with an asynchronous executor (pg), one statement at a time. */
export async function driveAsync<T>(
  work: Work<T>,
  execute: (s: Statement) => Promise<StatementResult>,
): Promise<T> {
  let step = work.next();
  while (!step.done) {
    let result: StatementResult;
    try {
      result = await execute(step.value);
    } catch (err) {
      step = work.throw(err);
      continue;
    }
    step = work.next(result);
  }
  return step.value;
}
