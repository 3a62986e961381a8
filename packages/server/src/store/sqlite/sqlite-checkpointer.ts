import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type Database from 'better-sqlite3';

/** Driver surface: better-sqlite3's `pragma` and `open`, on the server's own connection. */
type Db = Pick<Database.Database, 'pragma' | 'open'>;

/** How often the thread folds new WAL frames back into the database file, in ms. */
const INTERVAL_MS = 100;
/**
 * WAL frames (4 KiB pages) after which the thread asks for a quiet moment to
 * finish a checkpoint, so the next commit starts the WAL over from its
 * beginning (about 16 MiB of WAL).
 */
const RESTART_FRAMES = 4096;
/** Beyond this many frames the thread forces a restart, holding writers of every process if it must. */
const FORCE_FACTOR = 4;
/** The longest the server's commits wait for the thread's quiet moment, in ms. */
const QUIET_MAX_MS = 1000;
/** SQLite's own default, put back on the server's connection whenever the thread is not running. */
const AUTOCHECKPOINT_PAGES = 1000;

/** Tuning of {@link startCheckpointer} (the defaults above; tests shrink them). */
export interface CheckpointerOptions {
  /** Holds back the connection's commits until the returned function is called. */
  hold: () => () => void;
  intervalMs?: number;
  restartFrames?: number;
}

/** The checkpoint thread of one connection (see {@link startCheckpointer}). */
export interface Checkpointer {
  /** Whether the thread has taken over (the server's connection no longer checkpoints). */
  readonly running: boolean;
  /** Stops the thread and waits until it has closed its connection. */
  close(): Promise<void>;
}

/**
 * The thread's code, as text: a file next to this module would be missing
 * where the TypeScript sources run directly (the tests). It reaches Node's
 * modules through \`process.getBuiltinModule\`, not \`require\` or \`import\`,
 * because an eval'd worker runs as CommonJS or as an ES module depending on
 * the flags the process was started with (\`--input-type=module\`); the
 * driver's path is resolved here, so the thread needs no resolution of its own.
 *
 * A PASSIVE checkpoint never waits for a reader or a writer: it copies what
 * no snapshot still needs, syncs, and returns. But while the server keeps
 * committing it never catches up with the WAL's end, and SQLite starts the
 * WAL over only when a commit finds it completely copied. So once the WAL
 * is long, the thread asks for "quiet" (the server holds its commits back,
 * while everything else goes on), copies the rest, and answers "done".
 * Another connection checkpointing at the same moment is SQLITE_BUSY: the
 * next tick tries again. Anything else ends the thread, and the server's
 * connection goes back to checkpointing by itself.
 */
const THREAD_SOURCE = `
const { workerData, parentPort } = process.getBuiltinModule('node:worker_threads');
const { createRequire } = process.getBuiltinModule('node:module');
const Database = createRequire(workerData.driver)(workerData.driver);
const db = new Database(workerData.filename, { fileMustExist: true });
db.pragma('synchronous = NORMAL');
const passive = db.prepare('PRAGMA wal_checkpoint(PASSIVE)');
const restart = db.prepare('PRAGMA wal_checkpoint(RESTART)');
let waiting = false;
function run(statement) {
  try {
    return statement.get();
  } catch (err) {
    if (err && err.code === 'SQLITE_BUSY') return null;
    clearInterval(timer);
    db.close();
    throw err;
  }
}
const timer = setInterval(() => {
  if (waiting) return;
  const r = run(passive);
  if (!r || r.log < workerData.restartFrames) return;
  if (r.log >= workerData.restartFrames * workerData.forceFactor) {
    // Quiet moments never came (another process writing too): restart the WAL the blocking way.
    db.pragma('busy_timeout = 5000');
    run(restart);
    db.pragma('busy_timeout = 0');
    return;
  }
  waiting = true;
  parentPort.postMessage('quiet?');
}, workerData.intervalMs);
parentPort.on('message', (m) => {
  if (m === 'quiet') {
    run(passive);
    waiting = false;
    parentPort.postMessage('done');
  } else if (m === 'close') {
    clearInterval(timer);
    db.close();
    parentPort.close();
  }
});
parentPort.postMessage('ready');
`;

const driverPath = createRequire(import.meta.url).resolve('better-sqlite3');

/**
 * Moves WAL checkpoints off the event loop. With `synchronous = NORMAL` a
 * commit only appends to the WAL; the fsyncs happen when a checkpoint copies
 * the WAL back into the database file. SQLite runs that checkpoint inside
 * whichever commit crosses 1,000 pages, so under load the server's one thread
 * regularly stood still in fsync (2 to 100 ms on a virtual disk), with every
 * request waiting behind it. Here a thread with its own connection to the
 * same file checkpoints every 100 ms, and the server's connection stops
 * checkpointing (`wal_autocheckpoint = 0`) only once that thread is ready.
 * When the thread needs a moment without commits to let the WAL start over,
 * the server's commits wait (at most a second) while requests go on being
 * parsed, looked up and signed. If the thread fails or ends, the server's
 * connection checkpoints by itself again, so the WAL never grows without bound.
 */
export function startCheckpointer(db: Db, filename: string, options: CheckpointerOptions): Checkpointer {
  let running = false;
  let closing = false;
  let release: (() => void) | undefined;
  let quietTimer: ReturnType<typeof setTimeout> | undefined;
  const endQuiet = () => {
    clearTimeout(quietTimer);
    release?.();
    release = undefined;
  };
  const worker = new Worker(THREAD_SOURCE, {
    eval: true,
    workerData: {
      driver: driverPath,
      filename,
      intervalMs: options.intervalMs ?? INTERVAL_MS,
      restartFrames: options.restartFrames ?? RESTART_FRAMES,
      forceFactor: FORCE_FACTOR,
    },
  });
  // The thread never keeps the process alive: an exit without close() loses nothing but a checkpoint.
  worker.unref();
  worker.on('message', (m) => {
    if (m === 'ready') {
      if (closing || !db.open) return;
      db.pragma('wal_autocheckpoint = 0');
      running = true;
    } else if (m === 'quiet?') {
      if (release || closing) return;
      // No batch is half-run now (batches run synchronously on this thread); queued units wait for the release.
      release = options.hold();
      quietTimer = setTimeout(endQuiet, QUIET_MAX_MS);
      quietTimer.unref();
      worker.postMessage('quiet');
    } else if (m === 'done') endQuiet();
  });
  // An 'error' is followed by 'exit'; listening to it keeps it from being thrown in the server.
  worker.on('error', () => {});
  const exited = new Promise<void>((resolve) => {
    worker.on('exit', () => {
      endQuiet();
      running = false;
      if (db.open) db.pragma(`wal_autocheckpoint = ${AUTOCHECKPOINT_PAGES}`);
      resolve();
    });
  });

  return {
    get running() {
      return running;
    },
    async close() {
      closing = true;
      endQuiet();
      // Unref'd, the worker would not keep the process alive until its 'exit':
      // a script with nothing else to wait for would end in the middle of close().
      worker.ref();
      worker.postMessage('close');
      await exited;
    },
  };
}
