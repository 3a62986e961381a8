import { type DpopKeyStore, hasIndexedDb, indexedDbKeyStore, realmKeyStore } from './dpop-keys.js';
import {
  type DpopKey,
  describeKey,
  generateDpopKey,
  hasWebCrypto,
  proofUri,
  signProof,
} from './dpop-proof.js';
import { BatonClientError } from './errors.js';
import type { AuthEvents } from './events.js';
import { type AuthHttpContext, postAuth, readJson } from './http.js';
import type { ClientConfig } from './options.js';
import type { SessionState } from './session-state.js';

/**
 * Why a client does not bind its session, or cannot use a bound one:
 * `disabled` (the `dpop: false` option), `no_webcrypto` (no ECDSA P-256
 * WebCrypto here), `no_key_store` (no IndexedDB, and the storage cannot keep
 * a key), `key_store_failed` (the key store refused to open or write) and
 * `key_missing` (the session is bound to a key this context does not have).
 */
export type DpopUnavailableReason =
  | 'disabled'
  | 'no_webcrypto'
  | 'no_key_store'
  | 'key_store_failed'
  | 'key_missing';

/** What `client.dpop` reports: whether the current session is bound to a key, and why not when it is not (or cannot be used). */
export interface DpopStatus {
  /** The current session is bound to a DPoP key (RFC 9449): its refresh token is useless without that key. */
  readonly bound: boolean;
  /** Why this client does not bind sessions, or cannot use the key of the bound one. */
  readonly reason?: DpopUnavailableReason;
}

const MESSAGES: Record<DpopUnavailableReason, string> = {
  disabled: 'DPoP is turned off (dpop: false)',
  no_webcrypto: 'WebCrypto with ECDSA P-256 is not available here',
  no_key_store: 'No IndexedDB, and the storage cannot keep a key',
  key_store_failed: 'The key store could not be opened or written',
  key_missing: 'The session is bound to a key this context does not have',
};

/** Sends one auth POST, with a DPoP proof when there is a key. */
export interface ProofSender {
  post(
    ctx: AuthHttpContext,
    path: string,
    body: Record<string, unknown>,
    headers?: Record<string, string>,
  ): Promise<Response>;
}

/**
 * The client's side of RFC 9449: the session's key (created at login, kept
 * in the key store under the storage key), proofs for login, refresh and logout,
 * the latest server nonce, and the one transparent retry on
 * `use_dpop_nonce`. It falls back to unbound sessions, and says so, where
 * WebCrypto or a key store is missing.
 */
export class DpopAgent {
  private readonly keys: DpopKeyStore | undefined;
  private readonly unavailable: DpopUnavailableReason | undefined;
  /** The key of the current session, once used in this context. */
  private cached: DpopKey | null = null;
  /** The latest `DPoP-Nonce` seen (per context: a stale one costs one transparent retry). */
  private nonce: string | undefined;
  /** Server clock minus ours, from the last `Date` header: a skewed client still signs a fresh `iat`. */
  private offsetMs = 0;
  /** The last reason reported, so a repeated failure fires the event once. */
  private reported: DpopUnavailableReason | undefined;

  constructor(
    private readonly config: ClientConfig,
    private readonly events: AuthEvents,
  ) {
    if (!config.dpop) this.unavailable = 'disabled';
    else if (!hasWebCrypto()) this.unavailable = 'no_webcrypto';
    else {
      // A storage that can keep keys (a file, memory) keeps them next to the
      // session; otherwise IndexedDB, which every tab of the origin shares;
      // the realm's memory when the client has no storage at all (Node).
      this.keys =
        config.storage?.keys ??
        (hasIndexedDb() ? indexedDbKeyStore() : config.storage === undefined ? realmKeyStore() : undefined);
      if (this.keys === undefined) this.unavailable = 'no_key_store';
    }
  }

  /** What `client.dpop` shows for `state`. */
  status(state: SessionState | null): DpopStatus {
    const bound = state?.kind === 'session' && state.dpopJkt !== undefined;
    const reason =
      bound && this.cached?.jkt === state.dpopJkt ? undefined : (this.unavailable ?? this.reported);
    return Object.freeze(reason === undefined ? { bound } : { bound, reason });
  }

  /**
   * A new key for a login, or null (an unbound login) when DPoP is off or
   * unavailable: then `dpopUnavailable` fires, unless it was turned off on purpose.
   */
  async newKey(): Promise<DpopKey | null> {
    if (this.unavailable !== undefined || this.keys === undefined) {
      if (this.unavailable !== 'disabled') this.report(this.unavailable ?? 'no_key_store');
      return null;
    }
    try {
      // Opening the store first: a store that cannot keep the key (IndexedDB
      // blocked) must mean an unbound session, not a bound one whose key
      // dies with this page.
      await this.keys.get(this.config.storageKey);
    } catch {
      this.report('key_store_failed');
      return null;
    }
    try {
      return await generateDpopKey(this.keys.extractable);
    } catch {
      this.report('no_webcrypto');
      return null;
    }
  }

