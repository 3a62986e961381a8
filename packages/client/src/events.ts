import type { DpopUnavailableReason } from './dpop-agent.js';
import type { BatonClientError, SignOutReason } from './errors.js';

/** Where an event came from: this client, or another tab/instance sharing the session. */
export type EventSource = 'local' | 'remote';

/** Events and their payloads. */
export interface AuthClientEvents {
  /** A new access token for the same session (refreshed here or in another tab). */
  tokenRefreshed: { sessionId: string | undefined; expiresAt: number; source: EventSource };
  /** A refresh failed. When `retryable`, the session is kept and the client retries after `retryInMs`. */
  refreshFailed: { error: BatonClientError; retryable: boolean; retryInMs: number; attempt: number };
  /** The session ended: logout, logout everywhere, or the server refused the refresh token. */
  signedOut: { reason: SignOutReason; source: EventSource };
  /** Signed in to a (different) session, or signed out. */
  sessionChanged: { signedIn: boolean; sessionId: string | undefined; source: EventSource };
  /**
   * DPoP cannot be used here: a login falls back to an unbound session, or a
   * bound session cannot be refreshed from this context (it is kept; another
   * tab that has the key can refresh it). Fires once per reason in a row.
   */
  dpopUnavailable: { reason: DpopUnavailableReason; message: string };
}

/** Name of an event of {@link AuthClientEvents}. */
export type AuthClientEventName = keyof AuthClientEvents;

const EVENT_NAMES: ReadonlySet<string> = new Set<AuthClientEventName>([
  'tokenRefreshed',
  'refreshFailed',
  'signedOut',
  'sessionChanged',
  'dpopUnavailable',
]);

type Listener = (payload: never) => void;

/** The client's event listeners: `on` checks its arguments (a TypeError for misuse), `emit` isolates a throwing listener. */
export class AuthEvents {
  private readonly listeners = new Map<AuthClientEventName, Set<Listener>>();

  /** Subscribes; returns the unsubscribe function. */
  on<E extends AuthClientEventName>(event: E, listener: (payload: AuthClientEvents[E]) => void): () => void {
    if (!EVENT_NAMES.has(event)) throw new TypeError(`on: unknown event ${JSON.stringify(event)}`);
    if (typeof listener !== 'function') throw new TypeError('on: listener must be a function');
    let set = this.listeners.get(event);
    if (set === undefined) {
      set = new Set();
      this.listeners.set(event, set);
    }
    const entry = listener as Listener;
    set.add(entry);
    return () => {
      set.delete(entry);
    };
  }

  /** Calls every listener of `event`, in subscription order. */
  emit<E extends AuthClientEventName>(event: E, payload: AuthClientEvents[E]): void {
    const set = this.listeners.get(event);
    if (set === undefined) return;
    for (const listener of [...set]) {
      try {
        (listener as (payload: AuthClientEvents[E]) => void)(payload);
      } catch (error) {
        // A throwing listener must not break the refresh that called it; surface it like an uncaught error.
        const report = (globalThis as { reportError?: (e: unknown) => void }).reportError;
        if (typeof report === 'function') report(error);
        else queueMicrotask(() => Promise.reject(error));
      }
    }
  }

  /** Drops every listener. */
  clear(): void {
    this.listeners.clear();
  }
}
