import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { type ConformanceFactory, storeConformance } from '../../../test/store-conformance.js';
import { storeLifecycle } from '../../../test/store-lifecycle.js';
import { storeTurns } from '../../../test/store-turns.js';
import { createSqliteStore, type SqliteStoreOptions } from './sqlite-store.js';

let dir: string | undefined;

/** `checkpointThreadAfter: 0` runs every test with WAL checkpoints on their own thread from the start. */
const factoryWith = (options: Omit<SqliteStoreOptions, 'filename'> = {}): ConformanceFactory => ({
  async open() {
    dir = mkdtempSync(join(tmpdir(), 'baton-sqlite-'));
    const store = createSqliteStore({ filename: join(dir, 'baton.db'), ...options });
    await store.migrate();
    return store;
  },
  // A second connection to the same file stands in for a second server process.
  async openSecond() {
    return createSqliteStore({ filename: join(dir!, 'baton.db'), ...options });
  },
  async cleanup() {
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  },
  async rawSql(text) {
    const raw = new Database(join(dir!, 'baton.db'));
    try {
      raw.pragma('foreign_keys = ON');
      const statement = raw.prepare(text);
      if (statement.reader) return statement.all() as Record<string, unknown>[];
      statement.run();
      return [];
    } finally {
      raw.close();
    }
  },
  duplicateKeyCode: 'SQLITE_CONSTRAINT_PRIMARYKEY',
});
const factory = factoryWith();
storeConformance('SQLite (file, WAL)', factory);
storeLifecycle('SQLite (file, WAL)', factory);
storeTurns('SQLite (file, WAL)', factory);
const threaded = factoryWith({ checkpointThreadAfter: 0 });
storeConformance('SQLite (file, WAL, checkpoint thread)', threaded);
storeLifecycle('SQLite (file, WAL, checkpoint thread)', threaded);
storeTurns('SQLite (file, WAL, checkpoint thread)', threaded);
