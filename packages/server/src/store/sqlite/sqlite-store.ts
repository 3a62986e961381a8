import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { BatonError } from '../../core/errors.js';
import type { Migration } from '../migration.js';
import {
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
import type {
  RefreshTokenState,
  RevocationReason,
  RotationWrite,
  SecurityEventRecord,
  Store,
} from '../store.js';
import { sqliteMigrations } from './sqlite-migrations.js';

/**
 * Driver surface this adapter needs: better-sqlite3 v12's `Database`
 * (`prepare`, `exec`, `pragma`, `transaction` with `.immediate`). v13 needs
 * Node 22 and crashes on Node 20.
 */
type Db = Database.Database;

/** Options of {@link createSqliteStore}. */
export interface SqliteStoreOptions {
  /** File path, or `:memory:`. The folder is created when missing. */
  filename: string;
  /** How long a writer waits for another process's lock, in ms (default 5000). */
  busyTimeout?: number;
}

/** Applies pending migrations inside one IMMEDIATE transaction, so two processes starting together do not race. */
function applyMigrations(db: Db, migrations: readonly Migration[]): number {
  db.exec(
    'CREATE TABLE IF NOT EXISTS baton_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)',
  );
  const run = db.transaction(() => {
    const done = new Set(
      (db.prepare('SELECT version FROM baton_migrations').all() as Row[]).map((r) => num(r.version)),
    );
    let applied = 0;
    for (const m of migrations) {
      if (done.has(m.version)) continue;
      db.exec(m.up);
      db.prepare('INSERT INTO baton_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(
        m.version,
        m.name,
        Date.now(),
      );
      applied++;
    }
    return applied;
  });
  return run.immediate();
}

/**
 * The embedded SQLite store (WAL, busy timeout, foreign keys). Several
 * processes may share one file: writes that must be atomic run in
 * `BEGIN IMMEDIATE` transactions, which take SQLite's single write lock at
 * the start, so a read-check-write sequence cannot interleave with another
 * process's.
 */
export function createSqliteStore(options: SqliteStoreOptions): Store {
  if (options.filename !== ':memory:') mkdirSync(dirname(options.filename), { recursive: true });
  const db: Db = new Database(options.filename);
  db.pragma(`busy_timeout = ${Math.max(0, Math.floor(options.busyTimeout ?? 5000))}`);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');

  // Statements are prepared lazily: they need the schema, which migrate() creates.
  const cache = new Map<string, Database.Statement>();
  const q = (sql: string): Database.Statement => {
    let s = cache.get(sql);
    if (!s) {
      s = db.prepare(sql);
      cache.set(sql, s);
    }
    return s;
  };

  const revokeUserSessionsTx = (
    userId: string,
    reason: RevocationReason,
    now: number,
    except: string | null,
  ) =>
    q(
      `UPDATE sessions SET revoked_at = ?, revoked_reason = ?
       WHERE user_id = ? AND revoked_at IS NULL AND (? IS NULL OR id <> ?)`,
    ).run(now, reason, userId, except, except).changes;

  const rotate = db.transaction((w: RotationWrite): boolean => {
    // The linearisation point: only one writer can flip used_at from NULL.
    const marked = q(
      `UPDATE refresh_tokens SET used_at = @now, successor_id = @successorId
       WHERE id = @parentId AND used_at IS NULL
         AND EXISTS (SELECT 1 FROM sessions s WHERE s.id = refresh_tokens.session_id AND s.revoked_at IS NULL)`,
    ).run({ now: w.now, successorId: w.successor.id, parentId: w.parentId });
    if (marked.changes !== 1) return false;
    const parent = q('SELECT session_id FROM refresh_tokens WHERE id = ?').get(w.parentId) as Row;
    q(
      `INSERT INTO refresh_tokens (id, session_id, secret_hash, parent_id, successor_id, created_at, used_at)
       VALUES (?, ?, ?, ?, NULL, ?, NULL)`,
    ).run(w.successor.id, parent.session_id, w.successor.secretHash, w.parentId, w.now);
    q('UPDATE sessions SET last_used_at = ?, idle_expires_at = ? WHERE id = ?').run(
      w.now,
      w.idleExpiresAt,
      parent.session_id,
    );
    return true;
  });

  const store: Store = {
    dialect: 'sqlite',

    async migrate() {
      return applyMigrations(db, sqliteMigrations);
    },
    async ping() {
      db.prepare('SELECT 1').get();
    },
    async close() {
      cache.clear();
      if (db.open) db.close();
    },

    async createUser(user) {
      try {
        q('INSERT INTO users (id, email, password_hash, created_at) VALUES (?, ?, ?, ?)').run(
          user.id,
          user.email,
          user.passwordHash,
          user.createdAt,
        );
      } catch (err) {
        if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE') {
          throw new BatonError('email_taken', 'An account with this email already exists');
        }
        throw err;
      }
      return { ...user, disabledAt: null, passwordChangedAt: null };
    },
    async findUserByEmail(email) {
      const r = q('SELECT * FROM users WHERE email = ?').get(email) as Row | undefined;
      return r ? toUser(r) : null;
    },
    async findUserById(id) {
      const r = q('SELECT * FROM users WHERE id = ?').get(id) as Row | undefined;
      return r ? toUser(r) : null;
    },
    async listUsers(opts = {}) {
      return (q('SELECT * FROM users ORDER BY created_at LIMIT ?').all(opts.limit ?? 1000) as Row[]).map(
        toUser,
      );
    },
    async changePassword({ userId, passwordHash, now, keepSessionId }) {
      return db
        .transaction(() => {
          q('UPDATE users SET password_hash = ?, password_changed_at = ? WHERE id = ?').run(
            passwordHash,
            now,
            userId,
          );
          return revokeUserSessionsTx(userId, 'password_changed', now, keepSessionId);
        })
        .immediate();
    },
    async setUserDisabled({ userId, disabled, now }) {
      db.transaction(() => {
        q('UPDATE users SET disabled_at = ? WHERE id = ?').run(disabled ? now : null, userId);
        if (disabled) revokeUserSessionsTx(userId, 'user_disabled', now, null);
      }).immediate();
    },

    async findClient(id) {
      const r = q('SELECT * FROM clients WHERE id = ?').get(id) as Row | undefined;
      return r ? toClient(r) : null;
    },
    async listClients() {
      return (q('SELECT * FROM clients ORDER BY created_at, id').all() as Row[]).map(toClient);
    },
    async createClient(c, opts = {}) {
      q(
        `INSERT ${opts.ifMissing ? 'OR IGNORE ' : ''}INTO clients
         (id, name, type, secret_hash, allowed_origins, allowed_scopes, audience, access_ttl, refresh_idle_ttl, session_max_ttl, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ).run(
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
      );
    },
    async deleteClient(id, now) {
      return db
        .transaction(() => {
          q(
            `UPDATE sessions SET revoked_at = ?, revoked_reason = 'admin' WHERE client_id = ? AND revoked_at IS NULL`,
          ).run(now, id);
          return q('DELETE FROM clients WHERE id = ?').run(id).changes === 1;
        })
        .immediate();
    },

    async createSession({ session: s, firstToken }) {
      db.transaction(() => {
        q(
          `INSERT INTO sessions (id, user_id, client_id, scope, created_at, last_used_at, idle_expires_at, expires_at, user_agent, ip)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        ).run(
          s.id,
          s.userId,
          s.clientId,
          s.scope,
          s.createdAt,
          s.lastUsedAt,
          s.idleExpiresAt,
          s.expiresAt,
          s.userAgent,
          s.ip,
        );
        q(
          `INSERT INTO refresh_tokens (id, session_id, secret_hash, parent_id, successor_id, created_at, used_at)
           VALUES (?, ?, ?, NULL, NULL, ?, NULL)`,
        ).run(firstToken.id, s.id, firstToken.secretHash, s.createdAt);
      }).immediate();
    },
    async findSession(id) {
      const r = q('SELECT * FROM sessions WHERE id = ?').get(id) as Row | undefined;
      return r ? toSession(r) : null;
    },
    async listActiveSessions(userId, now) {
      const rows = q(
        `SELECT * FROM sessions WHERE user_id = ? AND revoked_at IS NULL AND expires_at > ? AND idle_expires_at > ?
         ORDER BY last_used_at DESC`,
      ).all(userId, now, now) as Row[];
      return rows.map((r) => toSession(r));
    },
    async revokeSession({ sessionId, reason, now }) {
      return (
        q('UPDATE sessions SET revoked_at = ?, revoked_reason = ? WHERE id = ? AND revoked_at IS NULL').run(
          now,
          reason,
          sessionId,
        ).changes === 1
      );
    },
    async revokeUserSessions({ userId, reason, now, exceptSessionId }) {
      return revokeUserSessionsTx(userId, reason, now, exceptSessionId ?? null);
    },

    async findRefreshToken(id) {
      const r = q(
        `SELECT ${prefixed('t', TOKEN_COLUMNS)}, ${prefixed('s', SESSION_COLUMNS)}, ${prefixed('n', TOKEN_COLUMNS)}
         FROM refresh_tokens t
         JOIN sessions s ON s.id = t.session_id
         LEFT JOIN refresh_tokens n ON n.id = t.successor_id
         WHERE t.id = ?`,
      ).get(id) as Row | undefined;
      if (!r) return null;
      const state: RefreshTokenState = {
        token: toToken(r, 't_'),
        session: toSession(r, 's_'),
        successor: r.n_id === null || r.n_id === undefined ? null : toToken(r, 'n_'),
      };
      return state;
    },
    async rotateRefreshToken(write) {
      return rotate.immediate(write);
    },

    async addTrustedDevice(d) {
      q(
        'INSERT INTO trusted_devices (id, user_id, secret_hash, created_at, last_used_at) VALUES (?, ?, ?, ?, ?)',
      ).run(d.id, d.userId, d.secretHash, d.createdAt, d.lastUsedAt);
    },
    async findTrustedDevice(id) {
      const r = q(
        `SELECT d.id, d.user_id, d.secret_hash, d.created_at, d.last_used_at, u.email
         FROM trusted_devices d JOIN users u ON u.id = d.user_id WHERE d.id = ?`,
      ).get(id) as Row | undefined;
      return r ? { device: toDevice(r), email: str(r.email) } : null;
    },
    async touchTrustedDevice({ id, now }) {
      return q('UPDATE trusted_devices SET last_used_at = ? WHERE id = ?').run(now, id).changes === 1;
    },

    async listSigningKeys() {
      return (q('SELECT * FROM signing_keys ORDER BY created_at, kid').all() as Row[]).map(toKey);
    },
    async addSigningKey(k) {
      q(
        `INSERT INTO signing_keys (kid, alg, private_jwk, public_jwk, created_at, activates_at, retired_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
      ).run(k.kid, k.alg, k.privateJwk, k.publicJwk, k.createdAt, k.activatesAt, k.retiredAt);
    },
    async retireSigningKey(kid, at) {
      return (
        q(
          'UPDATE signing_keys SET retired_at = ? WHERE kid = ? AND (retired_at IS NULL OR retired_at > ?)',
        ).run(at, kid, at).changes === 1
      );
    },
    async deleteSigningKeysRetiredBefore(before) {
      return q('DELETE FROM signing_keys WHERE retired_at IS NOT NULL AND retired_at < ?').run(before)
        .changes;
    },

    async recordSecurityEvent(e) {
      q(
        `INSERT INTO security_events (type, at, user_id, session_id, client_id, ip, detail)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
      ).run(
        e.type,
        e.at,
        e.userId ?? null,
        e.sessionId ?? null,
        e.clientId ?? null,
        e.ip ?? null,
        e.detail ? JSON.stringify(e.detail) : null,
      );
    },
    async listSecurityEvents(opts = {}) {
      const rows = (
        opts.userId
          ? q('SELECT * FROM security_events WHERE user_id = ? ORDER BY id DESC LIMIT ?').all(
              opts.userId,
              opts.limit ?? 100,
            )
          : q('SELECT * FROM security_events ORDER BY id DESC LIMIT ?').all(opts.limit ?? 100)
      ) as Row[];
      return rows.map((r) => ({
        type: str(r.type) as SecurityEventRecord['type'],
        at: num(r.at),
        userId: optStr(r.user_id),
        sessionId: optStr(r.session_id),
        clientId: optStr(r.client_id),
        ip: optStr(r.ip),
        ...(r.detail ? { detail: JSON.parse(str(r.detail)) as SecurityEventRecord['detail'] } : {}),
      }));
    },
  };
  return store;
}
