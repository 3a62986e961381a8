import { accessSync, constants, mkdirSync, statSync } from 'node:fs';
import { dirname, sep } from 'node:path';
import Database from 'better-sqlite3';
import type { Row } from '../rows.js';
import {
  driveSync,
  type SqlDialect,
  type Statement,
  type StatementResult,
  type UniqueConstraint,
} from '../sql/dialect.js';
import { applyMigrations } from '../sql/migration-runner.js';
import { sqlTag } from '../sql/statement.js';
import { type Checkpointer, startCheckpointer } from './sqlite-checkpointer.js';
import { createGroupCommit } from './sqlite-group-commit.js';
import { sqliteMigrations } from './sqlite-migrations.js';

/**
 * Driver surface this adapter needs: better-sqlite3 v12's `Database`
 * (`prepare`, `exec`, `pragma`, `transaction` with `.immediate`,
 * `inTransaction`, `open`, `close`) and `Statement` (`reader`, `all`, `run` with `.changes`). v13
 * needs Node 22 and crashes on Node 20.
 */
type Db = Pick<
  Database.Database,
  'prepare' | 'exec' | 'pragma' | 'transaction' | 'inTransaction' | 'open' | 'close'
>;

/** Options of the SQLite dialect (see `createSqliteStore`). */
export interface SqliteDialectOptions {
  /** File path, or `:memory:`. The folder is created when missing. */
  filename: string;
  /** How long a writer waits for another process's lock, in ms (default 5000). */
  busyTimeout?: number;
  /**
   * After how many write transactions WAL checkpoints move to a thread of
   * their own (see `sqlite-checkpointer.ts`; default 1000, `Infinity` never).
   * A quiet database keeps SQLite's own checkpoints and spares the thread.
   */
  checkpointThreadAfter?: number;
}

/** Pseudo file systems: never a place for a database, and a recursive mkdir under /proc never returns on Node 20. */
const SYSTEM_FOLDERS = ['/proc', '/sys', '/dev'];

const errno = (err: unknown): string | undefined => (err as { code?: string }).code;

/**
 * Creates the database's folder when missing, one level at a time below the
 * nearest folder that exists, after checking that that ancestor is a folder:
 * `mkdir -p` under a regular file says only "EEXIST", and under /proc it
 * spins forever.
 */
function ensureFolder(dir: string): void {
  const system = SYSTEM_FOLDERS.find((root) => dir === root || dir.startsWith(root + sep));
  if (system) throw new Error(`${dir} is inside ${system}, a system folder: choose a path on a real disk`);
  const missing: string[] = [];
  for (let at = dir; ; ) {
    let isFolder: boolean;
    try {
      isFolder = statSync(at).isDirectory();
    } catch (err) {
      // ENOTDIR: some ancestor is a file; walking up finds and names it.
      if (errno(err) !== 'ENOENT' && errno(err) !== 'ENOTDIR') throw explain(err, at);
      const up = dirname(at);
      if (up === at) throw explain(err, at);
      missing.push(at);
      at = up;
      continue;
    }
    if (!isFolder) throw new Error(`${at} is not a directory`);
    break;
  }
  for (const folder of missing.reverse()) {
    try {
      mkdirSync(folder);
    } catch (err) {
      if (errno(err) !== 'EEXIST') throw explain(err, folder, 'create the folder');
    }
  }
}

/** A file-system error in words, naming the path (never a secret) instead of a bare errno. */
function explain(err: unknown, path: string, doing = 'read'): Error {
  const code = errno(err);
  if (code === 'EACCES' || code === 'EPERM')
    return new Error(`permission denied to ${doing} ${path}`, { cause: err });
  if (code === 'EROFS') return new Error(`${path} is on a read-only file system`, { cause: err });
  return new Error(`cannot ${doing} ${path} (${code ?? String(err)})`, { cause: err });
}

/** Opens the file (creating its folder first), turning the driver's "unable to open database file" into a reason. */
function openDatabase(filename: string): Db {
  if (filename === ':memory:') return new Database(filename);
  ensureFolder(dirname(filename));
  try {
    return new Database(filename);
  } catch (err) {
    try {
      accessSync(dirname(filename), constants.W_OK);
    } catch {
      throw new Error(`permission denied to write in ${dirname(filename)}`, { cause: err });
    }
    throw new Error(`cannot open ${filename}: ${(err as Error).message}`, { cause: err });
  }
}

/** How SQLite names each unique constraint in its error message ("UNIQUE constraint failed: users.email"). */
const UNIQUE_COLUMNS: Record<UniqueConstraint, string> = { users_email_key: 'users.email' };

