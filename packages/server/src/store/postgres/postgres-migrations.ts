import type { Migration } from '../migration.js';

/**
 * PostgreSQL schema steps, numbered like SQLite's (`sqlite-migrations.ts`):
 * the same tables, columns and meanings in PostgreSQL's dialect. Times are
 * BIGINT milliseconds since the epoch; client lists and event details are
 * JSONB. Table names are unqualified: the migration runner sets the store's
 * schema as the transaction's `search_path` before running a step.
 */
export const postgresMigrations: readonly Migration[] = [
  {
    version: 1,
    name: 'initial schema',
    up: `
      CREATE TABLE users (
        id TEXT PRIMARY KEY,
        email TEXT NOT NULL,
        password_hash TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        disabled_at BIGINT,
        password_changed_at BIGINT,
        CONSTRAINT users_email_key UNIQUE (email)
      );
      CREATE TABLE clients (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        type TEXT NOT NULL CHECK (type IN ('public', 'confidential')),
        secret_hash TEXT,
        allowed_origins JSONB NOT NULL DEFAULT '[]',
        allowed_scopes JSONB NOT NULL DEFAULT '[]',
        audience TEXT,
        access_ttl BIGINT,
        refresh_idle_ttl BIGINT,
        session_max_ttl BIGINT,
        created_at BIGINT NOT NULL
      );
      CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        client_id TEXT NOT NULL,
        scope TEXT,
        created_at BIGINT NOT NULL,
        last_used_at BIGINT NOT NULL,
        idle_expires_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL,
        user_agent TEXT,
        ip TEXT,
        revoked_at BIGINT,
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
        created_at BIGINT NOT NULL,
        used_at BIGINT
      );
      CREATE INDEX refresh_tokens_session_id ON refresh_tokens (session_id);
      CREATE TABLE signing_keys (
        kid TEXT PRIMARY KEY,
        alg TEXT NOT NULL,
        private_jwk TEXT NOT NULL,
        public_jwk TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        activates_at BIGINT NOT NULL,
        retired_at BIGINT
      );
      CREATE TABLE security_events (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        type TEXT NOT NULL,
        at BIGINT NOT NULL,
        user_id TEXT,
        session_id TEXT,
        client_id TEXT,
        ip TEXT,
        detail JSONB
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
        created_at BIGINT NOT NULL,
        last_used_at BIGINT NOT NULL
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
        created_at BIGINT NOT NULL
      );
      CREATE TABLE dpop_proofs (
        jti_hash TEXT PRIMARY KEY,
        expires_at BIGINT NOT NULL
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
    name: 'rotation without index churn',
    // A rotation marks its parent token used and touches its session
    // (last_used_at, idle_expires_at). When an UPDATE changes an indexed
    // column, PostgreSQL writes a new entry into every index of the table;
    // when it changes none and the page has room, the new row version stays
    // on its page and no index is written (a heap-only tuple). Migration 4's
    // indexes on used_at and idle_expires_at made both updates the expensive
    // kind: without them the database server spent about a quarter less CPU
    // per rotation (npm run bench, baton-postgres). So spent tokens are found
    // by created_at, which never changes (a token is spent after it was
    // created), and idle-ended sessions by a scan: pruning runs in the
    // background in small batches, and a PostgreSQL DELETE locks only the
    // rows it deletes. Free space on each page keeps the updates on their page.
    // IF NOT EXISTS: on a large table an operator may build the index
    // CONCURRENTLY beforehand (docs/postgres.md).
    up: `
      DROP INDEX IF EXISTS sessions_live_idle;
      DROP INDEX IF EXISTS refresh_tokens_used_at;
      CREATE INDEX IF NOT EXISTS refresh_tokens_created_at ON refresh_tokens (created_at);
      ALTER TABLE sessions SET (fillfactor = 80);
      ALTER TABLE refresh_tokens SET (fillfactor = 90);
    `,
  },
  {
    version: 6,
    name: 'live sessions by user',
    // As in SQLite (migration 6 there): the session cap at login, and listing
    // and revoking a user's sessions, read only the live ones, instead of
    // every session the user had until pruning. A rotation changes neither
    // user_id nor revoked_at (the predicate's column), so its session update
    // stays heap-only. IF NOT EXISTS: on a large table an operator may build
    // the index CONCURRENTLY beforehand (docs/postgres.md).
    up: `
      CREATE INDEX IF NOT EXISTS sessions_user_live ON sessions (user_id) WHERE revoked_at IS NULL;
    `,
  },
];
