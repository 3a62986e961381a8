import type { Migration } from '../migration.js';

/** SQLite schema steps. Times are INTEGER milliseconds since the epoch. */
export const sqliteMigrations: readonly Migration[] = [
  {
    version: 1,
    name: 'initial schema',
    up: `
      CREATE TABLE users (
        id TEXT PRIMARY KEY,
        email TEXT NOT NULL UNIQUE,
        password_hash TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        disabled_at INTEGER,
        password_changed_at INTEGER
      );
      CREATE TABLE clients (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        type TEXT NOT NULL CHECK (type IN ('public', 'confidential')),
        secret_hash TEXT,
        allowed_origins TEXT NOT NULL DEFAULT '[]',
        allowed_scopes TEXT NOT NULL DEFAULT '[]',
        audience TEXT,
        access_ttl INTEGER,
        refresh_idle_ttl INTEGER,
        session_max_ttl INTEGER,
        created_at INTEGER NOT NULL
      );
      CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        client_id TEXT NOT NULL,
        scope TEXT,
        created_at INTEGER NOT NULL,
        last_used_at INTEGER NOT NULL,
        idle_expires_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        user_agent TEXT,
        ip TEXT,
        revoked_at INTEGER,
        revoked_reason TEXT
      );
      CREATE INDEX sessions_user_id ON sessions (user_id);
      CREATE INDEX sessions_client_id ON sessions (client_id);
      CREATE TABLE refresh_tokens (
        id TEXT PRIMARY KEY,
        session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        secret_hash TEXT NOT NULL,
        parent_id TEXT,
        successor_id TEXT,
        created_at INTEGER NOT NULL,
        used_at INTEGER
      );
      CREATE INDEX refresh_tokens_session_id ON refresh_tokens (session_id);
      CREATE TABLE signing_keys (
        kid TEXT PRIMARY KEY,
        alg TEXT NOT NULL,
        private_jwk TEXT NOT NULL,
        public_jwk TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        activates_at INTEGER NOT NULL,
        retired_at INTEGER
      );
      CREATE TABLE security_events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        type TEXT NOT NULL,
        at INTEGER NOT NULL,
        user_id TEXT,
        session_id TEXT,
        client_id TEXT,
        ip TEXT,
        detail TEXT
      );
      CREATE INDEX security_events_user_id ON security_events (user_id, at);
    `,
  },
  {
    version: 2,
    name: 'trusted devices',
    up: `
      CREATE TABLE trusted_devices (
        id TEXT PRIMARY KEY,
        user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        secret_hash TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        last_used_at INTEGER NOT NULL
      );
      CREATE INDEX trusted_devices_user_id ON trusted_devices (user_id);
    `,
  },
  {
    version: 3,
    name: 'dpop binding',
    up: `
      ALTER TABLE sessions ADD COLUMN dpop_jkt TEXT;
      CREATE TABLE server_secrets (
        name TEXT PRIMARY KEY,
        secret TEXT NOT NULL,
        created_at INTEGER NOT NULL
      );
      CREATE TABLE dpop_proofs (
        jti_hash TEXT PRIMARY KEY,
        expires_at INTEGER NOT NULL
      );
      CREATE INDEX dpop_proofs_expires_at ON dpop_proofs (expires_at);
    `,
  },
  {
    version: 4,
    name: 'pruning indexes',
    // What pruning and the active-sessions gauge look rows up by, so a batch
    // reads only the rows it deletes instead of scanning a table while it
    // holds a lock. Partial indexes keep the rotation path's extra write small:
    // only spent tokens, only live sessions. (idle_expires_at never exceeds
    // expires_at, so it alone says when an unrevoked session ended.)
    up: `
      CREATE INDEX sessions_live_idle ON sessions (idle_expires_at) WHERE revoked_at IS NULL;
      CREATE INDEX sessions_revoked_at ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;
      CREATE INDEX refresh_tokens_used_at ON refresh_tokens (used_at) WHERE used_at IS NOT NULL;
      CREATE INDEX trusted_devices_last_used_at ON trusted_devices (last_used_at);
      CREATE INDEX security_events_at ON security_events (at);
    `,
  },
  {
    version: 5,
    name: 'spent tokens by creation',
    // Spent tokens are found by created_at, which never changes (a token is
    // spent after it was created), so marking a token used writes no index
    // entry. Unlike PostgreSQL's (migration 5 there), the index on live
    // sessions' idle_expires_at stays: SQLite has a single writer, and a
    // pruning batch that scanned the sessions table would hold the write
    // lock, and so every rotation, for as long as the scan takes.
    up: `
      DROP INDEX refresh_tokens_used_at;
      CREATE INDEX refresh_tokens_created_at ON refresh_tokens (created_at);
    `,
  },
  {
    version: 6,
    name: 'live sessions by user',
    // A login counts the user's live sessions against the cap and revokes the
    // oldest beyond it; listing and revoking a user's sessions read the same
    // set. Through sessions_user_id those statements visit every session the
    // user ever had until pruning removes it, revoked ones included, so a
    // login got slower with every login before it. Indexed only while not
    // revoked, they visit at most the cap's worth. A rotation changes neither
    // user_id nor revoked_at, so it writes nothing to this index.
    up: `
      CREATE INDEX sessions_user_live ON sessions (user_id) WHERE revoked_at IS NULL;
    `,
  },
];
