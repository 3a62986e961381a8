import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createGroupCommit } from './sqlite-group-commit.js';

describe('group commit', () => {
  let dir: string;
  let db: Database.Database;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'baton-group-'));
    db = new Database(join(dir, 'g.db'));
    db.pragma('journal_mode = WAL');
    db.exec('CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER NOT NULL)');
  });
  afterEach(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const rows = () => db.prepare('SELECT k, v FROM t ORDER BY k').all();
  const insert = (k: string, v: number) => db.prepare('INSERT INTO t (k, v) VALUES (?, ?)').run(k, v);

  it('rolls back only the unit that failed, and the others see each other in order', async () => {
    const group = createGroupCommit(db);
    const results = await Promise.allSettled([
      group.submit(() => insert('a', 1).changes),
      group.submit(() => {
        insert('b', 2);
        throw new Error('unit failed after writing');
      }),
      // Sees the first unit's row, not the failed one's.
      group.submit(() => {
        insert('c', 3);
        return db.prepare('SELECT COUNT(*) AS n FROM t').get();
      }),
      // A constraint failure is the unit's own too.
      group.submit(() => insert('a', 9)),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'rejected']);
    expect((results[2] as PromiseFulfilledResult<unknown>).value).toEqual({ n: 2 });
    expect(rows()).toEqual([
      { k: 'a', v: 1 },
      { k: 'c', v: 3 },
    ]);
    expect(db.inTransaction).toBe(false);
  });

  it('settles a unit only after its commit, visible to another connection', async () => {
    const group = createGroupCommit(db);
    const other = new Database(join(dir, 'g.db'), { readonly: true });
    try {
      const done = group.submit(() => insert('x', 1));
      // Queued for the next turn: nothing is written yet.
      expect(other.prepare('SELECT COUNT(*) AS n FROM t').get()).toEqual({ n: 0 });
      await done;
      expect(other.prepare('SELECT COUNT(*) AS n FROM t').get()).toEqual({ n: 1 });
    } finally {
      other.close();
    }
  });

  it('runs a lone unit without a savepoint and rolls it back whole', async () => {
    const group = createGroupCommit(db);
    await expect(
      group.submit(() => {
        insert('y', 1);
        throw new Error('lone unit failed');
      }),
    ).rejects.toThrow('lone unit failed');
    expect(rows()).toEqual([]);
    expect(db.inTransaction).toBe(false);
  });

  it('flush runs the queue at once', () => {
    const group = createGroupCommit(db);
    void group.submit(() => insert('z', 1));
    group.flush();
    expect(rows()).toEqual([{ k: 'z', v: 1 }]);
  });

  it('hold keeps every commit back until released, then runs the queue in one batch', async () => {
    const group = createGroupCommit(db);
    const release = group.hold();
    const first = group.submit(() => insert('h1', 1).changes);
    const second = group.submit(() => insert('h2', 2).changes);
    // Several turns of the event loop: nothing is written while held.
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    expect(rows()).toEqual([]);
    release();
    release(); // a second call is a no-op
    await expect(Promise.all([first, second])).resolves.toEqual([1, 1]);
    expect(rows()).toEqual([
      { k: 'h1', v: 1 },
      { k: 'h2', v: 2 },
    ]);
  });

  it('a turn scheduled before the hold leaves the queue to the release; two holds need two releases', async () => {
    const group = createGroupCommit(db);
    const done = group.submit(() => insert('s', 1).changes); // schedules the next turn
    const a = group.hold();
    const b = group.hold();
    for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
    a();
    for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
    expect(rows()).toEqual([]);
    b();
    await expect(done).resolves.toBe(1);
    expect(rows()).toEqual([{ k: 's', v: 1 }]);
  });
});
