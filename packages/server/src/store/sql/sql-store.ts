import { BatonError } from '../../core/errors.js';
import { num, type Row, str, toClient, toDevice, toEvent, toKey, toSession, toUser } from '../rows.js';
import type { RevocationReason, SecurityEventRecord, SessionCreation, Store } from '../store.js';
import { changesOf, rowsOf, type SqlDialect, type TableName, type Work } from './dialect.js';
import { pruneStatements } from './sql-pruning.js';
import { refreshTokenStatements } from './sql-refresh-tokens.js';
import { SqlFragment, sqlTag } from './statement.js';

/**
 * The one SQL implementation of {@link Store}: every query of Baton is
 * written here once, in the SQL both SQLite (3.35+: RETURNING, ON CONFLICT)
 * and PostgreSQL accept, and runs through a {@link SqlDialect} that supplies
 * placeholders, table names, transactions and error mapping.
 *
 * The result is a plain object of functions (not a class instance), so a
 * caller may wrap it with `{ ...store, method }`.
 */
export function createSqlStore(dialect: SqlDialect): Store {
  const sql = sqlTag(dialect);
  const t = (name: TableName) => new SqlFragment(dialect.table(name));
  const users = t('users');
  const clients = t('clients');
  const sessions = t('sessions');
  const tokens = t('refresh_tokens');
  const keys = t('signing_keys');
  const events = t('security_events');
  const devices = t('trusted_devices');
  const secrets = t('server_secrets');
  const proofs = t('dpop_proofs');
  const bytewise = new SqlFragment(dialect.bytewise);
  const lockRows = new SqlFragment(dialect.lockRows);

  /** Runs a single read and returns its rows. */
  const read = (work: () => Work<Row[]>) => dialect.run(work);
  const firstOf = async (work: () => Work<Row[]>): Promise<Row | undefined> => (await read(work))[0];

  function* recordEvent(e: SecurityEventRecord | undefined): Work<void> {
    if (!e) return;
    yield sql`INSERT INTO ${events} (type, at, user_id, session_id, client_id, ip, detail)
      VALUES (${e.type}, ${e.at}, ${e.userId ?? null}, ${e.sessionId ?? null}, ${e.clientId ?? null},
        ${e.ip ?? null}, ${e.detail ? JSON.stringify(e.detail) : null})`;
  }

  function* revokeUserSessions(
    userId: string,
    reason: RevocationReason,
    now: number,
    except: string | null,
  ): Work<number> {
    // The CAST gives PostgreSQL a type for a parameter that is only compared with NULL.
    return yield* changesOf(sql`UPDATE ${sessions} SET revoked_at = ${now}, revoked_reason = ${reason}
      WHERE user_id = ${userId} AND revoked_at IS NULL AND (CAST(${except} AS TEXT) IS NULL OR id <> ${except})`);
  }

  const refresh = refreshTokenStatements(dialect, sql, { tokens, sessions, users });
  /**
   * The writes that revoke sessions tell the recent tokens (recent-tokens.ts)
   * once they have committed: a session revoked by id is forgotten by id, and
   * sessions revoked by a wider rule (a user's, a client's) forget them all.
   */
  const forgettingAll = <T>(write: Promise<T>): Promise<T> =>
    write.then((result) => {
      refresh.recent.forgetAll();
      return result;
    });
  const forgettingSessions = <T>(write: Promise<T>, ids: (result: T) => readonly string[]): Promise<T> =>
    write.then((result) => {
      for (const id of ids(result)) refresh.recent.forgetSession(id);
      return result;
    });

  const prunable = pruneStatements(sql, { sessions, tokens, devices, events });

  return {
    dialect: dialect.name,

    migrate: () => dialect.migrate(),
    ping: () => dialect.ping(),
    inspect: () =>
      dialect.run(function* () {
        const known = dialect.migrations.map((m) => m.version);
        // Read only: a fresh database has no migrations table, and creating one is migrate()'s job.
        const hasTable = (yield dialect.migrationsTableQuery).rows.length > 0;
        const recorded = hasTable
          ? new Set((yield sql`SELECT version FROM ${t('baton_migrations')}`).rows.map((r) => num(r.version)))
          : new Set<number>();
        const migrationsApplied = known.filter((v) => recorded.has(v)).length;
        const clock = dialect.clockQuery === null ? null : (yield dialect.clockQuery).rows[0];
        const vacuum = dialect.autovacuumQuery === null ? null : (yield dialect.autovacuumQuery).rows[0];
        return {
          migrationsApplied,
          migrationsPending: known.length - migrationsApplied,
          databaseTime: clock ? num(clock.now_ms) : null,
          autovacuum: vacuum ? vacuum.on === true : null,
        };
      }),
    close() {
      // What this turn asked for goes out before the connections close.
      refresh.flush();
      return dialect.close();
    },

    async createUser(user) {
      try {
        await dialect.run(function* () {
          yield sql`INSERT INTO ${users} (id, email, password_hash, created_at)
            VALUES (${user.id}, ${user.email}, ${user.passwordHash}, ${user.createdAt})`;
        });
      } catch (err) {
        // Only the email constraint means "taken"; a duplicate id is a programming error and stays one.
        if (dialect.isUniqueViolation(err, 'users_email_key')) {
          throw new BatonError('email_taken', 'An account with this email already exists');
        }
        throw err;
      }
      return { ...user, disabledAt: null, passwordChangedAt: null };
    },
    async findUserByEmail(email) {
      const r = await firstOf(() => rowsOf(sql`SELECT * FROM ${users} WHERE email = ${email}`));
      return r ? toUser(r) : null;
    },
    async findUserById(id) {
      const r = await firstOf(() => rowsOf(sql`SELECT * FROM ${users} WHERE id = ${id}`));
      return r ? toUser(r) : null;
    },
    async listUsers(opts = {}) {
      const limit = opts.limit ?? 1000;
      return (
        await read(() =>
          rowsOf(sql`SELECT * FROM ${users} ORDER BY created_at, id${bytewise} LIMIT ${limit}`),
        )
      ).map(toUser);
    },
    changePassword({ userId, passwordHash, now, keepSessionId, event }) {
      // One transaction: a failure between the statements must not leave the
      // new password in place while sessions opened with the old one live on.
      return forgettingAll(
        dialect.transaction(function* () {
          yield sql`UPDATE ${users} SET password_hash = ${passwordHash}, password_changed_at = ${now}
            WHERE id = ${userId}`;
          const count = yield* revokeUserSessions(userId, 'password_changed', now, keepSessionId);
          yield* recordEvent(event);
          return count;
        }),
      );
    },
    setUserDisabled({ userId, disabled, now, event }) {
      return forgettingAll(
        dialect.transaction(function* () {
          yield sql`UPDATE ${users} SET disabled_at = ${disabled ? now : null} WHERE id = ${userId}`;
          if (disabled) yield* revokeUserSessions(userId, 'user_disabled', now, null);
          yield* recordEvent(event);
        }),
      );
    },

    async findClient(id) {
      const r = await firstOf(() => rowsOf(sql`SELECT * FROM ${clients} WHERE id = ${id}`));
      return r ? toClient(r) : null;
    },
    async listClients() {
      return (await read(() => rowsOf(sql`SELECT * FROM ${clients} ORDER BY created_at, id${bytewise}`))).map(
        toClient,
      );
    },
    async createClient(c, opts = {}) {
      // ON CONFLICT (id) DO NOTHING, not a look-then-insert: several instances
      // seed the default client at start, and only one insert may land. Only
      // an id conflict is ignored; a bad row still fails.
      const onConflict = new SqlFragment(opts.ifMissing ? 'ON CONFLICT (id) DO NOTHING' : '');
      await dialect.run(function* () {
        yield sql`INSERT INTO ${clients} (id, name, type, secret_hash, allowed_origins, allowed_scopes, audience,
            access_ttl, refresh_idle_ttl, session_max_ttl, created_at)
          VALUES (${c.id}, ${c.name}, ${c.type}, ${c.secretHash}, ${JSON.stringify(c.allowedOrigins)},
            ${JSON.stringify(c.allowedScopes)}, ${c.audience}, ${c.accessTtl}, ${c.refreshIdleTtl},
            ${c.sessionMaxTtl}, ${c.createdAt})
          ${onConflict}`;
      });
    },
    deleteClient(id, now, event) {
      return forgettingAll(
        dialect.transaction(function* () {
          yield sql`UPDATE ${sessions} SET revoked_at = ${now}, revoked_reason = 'admin'
            WHERE client_id = ${id} AND revoked_at IS NULL`;
          const deleted = (yield* changesOf(sql`DELETE FROM ${clients} WHERE id = ${id}`)) === 1;
          if (deleted) yield* recordEvent(event);
          return deleted;
        }),
      );
    },

    createSession({ session: s, firstToken, verifiedPasswordHash, sessionLimit, event: loginEvent, device }) {
      // Together or not at all: a session without a token could never be used
      // or listed correctly; a token without a session breaks the foreign key.
      const creation = dialect.transaction(function* (): Work<SessionCreation> {
        // A login verifies the password outside any transaction (Argon2 takes
        // tens of ms). Re-check the account here, with its row locked: a
        // disable or password change that committed meanwhile makes this
        // refuse; one that comes later waits for this commit and then revokes
        // the new session with the others.
        const [account] = yield* rowsOf(sql`SELECT id FROM ${users}
          WHERE id = ${s.userId} AND disabled_at IS NULL
            AND (CAST(${verifiedPasswordHash ?? null} AS TEXT) IS NULL OR password_hash = ${verifiedPasswordHash ?? null})
          ${lockRows}`);
        if (!account) return { created: false, evicted: [] };
        yield sql`INSERT INTO ${sessions} (id, user_id, client_id, scope, created_at, last_used_at,
            idle_expires_at, expires_at, user_agent, ip, dpop_jkt)
          VALUES (${s.id}, ${s.userId}, ${s.clientId}, ${s.scope}, ${s.createdAt}, ${s.lastUsedAt},
            ${s.idleExpiresAt}, ${s.expiresAt}, ${s.userAgent}, ${s.ip}, ${s.dpopJkt ?? null})`;
        yield sql`INSERT INTO ${tokens} (id, session_id, secret_hash, parent_id, successor_id, created_at, used_at)
          VALUES (${firstToken.id}, ${s.id}, ${firstToken.secretHash}, NULL, NULL, ${s.createdAt}, NULL)`;
        yield* recordEvent(loginEvent);
        // The login's proof on its device commits with the session it proves, or not at all.
        if (device && 'add' in device)
          yield sql`INSERT INTO ${devices} (id, user_id, secret_hash, created_at, last_used_at)
            VALUES (${device.add.id}, ${s.userId}, ${device.add.secretHash}, ${s.createdAt}, ${s.createdAt})`;
        else if (device)
          yield sql`UPDATE ${devices} SET last_used_at = ${s.createdAt} WHERE id = ${device.touch}`;
        if (!sessionLimit) return { created: true, evicted: [] };
        // The user's row is locked above, so concurrent logins of one user
        // count one after another and the cap holds exactly.
        const t = s.createdAt;
        const [counted] = yield* rowsOf(sql`SELECT CAST(COUNT(*) AS INTEGER) AS n FROM ${sessions}
          WHERE user_id = ${s.userId} AND revoked_at IS NULL AND expires_at > ${t} AND idle_expires_at > ${t}`);
        const excess = Number(counted?.n ?? 0) - sessionLimit.max;
        if (excess <= 0) return { created: true, evicted: [] };
        // Never the new one, even if another instance's clock made older sessions look newer.
        const evicted =
          (yield* rowsOf(sql`UPDATE ${sessions} SET revoked_at = ${t}, revoked_reason = 'session_limit'
            WHERE id IN (SELECT id FROM ${sessions}
              WHERE user_id = ${s.userId} AND revoked_at IS NULL AND expires_at > ${t} AND idle_expires_at > ${t}
                AND id <> ${s.id}
              ORDER BY last_used_at, created_at, id${bytewise} LIMIT ${excess})
            RETURNING id`)).map((r) => str(r.id));
        const event = sessionLimit.event;
        if (event) for (const id of evicted) yield* recordEvent({ ...event, sessionId: id });
        return { created: true, evicted };
      });
      return forgettingSessions(creation, (c) => c.evicted);
    },
    async findSession(id) {
      const r = await firstOf(() => rowsOf(sql`SELECT * FROM ${sessions} WHERE id = ${id}`));
      return r ? toSession(r) : null;
    },
    async listActiveSessions(userId, now, page) {
      // Keyset, in the listing's own order (last use descending, then id bytewise): a page
      // starts strictly after the previous page's last session, ties in last use included.
      // The sentinels (no session used after the largest time, every id above '') make the
      // first page the same query.
      const after = page?.after ?? { lastUsedAt: Number.MAX_SAFE_INTEGER, id: '' };
      const found = await read(() =>
        page
          ? rowsOf(sql`SELECT * FROM ${sessions}
              WHERE user_id = ${userId} AND revoked_at IS NULL AND expires_at > ${now} AND idle_expires_at > ${now}
                AND (last_used_at < ${after.lastUsedAt} OR (last_used_at = ${after.lastUsedAt} AND id${bytewise} > ${after.id}))
              ORDER BY last_used_at DESC, id${bytewise} LIMIT ${page.limit}`)
          : rowsOf(sql`SELECT * FROM ${sessions}
              WHERE user_id = ${userId} AND revoked_at IS NULL AND expires_at > ${now} AND idle_expires_at > ${now}
              ORDER BY last_used_at DESC, id${bytewise}`),
      );
      return found.map((r) => toSession(r));
    },
    revokeSession({ sessionId, reason, now, event }) {
      function* work(): Work<boolean> {
        const changed =
          yield* changesOf(sql`UPDATE ${sessions} SET revoked_at = ${now}, revoked_reason = ${reason}
          WHERE id = ${sessionId} AND revoked_at IS NULL`);
        yield* recordEvent(event);
        return changed === 1;
      }
      // A lone UPDATE needs no transaction; with an event, both land or neither.
      return forgettingSessions(event ? dialect.transaction(work) : dialect.run(work), () => [sessionId]);
    },
    revokeUserSessions({ userId, reason, now, exceptSessionId, event }) {
      const work = function* () {
        const count = yield* revokeUserSessions(userId, reason, now, exceptSessionId ?? null);
        yield* recordEvent(event);
        return count;
      };
      return forgettingAll(event ? dialect.transaction(work) : dialect.run(work));
    },

    findRefreshToken: refresh.find,
    findRefreshTokenToRotate: refresh.findToRotate,
    rotateRefreshToken: refresh.rotate,

    async findTrustedDevice(id) {
      const r = await firstOf(() =>
        rowsOf(sql`SELECT d.id, d.user_id, d.secret_hash, d.created_at, d.last_used_at, u.email
          FROM ${devices} d JOIN ${users} u ON u.id = d.user_id WHERE d.id = ${id}`),
      );
      return r ? { device: toDevice(r), email: str(r.email) } : null;
    },

    async listSigningKeys() {
      return (await read(() => rowsOf(sql`SELECT * FROM ${keys} ORDER BY created_at, kid${bytewise}`))).map(
        toKey,
      );
    },
    async addSigningKey(k) {
      await dialect.run(function* () {
        yield sql`INSERT INTO ${keys} (kid, alg, private_jwk, public_jwk, created_at, activates_at, retired_at)
          VALUES (${k.kid}, ${k.alg}, ${k.privateJwk}, ${k.publicJwk}, ${k.createdAt}, ${k.activatesAt},
            ${k.retiredAt})`;
      });
    },
    async retireSigningKey(kid, at) {
      // One conditional UPDATE, so two instances retiring at once cannot push
      // a scheduled retirement later: each only ever moves it earlier.
      return (
        (await dialect.run(() =>
          changesOf(sql`UPDATE ${keys} SET retired_at = ${at}
            WHERE kid = ${kid} AND (retired_at IS NULL OR retired_at > ${at})`),
        )) === 1
      );
    },
    deleteSigningKeysRetiredBefore(before) {
      return dialect.run(() =>
        changesOf(sql`DELETE FROM ${keys} WHERE retired_at IS NOT NULL AND retired_at < ${before}`),
      );
    },

    async serverSecret({ name, candidate, now }) {
      // Insert-if-absent, then read: instances starting at once all end up with the one row that landed.
      const [row] = await dialect.transaction(function* () {
        yield sql`INSERT INTO ${secrets} (name, secret, created_at) VALUES (${name}, ${candidate}, ${now})
          ON CONFLICT (name) DO NOTHING`;
        return yield* rowsOf(sql`SELECT secret FROM ${secrets} WHERE name = ${name}`);
      });
      if (!row) throw new Error(`server secret ${name} could not be stored`);
      return str(row.secret);
    },
    recordDpopProof({ jtiHash, expiresAt, now, pruneLimit = 100 }) {
      return dialect.transaction(function* () {
        // Bounded: each recording clears at most this many expired records, so the table holds
        // about (proofs per second × their lifetime) rows however long the server runs.
        yield sql`DELETE FROM ${proofs} WHERE jti_hash IN (SELECT jti_hash FROM ${proofs}
          WHERE expires_at <= ${now} ORDER BY expires_at LIMIT ${pruneLimit})`;
        // One statement decides: a live record with this key makes it change nothing (a replay);
        // an expired one that the prune did not reach is taken over.
        const changed = yield* changesOf(sql`INSERT INTO ${proofs} AS p (jti_hash, expires_at)
          VALUES (${jtiHash}, ${expiresAt})
          ON CONFLICT (jti_hash) DO UPDATE SET expires_at = excluded.expires_at WHERE p.expires_at <= ${now}`);
        return changed === 1;
      });
    },

    async recordSecurityEvent(e) {
      await dialect.run(() => recordEvent(e));
    },
    async listSecurityEvents(opts = {}) {
      const limit = opts.limit ?? 100;
      const userId = opts.userId ?? null;
      const type = opts.type ?? null;
      const since = opts.since ?? 0;
      // The id is the order of recording: events with the same `at` still come back newest first.
      const found = await read(() =>
        rowsOf(sql`SELECT * FROM ${events}
          WHERE (CAST(${userId} AS TEXT) IS NULL OR user_id = ${userId})
            AND (CAST(${type} AS TEXT) IS NULL OR type = ${type}) AND at >= ${since}
          ORDER BY id DESC LIMIT ${limit}`),
      );
      return found.map(toEvent);
    },

    pruneBatch(kind, cutoffs, limit) {
      // One statement per batch, in a transaction of its own (SQLite: BEGIN
      // IMMEDIATE, so it queues for the write lock instead of failing to
      // upgrade a read): a refresh waits for at most one small batch. Two
      // instances choosing the same rows delete them once; the later one
      // simply deletes fewer.
      return dialect.transaction(() => changesOf(prunable(kind, cutoffs, limit, 'delete')));
    },
    async countPrunable(kind, cutoffs) {
      const [r] = await read(() => rowsOf(prunable(kind, cutoffs, Number.MAX_SAFE_INTEGER, 'count')));
      return Number(r?.n ?? 0);
    },
    async countActiveSessions(now) {
      // idle_expires_at never exceeds expires_at. SQLite answers it from the
      // partial index on live sessions; PostgreSQL scans (no index on a
      // column every rotation updates; metrics cache the count for 5 s).
      const [r] = await read(() =>
        rowsOf(sql`SELECT CAST(COUNT(*) AS INTEGER) AS n FROM ${sessions}
          WHERE revoked_at IS NULL AND idle_expires_at > ${now}`),
      );
      return Number(r?.n ?? 0);
    },
  };
}
