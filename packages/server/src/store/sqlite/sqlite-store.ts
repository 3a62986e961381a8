import { createSqlStore } from '../sql/sql-store.js';
import type { Store } from '../store.js';
import { createSqliteDialect, type SqliteDialectOptions } from './sqlite-dialect.js';

/** Options of {@link createSqliteStore}. */
export type SqliteStoreOptions = SqliteDialectOptions;

/**
 * The embedded SQLite store: the shared SQL store on the SQLite dialect
 * (one better-sqlite3 connection, WAL, `BEGIN IMMEDIATE` transactions).
 * Several processes may share one file.
 */
export function createSqliteStore(options: SqliteStoreOptions): Store {
  return createSqlStore(createSqliteDialect(options));
}
