import { createHash } from 'node:crypto';
import pg from 'pg';
import { BatonError } from '../../core/errors.js';
import {
  driveAsync,
  type SqlDialect,
  type Statement,
  type StatementResult,
  type Work,
} from '../sql/dialect.js';
import { applyMigrations } from '../sql/migration-runner.js';
import { sqlTag } from '../sql/statement.js';
import { postgresMigrations } from './postgres-migrations.js';

/**
 * Driver surface this adapter needs: `pg`'s `Pool` (`query`, `connect`,
 * `end`) and `PoolClient` (`query`, `release`), plus `pg.escapeIdentifier`
 * for the schema name. Every statement uses `$n` parameters; no value is
 * ever spliced into SQL text. (`postgres-store.ts` also constructs the pool
 * and listens to its `error` event.)
 */
type Pool = Pick<pg.Pool, 'query' | 'connect' | 'end'>;
type PoolClient = Pick<pg.PoolClient, 'query' | 'release' | 'on' | 'off'>;
/** Anything that runs a parameterised query: the pool, or a client inside a transaction. */
type Queryable = Pick<pg.Pool, 'query'> | PoolClient;

/** What the PostgreSQL dialect is built on (see `createPostgresStore`, which validates the options). */
export interface PostgresDialectOptions {
  pool: Pool;
  /** Whether `close()` ends the pool (the store opened it) or leaves it to its owner. */
  ownsPool: boolean;
  /** A schema name already checked against `POSTGRES_SCHEMA_NAME`. */
  schema: string;
}

/** SQLSTATEs after which PostgreSQL has rolled the whole transaction back and a retry is safe. */
const RETRYABLE = new Set(['40P01' /* deadlock_detected */, '40001' /* serialization_failure */]);
const TX_ATTEMPTS = 3;
/** How long `ping()` waits for an answer before readiness reports the store unreachable. */
const PING_TIMEOUT_MS = 5000;

/** Socket-level errors: the way to the database is broken, not the statement. */
const NETWORK_ERRORS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);
/** SQLSTATEs of a server going away or refusing connections: admin/crash shutdown, starting up, too many connections. */
const UNAVAILABLE_STATES = new Set(['57P01', '57P02', '57P03', '53300']);

/**
 * Whether `err` says PostgreSQL cannot be reached right now (down, restarting,
 * failing over, a dropped route) rather than that a statement was wrong.
 * pg reports these with a socket errno, a SQLSTATE of class 08 (connection
 * exception) or 57P0x, or only in words (a pool checkout timing out, a
 * connection ended mid-query).
 */
export function isUnavailable(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown };
  const code = typeof e?.code === 'string' ? e.code : '';
  if (NETWORK_ERRORS.has(code) || UNAVAILABLE_STATES.has(code) || code.startsWith('08')) return true;
  const message = typeof e?.message === 'string' ? e.message : '';
  return /Connection terminated|timeout exceeded when trying to connect|not queryable|Connection refused/i.test(
    message,
  );
}

/**
 * The one place a database outage becomes an answer: `temporarily_unavailable`
 * (503, no-store), never a 500. A unit whose COMMIT was lost this way may or
 * may not have committed; the client retries, and rotation's grace rule
 * answers a retried refresh either way.
 */
async function mapOutage<T>(p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (err) {
    if (isUnavailable(err))
      throw new BatonError('temporarily_unavailable', 'The database is not reachable; try again', {
        cause: err,
        retryAfter: 1,
      });
    throw err;
  }
}

/**
 * The name a statement is prepared under on each connection: derived from
 * its text, so two stores sharing one pool (different schemas, different
 * texts) never claim one name for two texts, and a connection parses each
 * text once instead of on every execution.
 */
const statementNames = new Map<string, string>();
function statementName(text: string): string {
  let name = statementNames.get(text);
  if (name === undefined) {
    name = `baton_${createHash('sha256').update(text).digest('base64url').slice(0, 24)}`;
    statementNames.set(text, name);
  }
  return name;
}

async function execute(db: Queryable, s: Statement): Promise<StatementResult> {
  // A script goes without parameters, so pg uses the simple protocol, which allows several statements.
  const r = s.script
    ? await db.query(s.text)
    : s.prepared
      ? await db.query({ name: statementName(s.text), text: s.text, values: s.params })
      : await db.query(s.text, s.params);
  return { rows: r.rows, changes: r.rowCount ?? 0 };
}

/**
 * Runs a unit of work outside a transaction, each statement committing on
 * its own. When the first statement fails with a deadlock or serialization
 * failure, nothing of the unit has happened yet, so it is run again, as a
 * transaction would be (a one-statement rotation relies on this).
 */
