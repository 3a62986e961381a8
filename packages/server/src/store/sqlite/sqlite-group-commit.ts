import type Database from 'better-sqlite3';

/**
 * Driver surface: better-sqlite3's `prepare` (for the transaction-control
 * statements) and `inTransaction` (whether SQLite itself rolled back).
 */
type Db = Pick<Database.Database, 'prepare' | 'inTransaction'>;

/** Runs write transactions, several to one commit. */
export interface GroupCommit {
  /** Runs `fn` in a write transaction of its own (a savepoint), resolving once it is committed. */
  submit<T>(fn: () => T): Promise<T>;
  /** Runs what is queued now (before the connection closes), held or not. */
  flush(): void;
  /**
   * Holds back every commit until the returned function is called: units
   * queue meanwhile and then run in one batch. The checkpoint thread asks
   * for this for the moment it needs no writer (see sqlite-checkpointer.ts).
   */
  hold(): () => void;
}

interface Queued {
  fn: () => unknown;
  resolve: (value: unknown) => void;
  reject: (reason: unknown) => void;
}

type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

// Taken at load: a test that fakes timers must not stall the database.
const nextTurn = setImmediate;

/**
 * Group commit for one SQLite connection. A commit is the expensive part
 * of a small write transaction (the WAL frames of every page it touched,
 * and now and then a checkpoint), so transactions asked for in the same
 * turn of the event loop, typically the rotations of concurrent requests,
 * run in one `BEGIN IMMEDIATE … COMMIT`, each inside its own SAVEPOINT.
 *
 * Each unit stays all-or-nothing and isolated: a unit that fails is rolled
 * back to its savepoint alone, and the others go on. Units run one after
 * another, synchronously, so each sees the ones before it exactly as if
 * they had committed separately (two rotations of one token in one batch:
 * the first wins, the second finds it used). No promise settles before the
 * COMMIT has returned: a success is only reported once it is durable as
 * before. If the COMMIT (or BEGIN) fails, or SQLite rolls the whole
 * transaction back by itself (a full disk), every unit of the batch fails.
 */
export function createGroupCommit(db: Db): GroupCommit {
  const begin = db.prepare('BEGIN IMMEDIATE');
  const commit = db.prepare('COMMIT');
  const rollback = db.prepare('ROLLBACK');
  const savepoint = db.prepare('SAVEPOINT baton_unit');
  const release = db.prepare('RELEASE baton_unit');
  const rollbackTo = db.prepare('ROLLBACK TO baton_unit');
  let queue: Queued[] = [];
  let holds = 0;

  function runBatch(batch: Queued[]): Outcome[] {
    // One unit needs no savepoint: the transaction is its own.
    const nested = batch.length > 1;
    const outcomes: Outcome[] = [];
    begin.run();
    try {
      for (const unit of batch) {
        if (nested) savepoint.run();
        try {
          const value = unit.fn();
          if (nested) release.run();
          outcomes.push({ ok: true, value });
        } catch (error) {
          if (!db.inTransaction) throw error;
          if (nested) {
            rollbackTo.run();
            release.run();
          } else rollback.run();
          outcomes.push({ ok: false, error });
        }
      }
      if (db.inTransaction) commit.run();
      return outcomes;
    } catch (error) {
      try {
        if (db.inTransaction) rollback.run();
      } catch {
        // The batch fails with the first error; a failed ROLLBACK leaves SQLite to end the transaction.
      }
      throw error;
    }
  }

  function flush(): void {
    const batch = queue;
    queue = [];
    if (batch.length === 0) return;
    let outcomes: Outcome[];
    try {
      outcomes = runBatch(batch);
    } catch (error) {
      for (const unit of batch) unit.reject(error);
      return;
    }
    batch.forEach((unit, i) => {
      const o = outcomes[i]!;
      if (o.ok) unit.resolve(o.value);
      else unit.reject(o.error);
    });
  }

  // A turn scheduled before a hold began finds it still held and leaves the queue to the release.
  const onTurn = () => {
    if (holds === 0) flush();
  };

  return {
    submit<T>(fn: () => T): Promise<T> {
      return new Promise<T>((resolve, reject) => {
        if (queue.length === 0 && holds === 0) nextTurn(onTurn);
        queue.push({ fn, resolve: resolve as (value: unknown) => void, reject });
      });
    },
    flush,
    hold() {
      holds++;
      let released = false;
      return () => {
        if (released) return;
        released = true;
        holds--;
        if (holds === 0 && queue.length > 0) nextTurn(onTurn);
      };
    },
  };
}
