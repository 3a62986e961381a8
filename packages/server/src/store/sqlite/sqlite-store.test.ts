import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { type ConformanceFactory, storeConformance } from '../../../test/store-conformance.js';
import { storeLifecycle } from '../../../test/store-lifecycle.js';
import { storeTurns } from '../../../test/store-turns.js';
import { createSqliteStore } from './sqlite-store.js';

let dir: string | undefined;

const factory: ConformanceFactory = {
  async open() {
    dir = mkdtempSync(join(tmpdir(), 'baton-sqlite-'));
    const store = createSqliteStore({ filename: join(dir, 'baton.db') });
    await store.migrate();
    return store;
  },
  // A second connection to the same file stands in for a second server process.
  async openSecond() {
    return createSqliteStore({ filename: join(dir!, 'baton.db') });
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
};
storeConformance('SQLite (file, WAL)', factory);
storeLifecycle('SQLite (file, WAL)', factory);
storeTurns('SQLite (file, WAL)', factory);
