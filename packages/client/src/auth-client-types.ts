import type { DpopStatus } from './dpop-agent.js';
import type { AuthClientEventName, AuthClientEvents } from './events.js';

/** What `getSession()` and `login()` report; never a token. */
export interface SessionInfo {
  sessionId: string | undefined;
  /** Local-clock time (ms) when the access token expires. */
  expiresAt: number;
  /** Local-clock time (ms) when the access token was requested. */
  obtainedAt: number;
  scope: string | undefined;
}

/** A user as `register()` returns it. */
export interface BatonUser {
  id: string;
  email: string;
  created_at: string;
}

/** The client returned by `createAuthClient`. Its methods are bound: destructuring is fine. */
export interface AuthClient {
  /** Creates an account. Does not sign in. */
  register(credentials: { email: string; password: string }): Promise<BatonUser>;
  /** Signs in; every tab sharing the session follows. */
  login(credentials: { email: string; password: string; scope?: string }): Promise<SessionInfo>;
  /**
   * Ends this session, on the server and in every tab. Local sign-out always
   * happens; `revoked` says whether the server confirmed it.
   */
  logout(): Promise<{ revoked: boolean }>;
  /** Ends every session of the user (`POST /auth/logout-all`), then signs out here and in every tab. */
  logoutAll(): Promise<void>;
  /**
   * fetch with `Authorization: Bearer`, refreshing first when the token is due
   * and once more on a 401. Relative URLs resolve against baseUrl. Rejects
   * with a BatonClientError (`signed_out`, or a retryable refresh failure
   * while the token is expired); HTTP errors come back as responses.
   */
  fetch(input: Request | string | URL, init?: RequestInit): Promise<Response>;
  /** A valid access token (refreshed if due), or null when signed out. */
  getAccessToken(): Promise<string | null>;
  /** What is known right now, without any I/O; null when signed out or not yet restored. */
  getSession(): SessionInfo | null;
  /** Subscribes to an event; returns the unsubscribe function. */
  on<E extends AuthClientEventName>(event: E, listener: (payload: AuthClientEvents[E]) => void): () => void;
  /** Stops listening to other tabs and to the page, and clears timers. Later calls reject with `disposed`. */
  dispose(): void;
  /**
   * Whether the current session is bound to a DPoP key (RFC 9449), and why
   * not when DPoP cannot be used here. Read-only; `dpopUnavailable` fires
   * when it falls back.
   */
  readonly dpop: DpopStatus;
}
