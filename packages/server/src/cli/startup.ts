import { openStore } from '../store/open-store.js';
import type { Store } from '../store/store.js';
import { ConfigError } from './config.js';

/** A failure to reach something the configuration names (exit status 1): the setting may be right, the service is not there. */
export class StartupError extends Error {
  override readonly name = 'StartupError';
}

/**
 * A URL fit to print: the password, if any, replaced by `***`
 * (`postgres://user:SECRET@host/db` → `postgres://user:***@host/db`).
 */
export function redactUrl(url: string): string {
  const start = /^[a-z][a-z0-9+.-]*:\/\//i.exec(url)?.[0].length;
  if (start === undefined) return url;
  // A password may hold an unescaped "@" or "/": the user info ends at the last "@" before the query.
  const query = url.indexOf('?', start);
  const at = url.lastIndexOf('@', query === -1 ? undefined : query);
  const colon = url.indexOf(':', start);
  if (at < start || colon === -1 || colon > at) return url;
  return `${url.slice(0, colon)}:***${url.slice(at)}`;
}

const code = (err: unknown): string | undefined => {
  const c = (err as { code?: unknown } | null)?.code;
  return typeof c === 'string' ? c : undefined;
};

/** The driver's own words, which for these errors name hosts, roles and databases but never a password. */
const reason = (err: unknown): string => (err instanceof Error && err.message ? err.message : String(err));

/**
 * Turns a failure to open or migrate the database into a message that names
 * `BATON_DATABASE_URL` (password masked) and says what to do: a ConfigError
 * (exit 2) when the setting itself is wrong, a StartupError (exit 1) when the
 * database is not reachable.
 */
export function databaseError(err: unknown, databaseUrl: string): Error {
  const where = `BATON_DATABASE_URL (${redactUrl(databaseUrl)})`;
  if (err instanceof TypeError) return new ConfigError(`${where}: ${err.message}`);
  if (databaseUrl.startsWith('sqlite:')) {
    return new ConfigError(
      `${where}: ${reason(err)}.\n  Point BATON_DATABASE_URL at a file in a folder this user may write, e.g. sqlite:./data/baton.db`,
    );
  }
  switch (code(err)) {
    case 'ECONNREFUSED':
      return new StartupError(
        `${where}: connection refused (${reason(err)}).\n  Is PostgreSQL running and listening there? Check the host and port.`,
      );
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new ConfigError(`${where}: the host does not resolve.\n  Check the host name in the URL.`);
    case '28P01':
    case '28000':
      return new ConfigError(
        `${where}: authentication failed (${reason(err)}).\n  Check the user and password in the URL, and pg_hba.conf.`,
      );
    case '3D000':
      return new ConfigError(
        `${where}: ${reason(err)}.\n  Create it (createdb) or fix the database name in the URL.`,
      );
    case '42501':
      return new ConfigError(
        `${where}: permission denied (${reason(err)}).\n  Grant the role the rights on the database or schema, or use ?schema= for one it owns.`,
      );
    default:
      return new StartupError(
        `${where}: the database is not reachable (${reason(err)}).\n  Check that it is running and that the URL is right.`,
      );
  }
}

/**
 * Opens the configured store and either applies pending migrations or just
 * checks it answers, so every command fails the same way on a bad URL.
 */
export async function openConfiguredStore(
  databaseUrl: string,
  migrate: boolean,
  opts: { pgPoolSize?: number } = {},
): Promise<Store> {
  let store: Store | undefined;
  try {
    store = await openStore(databaseUrl, opts);
    if (migrate) await store.migrate();
    else await store.ping();
    return store;
  } catch (err) {
    await store?.close().catch(() => {});
    throw databaseError(err, databaseUrl);
  }
}

/** Why the server could not listen, naming BATON_PORT or BATON_HOST. */
export function listenError(err: unknown, host: string, port: number): Error {
  switch (code(err)) {
    case 'EADDRINUSE':
      return new StartupError(
        `BATON_PORT: port ${port} on ${host} is already in use.\n  Stop the other process or choose another port.`,
      );
    case 'EACCES':
      return new ConfigError(
        `BATON_PORT: this user may not listen on port ${port}.\n  Use a port above 1023, or put a proxy in front.`,
      );
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EADDRNOTAVAIL':
      return new ConfigError(
        `BATON_HOST: cannot listen on "${host}": no such address on this machine.\n  Use an address of one of its interfaces, 127.0.0.1, or 0.0.0.0 for all.`,
      );
    default:
      return new StartupError(`Cannot listen on ${host}:${port} (${reason(err)})`);
  }
}
