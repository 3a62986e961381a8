import { BatonClientError } from './errors.js';
import { type LiveState, parseState, randomId, type SessionState } from './session-state.js';

// ---------------------------------------------------------------------------
// Timers
// ---------------------------------------------------------------------------

/**
 * setTimeout for the client's short timers (request and lock timeouts,
 * backoff). Every one of them is short — expiry itself is never a timer,
 * because a sleeping laptop skips timers.
 *
 * `background: true` unrefs the timer in Node, for timers nobody awaits (the
 * background retry): a command-line tool that finished its work can then
 * exit. A timer that a pending promise depends on stays ref'd, or Node would
 * exit in the middle of the wait (exit code 13, unsettled top-level await).
 */
export function startTimer(
  fn: () => void,
  ms: number,
  options: { background?: boolean } = {},
): ReturnType<typeof setTimeout> {
  const timer = setTimeout(fn, ms);
  if (options.background === true) {
    // Typed as a number by lib.dom; in Node it is a Timeout object.
    const handle = timer as unknown as { unref?: () => void };
    if (typeof handle === 'object' && handle !== null && typeof handle.unref === 'function') handle.unref();
  }
  return timer;
}

/**
 * A promise that resolves after `ms` or when `open()` is called, whichever
 * comes first (and at once when `ms` is 0). For waits that are only worth a
 * short while, such as hearing from other tabs at start-up.
 */
export function latch(ms: number): { promise: Promise<void>; open: () => void } {
  if (ms <= 0) return { promise: Promise.resolve(), open: () => {} };
  let open = () => {};
  const promise = new Promise<void>((resolve) => {
    const timer = startTimer(resolve, ms);
    open = () => {
      clearTimeout(timer);
      resolve();
    };
  });
  return { promise, open };
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => startTimer(resolve, ms));
}

