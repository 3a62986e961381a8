import { resolve } from 'node:path';
import { createSqliteStore } from './sqlite/sqlite-store.js';
import type { Store } from './store.js';

/**
 * Opens the store a database URL names: `sqlite:<path>` (relative paths are
 * resolved from the working directory; `sqlite::memory:` for a throwaway
 * database) or `postgres://…` / `postgresql://…`. A PostgreSQL URL may end
 * in `?schema=<name>` to keep Baton's tables in that schema (default
 * `public`); every other query parameter (`sslmode`, `application_name`,
 * `options`, …) goes to `pg` unchanged.
 *
 * `pgPoolSize` caps the PostgreSQL pool (default 10); SQLite ignores it.
 *
 * Error messages never repeat the URL: it may hold a password.
 */
export async function openStore(url: string, opts: { pgPoolSize?: number } = {}): Promise<Store> {
  if (url.startsWith('sqlite:')) {
    const path = url.slice('sqlite:'.length);
    return createSqliteStore({ filename: path === ':memory:' ? path : resolve(path) });
  }
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) {
    const { connectionString, schema } = splitSchemaParam(url);
    // Loaded on demand, so a SQLite deployment never loads the pg driver.
    const { createPostgresStore, POSTGRES_SCHEMA_NAME } = await import('./postgres/postgres-store.js');
    if (schema !== undefined && !POSTGRES_SCHEMA_NAME.test(schema)) {
      throw new TypeError(
        'Database URL: schema= must be lower-case letters, digits and _, starting with a letter or _',
      );
    }
    return createPostgresStore({
      connectionString,
      ...(schema === undefined ? {} : { schema }),
      ...(opts.pgPoolSize === undefined ? {} : { max: opts.pgPoolSize }),
    });
  }
  throw new TypeError('Database URL must start with sqlite: or postgres://');
}

/**
 * Takes Baton's own `schema` parameter out of a PostgreSQL URL. The rest of
 * the URL is left as written (no `new URL` round trip), so forms that only
 * `pg` understands, such as a Unix socket in `?host=`, keep working.
 */
function splitSchemaParam(url: string): { connectionString: string; schema?: string } {
  const q = url.indexOf('?');
  if (q === -1) return { connectionString: url };
  const hashAt = url.indexOf('#', q);
  const query = url.slice(q + 1, hashAt === -1 ? undefined : hashAt);
  const kept: string[] = [];
  const schemas: string[] = [];
  for (const part of query.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const key = decode(eq === -1 ? part : part.slice(0, eq));
    if (key === 'schema') schemas.push(decode(eq === -1 ? '' : part.slice(eq + 1)));
    else {
      // search_path set through `options` would be silently ignored: every
      // Baton query names its schema. Refuse it rather than surprise.
      if (key === 'options' && /search_path/i.test(decode(part))) {
        throw new TypeError(
          'Database URL: choose the schema with ?schema=<name>, not options=-c search_path',
        );
      }
      kept.push(part);
    }
  }
  if (schemas.length > 1) throw new TypeError('Database URL: schema= given more than once');
  const connectionString = url.slice(0, q) + (kept.length ? `?${kept.join('&')}` : '');
  return schemas.length ? { connectionString, schema: schemas[0]! } : { connectionString };
}

function decode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw new TypeError('Database URL: malformed percent-encoding in the query');
  }
}
