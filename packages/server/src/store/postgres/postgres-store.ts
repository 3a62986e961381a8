import pg from 'pg';
import { BatonError } from '../../core/errors.js';
import type { Migration } from '../migration.js';
import {
  json,
  num,
  optStr,
  prefixed,
  type Row,
  SESSION_COLUMNS,
  str,
  TOKEN_COLUMNS,
  toClient,
  toDevice,
  toKey,
  toSession,
  toToken,
  toUser,
} from '../rows.js';
import type { RefreshTokenState, RevocationReason, SecurityEventRecord, Store } from '../store.js';
import { postgresMigrations } from './postgres-migrations.js';

/**
 * Driver surface this adapter needs: `pg`'s `Pool` (`query`, `connect`,
 * `end`, the `error` event) and `PoolClient` (`query`, `release`). Every
 * statement uses `$n` parameters; no value is ever spliced into SQL text.
 */
type Pool = pg.Pool;
type PoolClient = pg.PoolClient;
/** Anything that runs a parameterised query: the pool, or a client inside a transaction. */
type Queryable = Pick<pg.Pool, 'query'> | PoolClient;

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

/** SQLSTATEs after which PostgreSQL has rolled the whole transaction back and a retry is safe. */
const RETRYABLE = new Set(['40P01' /* deadlock_detected */, '40001' /* serialization_failure */]);
const TX_ATTEMPTS = 3;
/** How long `ping()` waits for an answer before readiness reports the store unreachable. */
const PING_TIMEOUT_MS = 5000;

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
 * Runs `fn` in one READ COMMITTED transaction on one pooled connection. A
 * deadlock or serialization failure means PostgreSQL already rolled every
 * statement back, so the whole unit is retried a couple of times instead of
 * surfacing a 500 for a conflict the database resolved by itself.
 */
async function inTransaction<T>(pool: Pool, fn: (c: PoolClient) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const client = await pool.connect();
    let broken = false;
    try {
      await client.query('BEGIN');
      const result = await fn(client);
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
      client.release(broken);
    }
  }
}

/**
 * Applies pending migrations in one transaction. Several processes starting
 * together all call this: the transaction-scoped advisory lock (one per
 * schema) makes them queue, so exactly one applies each step and the others
 * then find it recorded. The lock comes first because even
 * `CREATE SCHEMA/TABLE IF NOT EXISTS` can fail with a unique violation when
 * two sessions run it at once.
 */
async function applyMigrations(
  pool: Pool,
  schema: string,
  migrations: readonly Migration[],
): Promise<number> {
  return inTransaction(pool, async (c) => {
    await c.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [`baton:migrate:${schema}`]);
    const quoted = pg.escapeIdentifier(schema);
    // Look before creating: CREATE SCHEMA IF NOT EXISTS still needs the CREATE
    // privilege on the database, which a role given an existing schema may lack.
    const exists = await c.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema]);
    if (exists.rowCount === 0) await c.query(`CREATE SCHEMA ${quoted}`);
    // SET LOCAL ends with this transaction, so no pooled connection keeps it.
    await c.query(`SET LOCAL search_path TO ${quoted}`);
    await c.query(
      'CREATE TABLE IF NOT EXISTS baton_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)',
    );
    const done = new Set(
      (await c.query('SELECT version FROM baton_migrations')).rows.map((r: Row) => num(r.version)),
    );
    let applied = 0;
    for (const m of migrations) {
      if (done.has(m.version)) continue;
      await c.query(m.up);
      await c.query('INSERT INTO baton_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [
        m.version,
        m.name,
        Date.now(),
      ]);
      applied++;
    }
    return applied;
  });
}