/**
 * The SQLite dialect (WAL, busy timeout, foreign keys) on one better-sqlite3
 * connection. Several processes may share one file: every transaction is
 * `BEGIN IMMEDIATE`, which takes SQLite's single write lock at the start, so
 * a read-check-write sequence cannot interleave with another process's. The
 * driver is synchronous, so a unit of work runs to its end before any other
 * code on this thread, including another connection to the same file.
 * Transactions asked for in one turn of the event loop share that lock and
 * one commit, each in its own savepoint (group commit).
 */
export function createSqliteDialect(options: SqliteDialectOptions): SqlDialect {
  const db: Db = openDatabase(options.filename);
  db.pragma(`busy_timeout = ${Math.max(0, Math.floor(options.busyTimeout ?? 5000))}`);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');

  // Statements are prepared lazily (they need the schema migrate() creates) and kept.
  const cache = new Map<string, Database.Statement>();
  const execute = (s: Statement): StatementResult => {
    if (s.script) {
      db.exec(s.text);
      return { rows: [], changes: 0 };
    }
    let prepared = cache.get(s.text);
    if (!prepared) {
      prepared = db.prepare(s.text);
      cache.set(s.text, prepared);
    }
    // A statement that returns data (SELECT, or a write with RETURNING) must be read with all().
    if (prepared.reader) {
      const rows = prepared.all(...s.params) as Row[];
      return { rows, changes: rows.length };
    }
    return { rows: [], changes: prepared.run(...s.params).changes };
  };
  // One transaction wrapper, built once: better-sqlite3 compiles a new one on every `transaction()` call.
  const immediate = db.transaction((fn: () => unknown) => fn()).immediate;
  const inImmediate = <T>(fn: () => T): T => immediate(fn) as T;
  const group = createGroupCommit(db);
  // An in-memory database has no WAL to fold back.
  const checkpointAfter =
    options.filename === ':memory:' ? Number.POSITIVE_INFINITY : (options.checkpointThreadAfter ?? 1000);
  let checkpointer: Checkpointer | undefined;
  let writes = 0;
  const countWrite = () => {
    if (checkpointer === undefined && writes++ >= checkpointAfter && db.open)
      checkpointer = startCheckpointer(db, options.filename, { hold: group.hold });
  };
  // With a threshold of 0 the thread starts with the connection.
  if (checkpointAfter === 0) countWrite();

  const dialect: SqlDialect = {
    name: 'sqlite',
    placeholder: () => '?',
    table: (name) => name,
    // SQLite compares TEXT with the BINARY collation already.
    bytewise: '',
    // BEGIN IMMEDIATE holds the database's one write lock until COMMIT.
    lockRows: '',
    writableCte: false,
    arrayParams: false,
    async run(work) {
      return driveSync(work(), execute);
    },
    transaction(work) {
      countWrite();
      // Concurrent requests' transactions share one commit (see sqlite-group-commit.ts).
      return group.submit(() => driveSync(work(), execute));
    },
    isUniqueViolation(err, constraint) {
      const e = err as { code?: unknown; message?: unknown };
      return (
        e.code === 'SQLITE_CONSTRAINT_UNIQUE' &&
        typeof e.message === 'string' &&
        e.message.endsWith(`: ${UNIQUE_COLUMNS[constraint]}`)
      );
    },
    async migrate() {
      // The IMMEDIATE transaction is the migration lock: two processes starting together queue on it.
      return inImmediate(() => driveSync(applyMigrations(sqlTag(dialect), sqliteMigrations), execute));
    },
    migrations: sqliteMigrations,
    migrationsTableQuery: {
      text: "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'baton_migrations'",
      params: [],
    },
    // The file is on this machine: its clock is ours.
    clockQuery: null,
    autovacuumQuery: null,
    async ping() {
      db.prepare('SELECT 1').get();
    },
    async close() {
      if (db.open) group.flush();
      cache.clear();
      // The thread stops first: no checkpoint of its own is in flight to make the one below busy.
      await checkpointer?.close();
      if (!db.open) return;
      // Fold the WAL back into the database file, so a copy of baton.db alone is
      // complete and the -wal file does not linger. Best effort: another process
      // reading the file makes it return busy, and its own close checkpoints.
      try {
        if (String(db.pragma('journal_mode', { simple: true })) === 'wal')
          db.pragma('wal_checkpoint(TRUNCATE)');
      } catch {
        // closing matters more than checkpointing
      }
      db.close();
    },
  };
  return dialect;
}