async function inAutocommit<T>(pool: Pool, work: () => Work<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    let executed = 0;
    try {
      return await driveAsync(work(), async (s) => {
        executed++;
        return execute(pool, s);
      });
    } catch (err) {
      if (executed === 1 && attempt < TX_ATTEMPTS && RETRYABLE.has((err as { code?: string }).code ?? ''))
        continue;
      throw err;
    }
  }
}

/**
 * Runs a unit of work in one READ COMMITTED transaction on one pooled
 * connection. A deadlock or serialization failure means PostgreSQL already
 * rolled every statement back, so the whole unit is retried a couple of
 * times instead of surfacing a 500 for a conflict the database resolved.
 */
async function inTransaction<T>(pool: Pool, work: () => Work<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const client = await pool.connect();
    let broken = false;
    // The pool listens for errors only on idle clients. A checked-out one whose
    // connection dies (a restart, a dropped route) emits 'error' too, and
    // unheard that would crash the process: the failing query reports it anyway.
    const onError = () => {
      broken = true;
    };
    client.on('error', onError);
    try {
      await client.query('BEGIN');
      const result = await driveAsync(work(), (s) => execute(client, s));
      await client.query('COMMIT');
      return result;
    } catch (err) {
      try {
        await client.query('ROLLBACK');
      } catch {
        // The connection itself failed: do not hand it back to the pool.
        broken = true;
      }
      if (attempt < TX_ATTEMPTS && RETRYABLE.has((err as { code?: string }).code ?? '')) continue;
      throw err;
    } finally {
      client.off('error', onError);
      client.release(broken);
    }
  }
}

/**
 * The PostgreSQL dialect, for many Baton instances sharing one database.
 * Every table name is qualified with the configured schema, so the store
 * does not depend on a connection's `search_path` (a caller's pool or a
 * transaction-pooling proxy may not keep one).
 */
export function createPostgresDialect({ pool, ownsPool, schema }: PostgresDialectOptions): SqlDialect {
  const quoted = pg.escapeIdentifier(schema);
  let closed = false;

  const dialect: SqlDialect = {
    name: 'postgres',
    placeholder: (index) => `$${index + 1}`,
    table: (name) => `${quoted}.${name}`,
    // The database's collation may sort text by language rules; "C" sorts by bytes, as SQLite does.
    bytewise: ' COLLATE "C"',
    lockRows: ' FOR UPDATE',
    writableCte: true,
    arrayParams: true,
    run: (work) => mapOutage(inAutocommit(pool, work)),
    transaction: (work) => mapOutage(inTransaction(pool, work)),
    isUniqueViolation(err, constraint) {
      const e = err as { code?: unknown; constraint?: unknown };
      return e.code === '23505' && e.constraint === constraint;
    },
    migrate() {
      const sql = sqlTag(dialect);
      // Several processes starting together all get here: the transaction-scoped
      // advisory lock (one per schema) makes them queue, so exactly one applies
      // each step and the others then find it recorded. The lock comes first
      // because even CREATE SCHEMA/TABLE IF NOT EXISTS can fail with a unique
      // violation when two sessions run it at once.
      return inTransaction(pool, function* () {
        yield sql`SELECT pg_advisory_xact_lock(hashtextextended(${`baton:migrate:${schema}`}, 0))`;
        // Look before creating: CREATE SCHEMA IF NOT EXISTS still needs the CREATE
        // privilege on the database, which a role given an existing schema may lack.
        const exists = yield sql`SELECT 1 FROM pg_namespace WHERE nspname = ${schema}`;
        if (exists.rows.length === 0) yield { text: `CREATE SCHEMA ${quoted}`, params: [] };
        // SET LOCAL ends with this transaction, so no pooled connection keeps it.
        yield { text: `SET LOCAL search_path TO ${quoted}`, params: [] };
        return yield* applyMigrations(sql, postgresMigrations);
      });
    },
    migrations: postgresMigrations,
    migrationsTableQuery: {
      text: "SELECT 1 FROM pg_catalog.pg_tables WHERE schemaname = $1 AND tablename = 'baton_migrations'",
      params: [schema],
    },
    // clock_timestamp(), not now(): now() is the transaction's start.
    clockQuery: {
      text: 'SELECT floor(extract(epoch FROM clock_timestamp()) * 1000)::float8 AS now_ms',
      params: [],
    },
    autovacuumQuery: { text: "SELECT current_setting('autovacuum') = 'on' AS on", params: [] },
    async ping() {
      // A pooled connection whose peer vanished (a failover, a dropped route)
      // can leave a query unanswered for minutes; readiness must say "not
      // ready" well before a load balancer gives up on the instance.
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`PostgreSQL did not answer within ${PING_TIMEOUT_MS} ms`)),
          PING_TIMEOUT_MS,
        );
      });
      try {
        await Promise.race([pool.query('SELECT 1'), timeout]);
      } finally {
        clearTimeout(timer);
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      if (ownsPool) await pool.end();
    },
  };
  return dialect;
}