/**
 * The PostgreSQL store, for many Baton instances sharing one database.
 * Every table name is qualified with the configured schema, so the store
 * does not depend on a connection's `search_path` (a caller's pool or a
 * transaction-pooling proxy may not keep one). Writes that must be atomic
 * run in READ COMMITTED transactions; the rotation's conditional UPDATE is
 * its linearisation point (see {@link Store}).
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
  let closed = false;

  const s = pg.escapeIdentifier(schema);
  const users = `${s}.users`;
  const clients = `${s}.clients`;
  const sessions = `${s}.sessions`;
  const tokens = `${s}.refresh_tokens`;
  const keys = `${s}.signing_keys`;
  const events = `${s}.security_events`;
  const devices = `${s}.trusted_devices`;

  const rows = async (db: Queryable, sql: string, params: unknown[] = []): Promise<Row[]> =>
    (await db.query(sql, params)).rows as Row[];
  const first = async (db: Queryable, sql: string, params: unknown[] = []): Promise<Row | undefined> =>
    (await rows(db, sql, params))[0];
  const changes = async (db: Queryable, sql: string, params: unknown[] = []): Promise<number> =>
    (await db.query(sql, params)).rowCount ?? 0;

  const revokeUserSessionsIn = (
    db: Queryable,
    userId: string,
    reason: RevocationReason,
    now: number,
    except: string | null,
  ) =>
    changes(
      db,
      `UPDATE ${sessions} SET revoked_at = $1, revoked_reason = $2
       WHERE user_id = $3 AND revoked_at IS NULL AND ($4::text IS NULL OR id <> $4::text)`,
      [now, reason, userId, except],
    );

  const store: Store = {
    dialect: 'postgres',

    async migrate() {
      return applyMigrations(pool, schema, postgresMigrations);
    },
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

    async createUser(user) {
      try {
        await pool.query(
          `INSERT INTO ${users} (id, email, password_hash, created_at) VALUES ($1, $2, $3, $4)`,
          [user.id, user.email, user.passwordHash, user.createdAt],
        );
      } catch (err) {
        // Only the email constraint means "taken"; a duplicate id is a programming error and stays one.
        const e = err as { code?: string; constraint?: string };
        if (e.code === '23505' && e.constraint === 'users_email_key') {
          throw new BatonError('email_taken', 'An account with this email already exists');
        }
        throw err;
      }
      return { ...user, disabledAt: null, passwordChangedAt: null };
    },
    async findUserByEmail(email) {
      const r = await first(pool, `SELECT * FROM ${users} WHERE email = $1`, [email]);
      return r ? toUser(r) : null;
    },
    async findUserById(id) {
      const r = await first(pool, `SELECT * FROM ${users} WHERE id = $1`, [id]);
      return r ? toUser(r) : null;
    },
    async listUsers(opts = {}) {
      return (
        await rows(pool, `SELECT * FROM ${users} ORDER BY created_at, id LIMIT $1`, [opts.limit ?? 1000])
      ).map(toUser);
    },
    async changePassword({ userId, passwordHash, now, keepSessionId }) {
      // One transaction: a failure between the statements must not leave the
      // new password in place while sessions opened with the old one live on.
      return inTransaction(pool, async (c) => {
        await c.query(`UPDATE ${users} SET password_hash = $1, password_changed_at = $2 WHERE id = $3`, [
          passwordHash,
          now,
          userId,
        ]);
        return revokeUserSessionsIn(c, userId, 'password_changed', now, keepSessionId);
      });
    },
    async setUserDisabled({ userId, disabled, now }) {
      await inTransaction(pool, async (c) => {
        await c.query(`UPDATE ${users} SET disabled_at = $1 WHERE id = $2`, [disabled ? now : null, userId]);
        if (disabled) await revokeUserSessionsIn(c, userId, 'user_disabled', now, null);
      });
    },

    async findClient(id) {
      const r = await first(pool, `SELECT * FROM ${clients} WHERE id = $1`, [id]);
      return r ? toClient(r) : null;
    },
    async listClients() {
      return (await rows(pool, `SELECT * FROM ${clients} ORDER BY created_at, id`)).map(toClient);
    },
    async createClient(c, opts = {}) {
      // ON CONFLICT DO NOTHING, not a look-then-insert: several instances
      // seed the default client at start, and only one insert may land.
      await pool.query(
        `INSERT INTO ${clients}
         (id, name, type, secret_hash, allowed_origins, allowed_scopes, audience, access_ttl, refresh_idle_ttl, session_max_ttl, created_at)
         VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb, $7, $8, $9, $10, $11)
         ${opts.ifMissing ? 'ON CONFLICT (id) DO NOTHING' : ''}`,
        [
          c.id,
          c.name,
          c.type,
          c.secretHash,
          JSON.stringify(c.allowedOrigins),
          JSON.stringify(c.allowedScopes),
          c.audience,
          c.accessTtl,
          c.refreshIdleTtl,
          c.sessionMaxTtl,
          c.createdAt,
        ],
      );
    },
    async deleteClient(id, now) {
      return inTransaction(pool, async (c) => {
        await c.query(
          `UPDATE ${sessions} SET revoked_at = $1, revoked_reason = 'admin' WHERE client_id = $2 AND revoked_at IS NULL`,
          [now, id],
        );
        return (await changes(c, `DELETE FROM ${clients} WHERE id = $1`, [id])) === 1;
      });
    },

    async createSession({ session: x, firstToken }) {
      // Together or not at all: a session without a token could never be used
      // or listed correctly; a token without a session breaks the foreign key.
      await inTransaction(pool, async (c) => {
        await c.query(
          `INSERT INTO ${sessions} (id, user_id, client_id, scope, created_at, last_used_at, idle_expires_at, expires_at, user_agent, ip)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
          [
            x.id,
            x.userId,
            x.clientId,
            x.scope,
            x.createdAt,
            x.lastUsedAt,
            x.idleExpiresAt,
            x.expiresAt,
            x.userAgent,
            x.ip,
          ],
        );
        await c.query(
          `INSERT INTO ${tokens} (id, session_id, secret_hash, parent_id, successor_id, created_at, used_at)
           VALUES ($1, $2, $3, NULL, NULL, $4, NULL)`,
          [firstToken.id, x.id, firstToken.secretHash, x.createdAt],
        );
      });
    },
    async findSession(id) {
      const r = await first(pool, `SELECT * FROM ${sessions} WHERE id = $1`, [id]);
      return r ? toSession(r) : null;
    },
    async listActiveSessions(userId, now) {
      const found = await rows(
        pool,
        `SELECT * FROM ${sessions} WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2 AND idle_expires_at > $2
         ORDER BY last_used_at DESC, id`,
        [userId, now],
      );
      return found.map((r) => toSession(r));
    },
    async revokeSession({ sessionId, reason, now }) {
      return (
        (await changes(
          pool,
          `UPDATE ${sessions} SET revoked_at = $1, revoked_reason = $2 WHERE id = $3 AND revoked_at IS NULL`,
          [now, reason, sessionId],
        )) === 1
      );
    },
    async revokeUserSessions({ userId, reason, now, exceptSessionId }) {
      return revokeUserSessionsIn(pool, userId, reason, now, exceptSessionId ?? null);
    },

    async findRefreshToken(id) {
      const r = await first(
        pool,
        `SELECT ${prefixed('t', TOKEN_COLUMNS)}, ${prefixed('s', SESSION_COLUMNS)}, ${prefixed('n', TOKEN_COLUMNS)}
         FROM ${tokens} t
         JOIN ${sessions} s ON s.id = t.session_id
         LEFT JOIN ${tokens} n ON n.id = t.successor_id
         WHERE t.id = $1`,
        [id],
      );
      if (!r) return null;
      const state: RefreshTokenState = {
        token: toToken(r, 't_'),
        session: toSession(r, 's_'),
        successor: r.n_id === null || r.n_id === undefined ? null : toToken(r, 'n_'),
      };
      return state;
    },
    async rotateRefreshToken(w) {
      return inTransaction(pool, async (c) => {
        // The linearisation point. Concurrent rotations of one token (in this
        // process or another instance) all reach this UPDATE; the first takes
        // the row lock, the rest wait on it. When the winner commits, READ
        // COMMITTED re-evaluates the WHERE clause against the committed row
        // version, finds used_at set, and skips it: exactly one transaction
        // gets a row back. Should the winner roll back instead, a waiter sees
        // the original row and wins in its place.
        const marked = await first(
          c,
          `UPDATE ${tokens} AS t SET used_at = $1, successor_id = $2
           WHERE t.id = $3 AND t.used_at IS NULL
             AND EXISTS (SELECT 1 FROM ${sessions} x WHERE x.id = t.session_id AND x.revoked_at IS NULL)
           RETURNING t.session_id`,
          [w.now, w.successor.id, w.parentId],
        );
        // Lost the race, or the token is spent, unknown or its session revoked: write nothing.
        if (!marked) return false;
        await c.query(
          `INSERT INTO ${tokens} (id, session_id, secret_hash, parent_id, successor_id, created_at, used_at)
           VALUES ($1, $2, $3, $4, NULL, $5, NULL)`,
          [w.successor.id, marked.session_id, w.successor.secretHash, w.parentId, w.now],
        );
        await c.query(`UPDATE ${sessions} SET last_used_at = $1, idle_expires_at = $2 WHERE id = $3`, [
          w.now,
          w.idleExpiresAt,
          marked.session_id,
        ]);
        return true;
      });
    },

    async addTrustedDevice(d) {
      await pool.query(
        `INSERT INTO ${devices} (id, user_id, secret_hash, created_at, last_used_at) VALUES ($1, $2, $3, $4, $5)`,
        [d.id, d.userId, d.secretHash, d.createdAt, d.lastUsedAt],
      );
    },
    async findTrustedDevice(id) {
      const r = await first(
        pool,
        `SELECT d.id, d.user_id, d.secret_hash, d.created_at, d.last_used_at, u.email
         FROM ${devices} d JOIN ${users} u ON u.id = d.user_id WHERE d.id = $1`,
        [id],
      );
      return r ? { device: toDevice(r), email: str(r.email) } : null;
    },
    async touchTrustedDevice({ id, now }) {
      return (await changes(pool, `UPDATE ${devices} SET last_used_at = $1 WHERE id = $2`, [now, id])) === 1;
    },

    async listSigningKeys() {
      return (await rows(pool, `SELECT * FROM ${keys} ORDER BY created_at, kid`)).map(toKey);
    },
    async addSigningKey(k) {
      await pool.query(
        `INSERT INTO ${keys} (kid, alg, private_jwk, public_jwk, created_at, activates_at, retired_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)`,
        [k.kid, k.alg, k.privateJwk, k.publicJwk, k.createdAt, k.activatesAt, k.retiredAt],
      );
    },
    async retireSigningKey(kid, at) {
      // One conditional UPDATE, so two instances retiring at once cannot push
      // a scheduled retirement later: each only ever moves it earlier.
      return (
        (await changes(
          pool,
          `UPDATE ${keys} SET retired_at = $1 WHERE kid = $2 AND (retired_at IS NULL OR retired_at > $1)`,
          [at, kid],
        )) === 1
      );
    },
    async deleteSigningKeysRetiredBefore(before) {
      return changes(pool, `DELETE FROM ${keys} WHERE retired_at IS NOT NULL AND retired_at < $1`, [before]);
    },

    async recordSecurityEvent(e) {
      await pool.query(
        `INSERT INTO ${events} (type, at, user_id, session_id, client_id, ip, detail)
         VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)`,
        [
          e.type,
          e.at,
          e.userId ?? null,
          e.sessionId ?? null,
          e.clientId ?? null,
          e.ip ?? null,
          e.detail ? JSON.stringify(e.detail) : null,
        ],
      );
    },
    async listSecurityEvents(opts = {}) {
      const found = opts.userId
        ? await rows(pool, `SELECT * FROM ${events} WHERE user_id = $1 ORDER BY id DESC LIMIT $2`, [
            opts.userId,
            opts.limit ?? 100,
          ])
        : await rows(pool, `SELECT * FROM ${events} ORDER BY id DESC LIMIT $1`, [opts.limit ?? 100]);
      return found.map((r) => ({
        type: str(r.type) as SecurityEventRecord['type'],
        at: num(r.at),
        userId: optStr(r.user_id),
        sessionId: optStr(r.session_id),
        clientId: optStr(r.client_id),
        ip: optStr(r.ip),
        ...(r.detail !== null && r.detail !== undefined
          ? { detail: json<SecurityEventRecord['detail']>(r.detail) }
          : {}),
      }));
    },
  };
  return store;
}
