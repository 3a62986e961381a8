export type { Migration } from './migration.js';
export { openStore } from './open-store.js';
export { createPostgresStore, type PostgresStoreOptions } from './postgres/postgres-store.js';
export { createSqliteStore, type SqliteStoreOptions } from './sqlite/sqlite-store.js';
export type * from './store.js';
