import { latch, PeerChannel, type PeerMessage, startTimer } from './coordination.js';
import type { AuthEvents, EventSource } from './events.js';
import type { ClientConfig } from './options.js';
import { decideRefresh, isNewer } from './refresh-decision.js';
import { type LiveState, parseState, randomId, type SessionState } from './session-state.js';

/** On start-up with nothing stored: how long to wait for another tab to share its session. */
const PEER_WAIT_MS = 150;

/**
 * The session state one client shares with its storage and with the other
 * tabs and instances on the same storage key: it adopts theirs when newer,
 * publishes its own, and fires the events that a change of state means.
 */
export class SharedSession {
  /** The newest state known to this instance; storage and peers can only replace it with a newer one. */
  private current: SessionState | null = null;
  private closed = false;
  private readonly self = randomId();
  private readonly channel: PeerChannel;
  private readonly peersHeard: { promise: Promise<void>; open: () => void };
  private readonly cleanups: (() => void)[] = [];
  private readonly retryListeners = new Set<(code: string) => void>();
  private readonly refreshRequestListeners = new Set<(state: LiveState) => void>();
  /** Checked after every adopted state (and woken by close()): waits for a state newer than one we had. */
  private readonly stateWaiters = new Set<(closing: boolean) => void>();

  constructor(
    private readonly config: ClientConfig,
    private readonly events: AuthEvents,
    /** Called for every adopted state, before its events: a new state ends any backoff. */
    private readonly onAdopted: (next: SessionState) => void,
  ) {
    this.channel = new PeerChannel(`baton:${config.storageKey}`, this.self, (message) =>
      this.onPeerMessage(message),
    );
    this.cleanups.push(() => this.channel.close());
    this.peersHeard = latch(this.channel.available ? PEER_WAIT_MS : 0);
    this.cleanups.push(this.peersHeard.open);
    const unsubscribe = config.storage?.subscribe?.(config.storageKey, (raw) => {
      const next = parseState(raw);
      if (next !== null) this.adopt(next, 'remote');
    });
    if (unsubscribe !== undefined) this.cleanups.push(unsubscribe);
  }

  /** The newest state known, without any I/O. */
  get state(): SessionState | null {
    return this.current;
  }

  /** The newest state if it is a live session. */
  live(): LiveState | null {
    return this.current?.kind === 'session' ? this.current : null;
  }

  /** Resolves once a peer has told us its state, or after a short wait (at once without BroadcastChannel). */
  get peersHeardOrTimedOut(): Promise<void> {
    return this.peersHeard.promise;
  }

  /** Asks the other tabs for the state they hold (they answer with a `state` message). */
  askPeers(): void {
    this.channel.post({ t: 'hello', from: this.self });
  }

  /** Reads storage (when there is one) and adopts its state if newer; returns the newest known state. */
  async readCurrent(): Promise<SessionState | null> {
    const storage = this.config.storage;
    if (storage !== undefined) {
      let raw: string | null | undefined = null;
      try {
        raw = await storage.get(this.config.storageKey);
      } catch {
        // An unreadable storage is treated like an empty one; the in-memory state stands.
      }
      const stored = parseState(raw);
      if (stored !== null) this.adopt(stored, 'remote');
    }
    return this.current;
  }

  /**
   * Makes `next` current if it is newer than what we have, and tells
   * listeners what changed. Every path that changes the state goes through
   * here, so events fire once per change whatever its route (our refresh, a
   * shared flight, a peer's message, a storage event).
   */
  adopt(next: SessionState, source: EventSource, options: { login?: boolean } = {}): void {
    const previous = this.current;
    const decision = decideRefresh({
      moment: 'arrived',
      current: previous,
      incoming: next,
      now: this.config.now(),
      timing: { refreshMarginMs: this.config.refreshMarginMs, jitterMs: 0 },
    });
    if (decision.action !== 'adopt') return;
    this.current = next;
    const before = previous?.kind === 'session' ? previous : null;
    if (next.kind === 'session') {
      this.onAdopted(next);
      if (options.login === true || before === null || before.sessionId !== next.sessionId) {
        this.events.emit('sessionChanged', { signedIn: true, sessionId: next.sessionId, source });
      } else if (before.accessToken !== next.accessToken) {
        this.events.emit('tokenRefreshed', { sessionId: next.sessionId, expiresAt: next.expiresAt, source });
      }
    } else if (before !== null) {
      this.onAdopted(next);
      this.events.emit('signedOut', { reason: next.reason, source });
      this.events.emit('sessionChanged', { signedIn: false, sessionId: undefined, source });
    }
    for (const check of [...this.stateWaiters]) check(false);
  }

