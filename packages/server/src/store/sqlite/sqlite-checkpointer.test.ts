import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { startCheckpointer } from './sqlite-checkpointer.js';
import { createSqliteStore } from './sqlite-store.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tempFile(): string {
  const dir = mkdtempSync(join(tmpdir(), 'baton-ckpt-'));
  dirs.push(dir);
  return join(dir, 'baton.db');
}
function openWal(file: string) {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)');
  return db;
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(condition: () => boolean, what: string) {
  for (let i = 0; i < 200 && !condition(); i++) await sleep(10);
  if (!condition()) throw new Error(`timed out waiting until ${what}`);
}
const walBytes = (file: string) => (existsSync(`${file}-wal`) ? statSync(`${file}-wal`).size : 0);

/** A writer that honours holds the way the group commit does: while held, it commits nothing. */
function writer(db: Database.Database) {
  let holds = 0;
  const insert = db.prepare('INSERT INTO t (v) VALUES (?)');
  const row = 'x'.repeat(1000);
  return {
    held: 0,
    hold() {
      holds++;
      this.held++;
      let released = false;
      return () => {
        if (!released) holds--;
        released = true;
      };
    },
    /** Writes `rounds × perRound` one-row transactions of about 1 KiB, yielding between rounds. */
    async write(rounds: number, perRound: number) {
      for (let r = 0; r < rounds; r++) {
        while (holds > 0) await sleep(1);
        for (let i = 0; i < perRound; i++) insert.run(row);
        await sleep(5);
      }
    },
  };
}
const noHold = () => () => {};

describe('WAL checkpoints on a thread of their own', () => {
  it('take over from the connection and keep the WAL from growing with every commit', async () => {
    const file = tempFile();
    const db = openWal(file);
    const w = writer(db);
    const checkpointer = startCheckpointer(db, file, {
      hold: () => w.hold(),
      intervalMs: 20,
      restartFrames: 500,
    });
    try {
      await until(() => checkpointer.running, 'the thread is ready');
      // The connection no longer stops in a checkpoint (and its fsyncs) inside a commit.
      expect(db.pragma('wal_autocheckpoint', { simple: true })).toBe(0);
      // 6,000 commits of a page or more each: ≥ 24 MB of WAL frames if the WAL never started over.
      await w.write(60, 100);
      expect(w.held).toBeGreaterThan(0);
      expect(walBytes(file)).toBeLessThan(12 * 1024 * 1024);
      expect(db.prepare('SELECT count(*) AS n FROM t').get()).toEqual({ n: 6000 });
    } finally {
      await checkpointer.close();
      db.close();
    }
  });

  it('without the thread and with SQLite’s checkpoints off, that WAL does grow (the test above can fail)', async () => {
    const file = tempFile();
    const db = openWal(file);
    db.pragma('wal_autocheckpoint = 0');
    await writer(db).write(60, 100);
    expect(walBytes(file)).toBeGreaterThan(24 * 1024 * 1024);
    db.close();
  });

  it('hands checkpoints back to the connection when it closes', async () => {
    const file = tempFile();
    const db = openWal(file);
    const checkpointer = startCheckpointer(db, file, { hold: noHold });
    await until(() => checkpointer.running, 'the thread is ready');
    await checkpointer.close();
    expect(checkpointer.running).toBe(false);
    expect(db.pragma('wal_autocheckpoint', { simple: true })).toBe(1000);
    db.close();
  });

  it('leaves checkpoints to the connection when the thread cannot open the file', async () => {
    const file = tempFile();
    const db = openWal(file);
    const checkpointer = startCheckpointer(db, join(file, '..', 'missing.db'), { hold: noHold });
    await checkpointer.close();
    expect(checkpointer.running).toBe(false);
    expect(db.pragma('wal_autocheckpoint', { simple: true })).toBe(1000);
    expect(existsSync(join(file, '..', 'missing.db'))).toBe(false);
    db.close();
  });
});

describe('the SQLite store with the checkpoint thread', () => {
  it('keeps every write and folds the WAL into the file on close', async () => {
    const file = tempFile();
    const store = createSqliteStore({ filename: file, checkpointThreadAfter: 0 });
    await store.migrate();
    for (let i = 0; i < 50; i++)
      await store.createUser({
        id: `u${i}`,
        email: `u${i}@example.com`,
        passwordHash: 'not-a-real-hash',
        createdAt: 1_800_000_000_000,
      });
    await sleep(250);
    await store.close();
    // Every write is kept, and close still folds the WAL away with the thread running until then.
    expect(walBytes(file)).toBe(0);
    const raw = new Database(file, { readonly: true });
    expect(raw.prepare('SELECT count(*) AS n FROM users').get()).toEqual({ n: 50 });
    raw.close();
  });
});
