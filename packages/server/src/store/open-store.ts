import { resolve } from 'node:path';
import { createSqliteStore } from './sqlite/sqlite-store.js';
import type { Store } from './store.js';

/**
 * Opens the store a database URL names: `sqlite:<path>` (relative paths are
 * resolved from the working directory; `sqlite::memory:` for a throwaway
 * database) or `postgres://…`.
 */
export async function openStore(url: string): Promise<Store> {
  if (url.startsWith('sqlite:')) {
    const path = url.slice('sqlite:'.length);
    return createSqliteStore({ filename: path === ':memory:' ? path : resolve(path) });
  }
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) {
    throw new TypeError('The PostgreSQL store is not available yet; use a sqlite: database URL');
  }
  throw new TypeError('Database URL must start with sqlite: or postgres://');
}