  /** Adopts a state we produced, stores it, then tells the other contexts (storage first, so a peer that re-reads finds it). */
  async commit(next: SessionState, options: { login?: boolean } = {}): Promise<void> {
    this.adopt(next, 'local', options);
    await this.writeStorage(next);
    this.channel.post({ t: 'state', from: this.self, state: next });
  }

  /** Writes `next` to storage (when there is one); a failing storage keeps the session in memory. */
  async writeStorage(next: SessionState): Promise<void> {
    if (this.config.storage === undefined) return;
    try {
      await this.config.storage.set(this.config.storageKey, JSON.stringify(next));
    } catch {
      // A full or locked storage must not end the session: it lives on in memory.
    }
  }

  /**
   * Runs `fn` under the refresh lock shared by every context on this storage
   * key, holding it at most `holdMs` (default: two request timeouts); `fn`'s
   * `held` signal aborts when that has passed and the lock was let go.
   */
  withLock<T>(fn: (held: AbortSignal) => Promise<T>, options: { holdMs?: number } = {}): Promise<T> {
    return this.channel.runLocked(
      `baton-refresh:${this.config.storageKey}`,
      {
        timeoutMs: this.config.timeoutMs,
        ...(options.holdMs === undefined ? {} : { holdMs: options.holdMs }),
        storageLock: this.config.storage?.lock?.bind(this.config.storage),
      },
      fn,
    );
  }

  /** Tells the other contexts that our refresh attempt failed (`code`) and that we, holding the lock, retry. */
  announceRetrying(code: string): void {
    this.channel.post({ t: 'retrying', from: this.self, code });
  }

  /** Calls `listener` when a peer announces that its refresh is retrying; returns the unsubscribe function. */
  onPeerRetrying(listener: (code: string) => void): () => void {
    this.retryListeners.add(listener);
    return () => {
      this.retryListeners.delete(listener);
    };
  }

  /**
   * Asks the other contexts to refresh `state`, which this one cannot (it
   * lacks the bound session's key), and resolves once a newer state has
   * been adopted (their refresh, or their sign-out), after `timeoutMs`, or
   * when this session is closed, whichever comes first. At once when no
   * message can reach another context.
   */
  requestPeerRefresh(state: LiveState, timeoutMs: number): Promise<void> {
    const replaced = () => this.closed || (this.current !== null && isNewer(this.current, state));
    if (replaced() || !this.channel.available) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const check = (force: boolean) => {
        if (!force && !replaced()) return;
        clearTimeout(timer);
        this.stateWaiters.delete(check);
        resolve();
      };
      this.stateWaiters.add(check);
      const timer = startTimer(() => check(true), timeoutMs);
      this.channel.post({ t: 'refresh', from: this.self, state });
    });
  }

  /** Calls `listener` when a peer without the key asks for a refresh of `state` (already adopted if newer); returns the unsubscribe function. */
  onRefreshRequest(listener: (state: LiveState) => void): () => void {
    this.refreshRequestListeners.add(listener);
    return () => {
      this.refreshRequestListeners.delete(listener);
    };
  }

  /** Sends `state` to the other contexts again (one of them asked about an older one). */
  share(state: SessionState): void {
    this.channel.post({ t: 'state', from: this.self, state });
  }

  /** Stops listening to peers and storage, and ends every wait for a peer's refresh. */
  close(): void {
    this.closed = true;
    for (const cleanup of this.cleanups.splice(0)) cleanup();
    for (const wake of [...this.stateWaiters]) wake(true);
  }

  private onPeerMessage(message: PeerMessage): void {
    if (this.closed) return;
    if (message.t === 'state') {
      this.adopt(message.state, 'remote');
      this.peersHeard.open();
    } else if (message.t === 'retrying') {
      for (const listener of [...this.retryListeners]) listener(message.code);
    } else if (message.t === 'refresh') {
      // The asker's state may be news to us (a missed message, no shared storage).
      this.adopt(message.state, 'remote');
      for (const listener of [...this.refreshRequestListeners]) listener(message.state);
    } else if (message.t === 'hello' && this.current !== null) {
      this.channel.post({ t: 'state', from: this.self, state: this.current });
    }
  }
}
