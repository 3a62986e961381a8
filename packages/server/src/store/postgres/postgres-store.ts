import pg from 'pg';
import { createSqlStore } from '../sql/sql-store.js';
import type { Store } from '../store.js';
import { createPostgresDialect } from './postgres-dialect.js';

/** `pg`'s pool; the driver methods the store uses are listed in `postgres-dialect.ts`. */
type Pool = pg.Pool;

/** Options of {@link createPostgresStore}: exactly one of `connectionString` or `pool`. */
export interface PostgresStoreOptions {
  /** A `postgres://` or `postgresql://` URL; the store opens and owns a pool for it. */
  connectionString?: string;
  /**
   * A pool the caller owns (and ends): the store only borrows connections
   * from it, and `close()` leaves it open.
   */
  pool?: Pool;
  /**
   * The PostgreSQL schema holding Baton's tables (default `public`), created
   * by `migrate()` when missing. Lower-case letters, digits and `_`, starting
   * with a letter or `_`, at most 63 characters.
   */
  schema?: string;
  /** Most connections the store's own pool opens (default 10). Not allowed with `pool`. */
  max?: number;
}

const OPTION_KEYS = new Set(['connectionString', 'pool', 'schema', 'max']);
/**
 * The schema names the store accepts: identifiers PostgreSQL leaves as they
 * are when unquoted, so `schema: 'baton'` is the schema `psql` calls
 * `baton`, and no name needs quoting rules explained.
 */
export const POSTGRES_SCHEMA_NAME: RegExp = /^[a-z_][a-z0-9_]{0,62}$/;

function validate(options: PostgresStoreOptions): { schema: string } {
  if (typeof options !== 'object' || options === null)
    throw new TypeError('createPostgresStore: options must be an object');
  for (const key of Object.keys(options)) {
    if (!OPTION_KEYS.has(key)) throw new TypeError(`createPostgresStore: unknown option "${key}"`);
  }
  const hasUrl = options.connectionString !== undefined;
  const hasPool = options.pool !== undefined;
  if (hasUrl === hasPool)
    throw new TypeError('createPostgresStore: pass exactly one of connectionString or pool');
  // The message names the rule, never the value: a connection string may hold a password.
  if (
    hasUrl &&
    (typeof options.connectionString !== 'string' || !/^postgres(ql)?:\/\//.test(options.connectionString))
  )
    throw new TypeError('createPostgresStore: connectionString must start with postgres:// or postgresql://');
  if (hasPool && typeof (options.pool as Pool).connect !== 'function')
    throw new TypeError('createPostgresStore: pool must be a pg.Pool');
  if (options.max !== undefined) {
    if (hasPool) throw new TypeError('createPostgresStore: max applies only to the store’s own pool');
    if (!Number.isInteger(options.max) || options.max < 1)
      throw new TypeError('createPostgresStore: max must be a positive integer');
  }
  const schema = options.schema ?? 'public';
  if (typeof schema !== 'string' || !POSTGRES_SCHEMA_NAME.test(schema))
    throw new TypeError(
      'createPostgresStore: schema must be lower-case letters, digits and _, starting with a letter or _, at most 63 characters',
    );
  return { schema };
}

/**
 * The PostgreSQL store, for many Baton instances sharing one database: the
 * shared SQL store on the PostgreSQL dialect. Every table name is qualified
 * with the configured schema; writes that must be atomic run in READ
 * COMMITTED transactions; the rotation's conditional UPDATE is its
 * linearisation point (see {@link Store}).
 *
 * @throws TypeError for bad options (at once, not at the first query).
 */
export function createPostgresStore(options: PostgresStoreOptions): Store {
  const { schema } = validate(options);
  const ownsPool = options.pool === undefined;
  const pool: Pool =
    options.pool ??
    new pg.Pool({
      connectionString: options.connectionString,
      max: options.max ?? 10,
      // Waiting for a connection (a new one, or a free one from a busy pool)
      // fails after this long instead of queueing requests forever.
      connectionTimeoutMillis: 5000,
      // Lets the OS notice a peer that vanished without closing the socket.
      keepAlive: true,
      application_name: 'baton',
    });
  if (ownsPool) {
    // pg-pool emits 'error' when an idle connection dies (a server restart, a
    // proxy timeout). Unhandled, that would crash the process; the pool has
    // already dropped the connection and opens a new one on the next query.
    pool.on('error', () => {});
  }
  return createSqlStore(createPostgresDialect({ pool, ownsPool, schema }));
}