/** Rejects with `makeError()` if `promise` has not settled after `ms`. */
export function withDeadline<T>(promise: Promise<T>, ms: number, makeError: () => Error): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = startTimer(() => reject(makeError()), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

// ---------------------------------------------------------------------------
// Realm-wide single flight
// ---------------------------------------------------------------------------

// Keyed on a global symbol rather than a module variable so that two copies of
// this package in one page (two bundles, a micro-frontend) still share one
// in-flight refresh per token. The version pins the shape of what is shared:
// v2 shares flight objects (a `done` promise and their retries), where v1
// shared bare promises, so copies of the two versions do not mix.
const REALM_KEY = Symbol.for('@baton/client.realm.v2');

/** What {@link singleFlight} shares: anything with a promise that settles when it is over. */
export interface Flight {
  readonly done: Promise<unknown>;
}

interface RealmShared {
  inflight: Map<string, Flight>;
  mutexes: Map<string, Promise<unknown>>;
}

function realm(): RealmShared {
  const g = globalThis as { [REALM_KEY]?: RealmShared };
  g[REALM_KEY] ??= { inflight: new Map(), mutexes: new Map() };
  return g[REALM_KEY];
}

/**
 * Runs `start()` unless a flight with the same key is already running in
 * this realm, in which case that one is shared. This is what turns 100
 * concurrent requests with one expired token into one refresh. Every caller
 * with a key must start the same kind of flight.
 */
export function singleFlight<T extends Flight>(key: string, start: () => T): T {
  const { inflight } = realm();
  const running = runningFlight<T>(key);
  if (running !== undefined) return running;
  const flight = start();
  inflight.set(key, flight);
  const forget = () => {
    // Only remove our own entry: a later flight may already have replaced it.
    if (inflight.get(key) === flight) inflight.delete(key);
  };
  flight.done.then(forget, forget);
  return flight;
}

/** The flight running under `key` in this realm, if any (see {@link singleFlight}). */
export function runningFlight<T extends Flight>(key: string): T | undefined {
  return realm().inflight.get(key) as T | undefined;
}

/** A FIFO mutex within this realm: the fallback where neither Web Locks nor a storage lock exist. */
function realmMutex<T>(name: string, fn: () => Promise<T>): Promise<T> {
  const { mutexes } = realm();
  const previous = mutexes.get(name) ?? Promise.resolve();
  const run = previous.then(fn, fn);
  const tail = run.then(
    () => undefined,
    () => undefined,
  );
  mutexes.set(name, tail);
  tail.then(() => {
    if (mutexes.get(name) === tail) mutexes.delete(name);
  });
  return run;
}

// ---------------------------------------------------------------------------
// Cross-context lock
// ---------------------------------------------------------------------------

interface LockManagerLike {
  request<T>(
    name: string,
    options: { ifAvailable?: boolean; signal?: AbortSignal },
    callback: (lock: unknown) => Promise<T>,
  ): Promise<T>;
}

/** The Web Locks API when this context has it (browsers, dedicated workers; not Node 20). */
export function webLocks(): LockManagerLike | undefined {
  const nav = (globalThis as { navigator?: { locks?: LockManagerLike } }).navigator;
  const locks = nav?.locks;
  return locks !== undefined && locks !== null && typeof locks.request === 'function' ? locks : undefined;
}

/** Options of {@link runExclusive}. */
interface ExclusiveOptions {
  /** How long to wait for another holder before giving up (retryable `timeout`). */
  waitTimeoutMs: number;
  /** The longest the lock is held: past it, the lock is released and the caller gets `timeout`. */
  holdTimeoutMs: number;
  /** A storage-provided lock, used when Web Locks are missing. */
  storageLock: (<T>(name: string, fn: () => Promise<T>) => Promise<T>) | undefined;
}

const NOT_ACQUIRED = Symbol('not acquired');

/** After waiting for the lock: how long to wait for the previous holder's result to arrive over BroadcastChannel. */
const HOLDER_WAIT_MS = 500;

/**
 * Runs `fn` while holding the lock `name` across every tab and worker of the
 * origin (Web Locks), else across processes (a storage lock such as the file
 * adapter's), else within this realm only. `fn` learns whether it had to wait
 * for another holder: a holder that just finished has probably refreshed
 * already, and its result may still be in flight over BroadcastChannel.
 *
 * The lock is never held forever: `fn` is raced against `holdTimeoutMs`, and
 * when that passes the callback returns, which releases the lock even if a
 * fetch or a custom storage inside `fn` hangs. `fn`'s `held` signal aborts
 * then, so that work `fn` still does (a retry) knows it no longer holds it.
 */
async function runExclusive<T>(
  name: string,
  options: ExclusiveOptions,
  fn: (waited: boolean, held: AbortSignal) => Promise<T>,
): Promise<T> {
  const bounded = (waited: boolean) => {
    const held = new AbortController();
    return withDeadline(fn(waited, held.signal), options.holdTimeoutMs, () => {
      held.abort();
      return new BatonClientError('timeout', 'The refresh took too long; its lock was released', {
        retryable: true,
      });
    });
  };
  const locks = webLocks();
  if (locks !== undefined) {
    const first = await locks.request(name, { ifAvailable: true }, async (lock) =>
      lock === null ? NOT_ACQUIRED : await bounded(false),
    );
    if (first !== NOT_ACQUIRED) return first as T;
    const abort = new AbortController();
    const timer = startTimer(() => abort.abort(), options.waitTimeoutMs);
    try {
      return await locks.request(name, { signal: abort.signal }, () => {
        clearTimeout(timer);
        return bounded(true);
      });
    } catch (error) {
      if (abort.signal.aborted && !(error instanceof BatonClientError)) {
        throw new BatonClientError('timeout', 'Timed out waiting for another tab to finish refreshing', {
          retryable: true,
          cause: error,
        });
      }
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }
  if (options.storageLock !== undefined) return options.storageLock(name, () => bounded(false));
  return realmMutex(name, () => bounded(false));
}

// ---------------------------------------------------------------------------
// BroadcastChannel
// ---------------------------------------------------------------------------

/** Messages between clients that share a storage key (tabs, workers, instances). */
export type PeerMessage =
  /** A new session state: tokens after a refresh or login, or a sign-out tombstone. */
  | { t: 'state'; from: string; state: SessionState }
  /** A new context asks its peers for the current state. */
  | { t: 'hello'; from: string }
  /** A peer took (`acquired`) or gave back (`released`) the refresh lock. */
  | { t: 'lock'; from: string; phase: 'acquired' | 'released'; hold: string }
  /**
   * The peer holding the refresh lock had an attempt fail (`code`) and is
   * retrying: a tab waiting with a token that still works goes ahead with it.
   */
  | { t: 'retrying'; from: string; code: string }
  /**
   * A context without the key of a DPoP-bound session (IndexedDB blocked
   * there, or `dpop: false`) asks one that has it to refresh `state` (its
   * newest): that one runs its own refresh, whose new state reaches every
   * context as a `state` message.
   */
  | { t: 'refresh'; from: string; state: LiveState };

interface ChannelLike {
  postMessage(message: unknown): void;
  close(): void;
  onmessage: ((event: MessageEvent) => void) | null;
  unref?: () => void;
}

/**
 * A BroadcastChannel with the bookkeeping the refresh lock needs. Absent
 * (every method a no-op) where BroadcastChannel is missing; the storage
 * `subscribe` and the re-read inside the lock still keep contexts in step.
 */
export class PeerChannel {
  private readonly channel: ChannelLike | undefined;
  private readonly openHolds = new Set<string>();
  private releases = 0;
  private readonly waiters = new Set<(force?: boolean) => void>();

  constructor(
    name: string,
    private readonly self: string,
    private readonly onPeerMessage: (message: PeerMessage) => void,
  ) {
    const Ctor = (globalThis as { BroadcastChannel?: new (name: string) => ChannelLike }).BroadcastChannel;
    if (typeof Ctor !== 'function') return;
    this.channel = new Ctor(name);
    // Node: a listening channel would otherwise keep a CLI from exiting.
    this.channel.unref?.();
    this.channel.onmessage = (event) => this.receive(event.data);
  }

  /** Whether messages can reach other contexts at all. */
  get available(): boolean {
    return this.channel !== undefined;
  }

  /** Sends to every other client on this channel (never to ourselves). */
  post(message: PeerMessage): void {
    try {
      this.channel?.postMessage(message);
    } catch {
      // A closed channel (the page is being torn down) has nobody left to tell.
    }
  }

  /**
   * After waiting for the lock, waits until the holder(s) before us have said
   * `released` — which they do only after sending their new state — so their
   * result is in our cache before we decide whether to refresh. Bounded by
   * `timeoutMs`, in case a holder's tab closed mid-refresh.
   */
  private async waitForHolders(releasesBefore: number, timeoutMs: number): Promise<void> {
    if (this.channel === undefined) return;
    const settled = () => this.releases > releasesBefore && this.openHolds.size === 0;
    if (settled()) return;
    await new Promise<void>((resolve) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const check = (force = false) => {
        if (!force && !settled()) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve();
      };
      this.waiters.add(check);
      timer = startTimer(() => check(true), timeoutMs);
    });
  }

  /**
   * Runs `fn` under the cross-tab lock `name` ({@link runExclusive}),
   * announcing it to peers: a tab that waited for us then waits (briefly)
   * for our `released`, which we send only after our new state, so it
   * adopts our token instead of refreshing again. The lock is held at most
   * `holdMs` (default: two request timeouts) plus the wait for a previous
   * holder's news; waiting for it gives up after twice that.
   */
  runLocked<T>(
    name: string,
    options: { timeoutMs: number; holdMs?: number; storageLock: ExclusiveOptions['storageLock'] },
    fn: (held: AbortSignal) => Promise<T>,
  ): Promise<T> {
    const releasesBefore = this.releases;
    const holdTimeoutMs = (options.holdMs ?? options.timeoutMs * 2) + HOLDER_WAIT_MS;
    return runExclusive(
      name,
      { holdTimeoutMs, waitTimeoutMs: holdTimeoutMs * 2, storageLock: options.storageLock },
      async (waited, held) => {
        const hold = randomId();
        this.post({ t: 'lock', from: this.self, phase: 'acquired', hold });
        try {
          if (waited) await this.waitForHolders(releasesBefore, HOLDER_WAIT_MS);
          return await fn(held);
        } finally {
          this.post({ t: 'lock', from: this.self, phase: 'released', hold });
        }
      },
    );
  }

  close(): void {
    if (this.channel === undefined) return;
    this.channel.onmessage = null;
    this.channel.close();
    for (const wake of [...this.waiters]) wake(true);
  }

  private receive(data: unknown): void {
    const message = parseMessage(data);
    if (message === null || message.from === this.self) return;
    if (message.t === 'lock') {
      if (message.phase === 'acquired') this.openHolds.add(message.hold);
      else {
        this.openHolds.delete(message.hold);
        this.releases++;
      }
    }
    this.onPeerMessage(message);
    for (const check of [...this.waiters]) check();
  }
}

function parseMessage(data: unknown): PeerMessage | null {
  if (typeof data !== 'object' || data === null) return null;
  const m = data as Record<string, unknown>;
  if (typeof m['from'] !== 'string') return null;
  if (m['t'] === 'hello') return { t: 'hello', from: m['from'] };
  if (m['t'] === 'retrying' && typeof m['code'] === 'string' && /^[a-z][a-z0-9_]{0,63}$/.test(m['code'])) {
    return { t: 'retrying', from: m['from'], code: m['code'] };
  }
  if (
    m['t'] === 'lock' &&
    (m['phase'] === 'acquired' || m['phase'] === 'released') &&
    typeof m['hold'] === 'string'
  ) {
    return { t: 'lock', from: m['from'], phase: m['phase'], hold: m['hold'] };
  }
  if (m['t'] === 'state') {
    const state = parseState(m['state']);
    return state === null ? null : { t: 'state', from: m['from'], state };
  }
  if (m['t'] === 'refresh') {
    const state = parseState(m['state']);
    return state?.kind === 'session' ? { t: 'refresh', from: m['from'], state } : null;
  }
  return null;
}
