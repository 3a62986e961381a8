import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { expect, it } from 'vitest';
import { storeConformance } from '../../../test/store-conformance.js';
import { createSqliteStore } from './sqlite-store.js';

let dir: string | undefined;

storeConformance('SQLite (file, WAL)', {
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
});

it('SQLite: deleting a user deletes its trusted devices (ON DELETE CASCADE)', async () => {
  const home = mkdtempSync(join(tmpdir(), 'baton-sqlite-'));
  const file = join(home, 'baton.db');
  const store = createSqliteStore({ filename: file });
  try {
    await store.migrate();
    await store.createUser({ id: 'usr_a', email: 'a@example.com', passwordHash: 'h', createdAt: 1 });
    await store.addTrustedDevice({
      id: 'dev_1',
      userId: 'usr_a',
      secretHash: 'dh',
      createdAt: 1,
      lastUsedAt: 1,
    });
    // There is no store method to delete a user yet: do it as an operator would, with SQL.
    const raw = new Database(file);
    raw.pragma('foreign_keys = ON');
    raw.prepare('DELETE FROM users WHERE id = ?').run('usr_a');
    expect(raw.prepare('SELECT COUNT(*) AS n FROM trusted_devices').get()).toEqual({ n: 0 });
    raw.close();
    expect(await store.findTrustedDevice('dev_1')).toBeNull();
  } finally {
    await store.close();
    rmSync(home, { recursive: true, force: true });
  }
});