  /** Makes `key` the stored key of the session that just logged in (replacing the previous session's). */
  async keep(key: DpopKey): Promise<void> {
    this.cached = key;
    try {
      await this.keys?.set(this.config.storageKey, key.pair);
      this.reported = undefined;
    } catch {
      // This context still holds the key and keeps the session working;
      // other tabs and a reload will not find it.
      this.report('key_store_failed');
    }
  }

  /**
   * The key to sign a refresh of `base` with: null for an unbound session.
   * `base` null (cookie mode, nothing known yet) uses the stored key if
   * there is one, since the cookie's session may be bound. A bound session
   * whose key this context lacks is a `dpop_unavailable` error that keeps
   * the session: refreshing it without its key would be refused with
   * `invalid_grant` and sign out every tab.
   */
  async keyFor(base: { dpopJkt?: string } | null): Promise<DpopKey | null> {
    const jkt = base?.dpopJkt;
    if (base !== null && jkt === undefined) return null;
    if (jkt !== undefined && this.cached?.jkt === jkt) return this.cached;
    const stored = await this.storedKey();
    if (stored !== null && (jkt === undefined || stored.jkt === jkt)) {
      this.cached = stored;
      this.reported = undefined;
      return stored;
    }
    if (jkt === undefined) return null;
    this.report('key_missing');
    throw new BatonClientError('dpop_unavailable', MESSAGES.key_missing, { retryable: false });
  }

  /**
   * Whether this context holds the key `state` is bound to (false for an
   * unbound state: there is no key to hold). Reports nothing: it answers
   * another tab's question, not one of ours.
   */
  async holdsKeyFor(state: { dpopJkt?: string }): Promise<boolean> {
    const jkt = state.dpopJkt;
    if (jkt === undefined) return false;
    if (this.cached?.jkt === jkt) return true;
    return (await this.storedKey())?.jkt === jkt;
  }

  /** Forgets the key of a session that ended (signed out), if it is the stored one. Best effort. */
  async forget(jkt: string | undefined): Promise<void> {
    if (jkt === undefined) return;
    if (this.cached?.jkt === jkt) this.cached = null;
    try {
      const stored = await this.storedKey();
      // Only that session's key: another tab may already have signed in anew.
      if (stored?.jkt === jkt) await this.keys?.delete(this.config.storageKey);
    } catch {
      // The next login replaces it anyway.
    }
  }

  /** A sender that signs each request with `key` (none when null). */
  sender(key: DpopKey | null): ProofSender {
    return { post: (ctx, path, body, headers) => this.post(ctx, path, body, key, headers) };
  }

  /**
   * POSTs with a fresh proof. A `use_dpop_nonce` answer is retried once,
   * with a new proof (new `jti`) carrying the nonce it sent, so the caller
   * never sees it; a second one goes back to the caller. @see RFC 9449 §8
   */
  private async post(
    ctx: AuthHttpContext,
    path: string,
    body: Record<string, unknown>,
    key: DpopKey | null,
    extra: Record<string, string> = {},
  ): Promise<Response> {
    for (let attempt = 0; ; attempt++) {
      const headers: Record<string, string> =
        key === null ? extra : { ...extra, DPoP: await this.proof(key, `${ctx.baseUrl}${path}`) };
      const response = await postAuth(ctx, path, body, headers);
      this.observe(response);
      if (key === null || attempt > 0 || response.status !== 400) return response;
      const error = (await readJson(response.clone())) as { error?: unknown } | undefined;
      if (error?.error !== 'use_dpop_nonce') return response;
      await response.body?.cancel();
    }
  }

  private proof(key: DpopKey, url: string): Promise<string> {
    return signProof(key, {
      htm: 'POST',
      htu: proofUri(url),
      iat: Math.floor((this.config.now() + this.offsetMs) / 1000),
      nonce: this.nonce,
    });
  }

  /** Keeps the server's latest nonce and clock offset; both come with every response of these routes. */
  private observe(response: Response): void {
    const nonce = response.headers.get('DPoP-Nonce');
    if (nonce !== null && nonce !== '') this.nonce = nonce;
    const date = Date.parse(response.headers.get('Date') ?? '');
    if (Number.isFinite(date)) this.offsetMs = date - this.config.now();
  }

  private async storedKey(): Promise<DpopKey | null> {
    if (this.keys === undefined) return null;
    try {
      const pair = await this.keys.get(this.config.storageKey);
      return pair === null || pair === undefined ? null : await describeKey(pair);
    } catch {
      return null;
    }
  }

  private report(reason: DpopUnavailableReason): void {
    if (this.reported === reason) return;
    this.reported = reason;
    this.events.emit('dpopUnavailable', { reason, message: MESSAGES[reason] });
  }
}
