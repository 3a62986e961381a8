import type { Migration } from '../migration.js';
import { num } from '../rows.js';
import type { Work } from './dialect.js';
import { type SqlTag, script } from './statement.js';

/**
 * The unit of work that applies pending migrations and records each in
 * `baton_migrations`. An adapter runs it in one transaction that first takes
 * its database's migration lock (SQLite: `BEGIN IMMEDIATE`; PostgreSQL: an
 * advisory lock), so processes starting together queue and exactly one
 * applies each step. Table names are unqualified: PostgreSQL sets the
 * store's schema as the transaction's `search_path` first.
 */
export function* applyMigrations(sql: SqlTag, migrations: readonly Migration[]): Work<number> {
  // BIGINT is a 64-bit INTEGER to SQLite too; tables created before this runner said INTEGER, the same thing there.
  yield script(
    'CREATE TABLE IF NOT EXISTS baton_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)',
  );
  const done = new Set((yield sql`SELECT version FROM baton_migrations`).rows.map((r) => num(r.version)));
  let applied = 0;
  for (const m of migrations) {
    if (done.has(m.version)) continue;
    yield script(m.up);
    yield sql`INSERT INTO baton_migrations (version, name, applied_at) VALUES (${m.version}, ${m.name}, ${Date.now()})`;
    applied++;
  }
  return applied;
}
