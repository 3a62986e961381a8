import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { type ConformanceFactory, storeConformance } from '../../../test/store-conformance.js';
import { clientRecord, openSessions, readUserSessions } from '../../../test/store-fixtures.js';
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

describe('SQLite adapter: a user’s live sessions', () => {
  afterEach(() => vi.restoreAllMocks());

  it('the session cap, the listing and revoking a user’s sessions read the live-sessions index, not every session the user had', async () => {
    // The statements are the store's own, recorded as it prepares them, so a
    // change to a statement or to the indexes is judged here as it runs.
    const prepared: string[] = [];
    const prepare = Database.prototype.prepare;
    vi.spyOn(Database.prototype, 'prepare').mockImplementation(function (
      this: Database.Database,
      text: string,
    ) {
      prepared.push(text);
      return prepare.call(this, text);
    });
    const store = await factory.open();
    try {
      await store.createClient(clientRecord('app'));
      await openSessions(store, 1);
      // Two logins over a cap of one (the count runs, and the eviction), the listing, the revocation.
      expect(await readUserSessions(store)).toEqual(['ses_b']);

      const byUser = [...new Set(prepared)].filter((text) =>
        /(FROM|UPDATE)\s+"?sessions"?\s[^;]*WHERE\s+user_id\s*=/.test(text),
      );
      expect(byUser.length).toBeGreaterThanOrEqual(4); // count, eviction, listing, revocation
      const raw = new Database(join(dir!, 'baton.db'), { readonly: true });
      try {
        for (const text of byUser) {
          const params = (text.match(/\?/g) ?? []).map(() => 1);
          const plan = (raw.prepare(`EXPLAIN QUERY PLAN ${text}`).all(...params) as { detail: string }[])
            .map((r) => r.detail)
            .join(' | ');
          expect({ text, plan }).toEqual({ text, plan: expect.stringContaining('INDEX sessions_user_live') });
          expect(plan).not.toContain('sessions_user_id');
        }
      } finally {
        raw.close();
      }
    } finally {
      await store.close();
      await factory.cleanup?.();
    }
  });
});
