/**
 * The storage contract of Baton, in domain words. Core talks only to this
 * interface; adapters (SQLite, PostgreSQL) implement it and run the one
 * conformance suite in `packages/server/test/store-conformance.ts`.
 *
 * All times are milliseconds since the epoch, supplied by the caller (core's
 * injected clock): a store never reads the wall clock itself, so tests move
 * time and every instance agrees on what "now" meant for a write.
 */

/** A user account. */
export interface UserRecord {
  id: string;
  /** Lower-cased, trimmed; unique. */
  email: string;
  /** Argon2id PHC string. Never logged, never sent. */
  passwordHash: string;
  createdAt: number;
  disabledAt: number | null;
  passwordChangedAt: number | null;
}

/** An OAuth client (RFC 6749 §2). */
export interface ClientRecord {
  id: string;
  name: string;
  type: 'public' | 'confidential';
  /** Hash of the client secret (confidential clients only). */
  secretHash: string | null;
  /** Browser origins allowed to use cookie mode for this client; empty = the server's list. */
  allowedOrigins: string[];
  /** Scopes this client may be granted; empty = no scopes. */
  allowedScopes: string[];
  /** `aud` of its access tokens; null = the issuer. */
  audience: string | null;
  /** Per-client overrides of the server defaults, in ms; null = default. */
  accessTtl: number | null;
  refreshIdleTtl: number | null;
  sessionMaxTtl: number | null;
  createdAt: number;
}

/** Why a session ended. */
export type RevocationReason =
  | 'logout'
  | 'logout_all'
  | 'revoked_by_user'
  | 'password_changed'
  | 'user_disabled'
  | 'reuse_detected'
  | 'token_revoked'
  | 'admin'
  /** Made way for a newer login of its user: the live-session cap. */
  | 'session_limit';

/** A session: one login, one token family. */
export interface SessionRecord {
  id: string;
  userId: string;
  clientId: string;
  scope: string | null;
  createdAt: number;
  lastUsedAt: number;
  /** When the session dies if not used again (sliding, never past `expiresAt`). */
  idleExpiresAt: number;
  /** Absolute end of the session; refreshing never extends it. */
  expiresAt: number;
  userAgent: string | null;
  ip: string | null;
  revokedAt: number | null;
  revokedReason: RevocationReason | null;
  /**
   * Set on a sender-constrained session: the RFC 7638 thumbprint of the
   * DPoP key it was bound to at login; absent on an unbound session.
   * @see RFC 9449 §5
   */
  dpopJkt?: string;
}

/** One refresh token of a session's chain. */
export interface RefreshTokenRecord {
  /** The lookup id (public half of the token). */
  id: string;
  sessionId: string;
  /** base64url SHA-256 of the secret half. */
  secretHash: string;
  parentId: string | null;
  /** Set when this token was rotated: the id of the token issued for it. */
  successorId: string | null;
  createdAt: number;
  /** Set when this token was rotated. */
  usedAt: number | null;
}

/** What a presented refresh token refers to, read in one query. */
export interface RefreshTokenState {
  token: RefreshTokenRecord;
  session: SessionRecord;
  /** The successor row when the token was already rotated. */
  successor: RefreshTokenRecord | null;
}

/** A signing key. The private JWK is only ever read by core's key ring. */
export interface SigningKeyRecord {
  kid: string;
  alg: 'ES256' | 'EdDSA';
  privateJwk: string;
  publicJwk: string;
  createdAt: number;
  /** The key is published at once but signs only from this time on. */
  activatesAt: number;
  /** Stops signing at this time; stays published until its tokens have expired. */
  retiredAt: number | null;
}

/**
 * A device that has logged in to an account successfully: its token (only
 * the secret's hash is kept) exempts it from that account's shared failure
 * lockout. Not a session: it grants nothing but a limit of its own.
 */
export interface TrustedDeviceRecord {
  /** The lookup id (public half of the device token). */
  id: string;
  userId: string;
  /** base64url SHA-256 of the secret half. */
  secretHash: string;
  createdAt: number;
  /** The last successful login from this device. */
  lastUsedAt: number;
}

/**
 * What a security event records. Core writes every one of them; none carries
 * a secret (no token, hash or password: ids, IPs and user agents only).
 */
export type SecurityEventType =
  | 'login_succeeded'
  | 'login_failed'
  | 'refresh_token_reuse'
  /** One or more sessions ended; `detail.reason` says why, `detail.by` who (`user`, `admin`, `system`). */
  | 'session_revoked'
  | 'password_changed'
  | 'user_disabled'
  | 'user_enabled'
  | 'signing_key_rotated'
  | 'signing_key_retired'
  | 'client_created'
  | 'client_deleted'
  /** A DPoP-bound session's token presented without its key's proof, or with another key's (RFC 9449). */
  | 'dpop_proof_missing'
  | 'dpop_key_mismatch';

/** A security-relevant happening, kept for audit (and pruned after its retention). */
export interface SecurityEventRecord {
  type: SecurityEventType;
  at: number;
  userId?: string | null;
  sessionId?: string | null;
  clientId?: string | null;
  ip?: string | null;
  /** Non-secret details as JSON. */
  detail?: Record<string, string | number | boolean | null>;
}

/** Filters of {@link Store.listSecurityEvents}. */
export interface SecurityEventQuery {
  userId?: string;
  type?: SecurityEventType;
  /** Only events at or after this time. */
  since?: number;
  /** At most this many (default 100). */
  limit?: number;
}

/**
 * What pruning deletes, each kind by its own cut-off (ms since the epoch),
 * in this order: the tokens of ended sessions, then those sessions, then
 * spent tokens of the sessions kept, stale trusted devices, old events.
 */
export type PruneKind =
  | 'session_tokens'
  | 'sessions'
  | 'spent_tokens'
  | 'trusted_devices'
  | 'security_events';

/** Every {@link PruneKind}, in the order a run deletes them. */
export const PRUNE_KINDS: readonly PruneKind[] = Object.freeze([
  'session_tokens',
  'sessions',
  'spent_tokens',
  'trusted_devices',
  'security_events',
]);

/** Input of {@link Store.pruneBatch} and {@link Store.countPrunable}. */
export interface PruneCutoffs {
  /** Sessions (and all their tokens) that ended (revoked, or past either expiry) before this. */
  sessionsEndedBefore: number;
  /**
   * Within live sessions: spent refresh tokens used before this, whose
   * successor is spent too (never the current token, never the one a
   * grace replay or a lost response still needs).
   */
  tokensUsedBefore: number;
  /** Trusted devices last used before this. */
  devicesUsedBefore: number;
  /** Security events recorded before this. */
  eventsBefore: number;
}

/** The server secrets the store keeps (see {@link Store.serverSecret}). */
export type ServerSecretName = 'dpop_nonce';

/** Input of {@link Store.rotateRefreshToken}. */
export interface RotationWrite {
  /** The token being rotated. */
  parentId: string;
  /** The successor row to create. */
  successor: { id: string; secretHash: string };
  now: number;
  /** The session's new idle deadline (already capped at its absolute end by core). */
  idleExpiresAt: number;
}

/**
 * Result of {@link Store.rotateRefreshToken}. On `conflict` the conditional
 * update did not apply, and `state` is what the store found instead, read
 * in the same unit of work: the token already used (with its successor),
 * or its session revoked; null when the token does not exist. Core decides
 * from it at once (grace replay, reuse, or refusal) without reading again.
 */
export type RotationResult =
  | { outcome: 'rotated' }
  | { outcome: 'conflict'; state: RefreshTokenState | null };

/** Input of {@link Store.createSession}. */
export interface NewSession {
  session: Omit<SessionRecord, 'revokedAt' | 'revokedReason'>;
  firstToken: { id: string; secretHash: string };
  /**
   * The password hash the login verified. When set, the session is created
   * only if the user still has exactly this hash: a password change that
   * committed while the login was inside Argon2 wins over it.
   */
  verifiedPasswordHash?: string;
  /**
   * The cap on the user's live sessions. When the new one would exceed it,
   * the oldest other live sessions (least recently used, then created
   * first, then by id) are revoked as `session_limit` in the same
   * transaction, and `event` is recorded once for each of them (with its
   * `sessionId`).
   */
  sessionLimit?: { max: number; event?: SecurityEventRecord };
  /** Recorded with the session, in its transaction, when it is created (the login's event). */
  event?: SecurityEventRecord;
  /**
   * The device the login's success is recorded on, in the same transaction
   * once the session is created, at the session's creation time: `add`
   * remembers a new device of the session's user (a taken id fails the
   * whole creation), `touch` moves a known one's last use (nothing happens
   * when the device is gone).
   */
  device?: { add: Pick<TrustedDeviceRecord, 'id' | 'secretHash'> } | { touch: string };
}

/**
 * Result of {@link Store.createSession}: `created` is false when the account
 * no longer allowed it; `evicted` lists the sessions the cap revoked.
 */
export interface SessionCreation {
  created: boolean;
  evicted: string[];
}

/** A page of {@link Store.listActiveSessions}: at most `limit` sessions, after the one at `after`. */
export interface SessionPage {
  limit: number;
  /** The last session of the previous page (its position in the order). */
  after?: { lastUsedAt: number; id: string };
}

/** The state of the database, as {@link Store.inspect} finds it. */
export interface StoreInspection {
  /** This build's migrations recorded as applied. */
  migrationsApplied: number;
  /** This build's migrations not applied yet (`baton migrate` applies them). */
  migrationsPending: number;
  /** The database server's clock (ms since the epoch); null where it is this machine's own (SQLite). */
  databaseTime: number | null;
  /**
   * Whether the database server runs autovacuum (PostgreSQL's `autovacuum`
   * setting); null where there is none (SQLite). Without it Baton's tables
   * never get statistics, so each connection keeps the plans it made while
   * they were small, and used tokens' dead rows are never reclaimed.
   */
  autovacuum: boolean | null;
}

/**
 * The store. Every method is one atomic unit of work.
 *
 * Concurrency promise of {@link Store.rotateRefreshToken}: of any number N
 * of concurrent rotations of one token, in one process or across many
 * processes sharing the database, exactly one returns `{ outcome: 'rotated' }`;
 * the other N-1 return `{ outcome: 'conflict' }` and write nothing. The
 * conditional write that marks the token used (or, on SQLite, touches its
 * session only while the token is unused, under the database's write lock)
 * is the linearisation point. Rotations asked for in the same event-loop
 * turn may share work (SQLite: one commit; PostgreSQL: one statement), but
 * each stays conditional on its own token and whole or not at all, and two
 * rotations of one token never share a statement, so the promise is the
 * same for them.
 *
 * The state-changing methods that take an `event` write it in the same
 * transaction as their change: both land, or neither does. The event is
 * written even when there was nothing left to change (a session another
 * request already revoked), so every detection is on record.
 */
export interface Store {
  /** `sqlite` or `postgres`, for metrics and readiness output. */
  readonly dialect: string;

  /** Applies pending numbered migrations; safe to call from several processes at once. Returns how many ran. */
  migrate(): Promise<number>;
  /** Throws when the database cannot be reached (readiness). */
  ping(): Promise<void>;
  /**
   * What `baton doctor` reports about the database, changing nothing: how
   * many of this build's migrations are applied and pending (none is
   * applied here), and the database server's clock.
   */
  inspect(): Promise<StoreInspection>;
  /** Releases connections. */
  close(): Promise<void>;

  /** Creates a user; rejects with `BatonError('email_taken')` when the email exists. */
  createUser(user: Omit<UserRecord, 'disabledAt' | 'passwordChangedAt'>): Promise<UserRecord>;
  findUserByEmail(email: string): Promise<UserRecord | null>;
  findUserById(id: string): Promise<UserRecord | null>;
  /** Users, oldest first, then by id. */
  listUsers(opts?: { limit?: number }): Promise<UserRecord[]>;
  /**
   * Replaces the password hash and, in the same transaction, revokes every
   * session of the user except `keepSessionId`. Returns how many were revoked.
   */
  changePassword(args: {
    userId: string;
    passwordHash: string;
    now: number;
    keepSessionId: string | null;
    event?: SecurityEventRecord;
  }): Promise<number>;
  /** Disables (and revokes every session) or re-enables a user. */
  setUserDisabled(args: {
    userId: string;
    disabled: boolean;
    now: number;
    event?: SecurityEventRecord;
  }): Promise<void>;

  findClient(id: string): Promise<ClientRecord | null>;
  listClients(): Promise<ClientRecord[]>;
  /** Inserts a client; a no-op when one with the id exists and `ifMissing` is set. */
  createClient(client: ClientRecord, opts?: { ifMissing?: boolean }): Promise<void>;
  /**
   * Deletes a client and revokes its sessions; `event`, when given, is
   * recorded in the same transaction if the client existed. Returns false when unknown.
   */
  deleteClient(id: string, now: number, event?: SecurityEventRecord): Promise<boolean>;

  /**
   * Creates a session and its first refresh token together, only if the
   * user exists, is not disabled and (with `verifiedPasswordHash`) still has
   * that password hash, all checked in the same transaction, with the user's
   * row locked against a concurrent disable or password change until the
   * commit. Otherwise writes nothing and answers `{ created: false }`.
   */
  createSession(input: NewSession): Promise<SessionCreation>;
  findSession(id: string): Promise<SessionRecord | null>;
  /**
   * Sessions of a user not revoked and not expired at `now`, most recently
   * used first, then by id (bytewise); with `page`, only the slice after
   * `page.after` (keyset pagination: stable under ties in `lastUsedAt`).
   */
  listActiveSessions(userId: string, now: number, page?: SessionPage): Promise<SessionRecord[]>;
  /** Revokes one session; false when unknown or already revoked (`event` is recorded either way). */
  revokeSession(args: {
    sessionId: string;
    reason: RevocationReason;
    now: number;
    event?: SecurityEventRecord;
  }): Promise<boolean>;
  /** Revokes every live session of a user, optionally but one. Returns how many. */
  revokeUserSessions(args: {
    userId: string;
    reason: RevocationReason;
    now: number;
    exceptSessionId?: string | null;
    event?: SecurityEventRecord;
  }): Promise<number>;

  /**
   * The token with its session (and successor, when rotated), or null. On
   * PostgreSQL the lookups of one event-loop turn are answered by one statement.
   */
  findRefreshToken(id: string): Promise<RefreshTokenState | null>;
  /**
   * {@link findRefreshToken} for a refresh about to rotate the token: may
   * answer from memory of what this store last read or wrote for the token's
   * session, and so may be stale in one way only: the token may since have
   * been used, or its session revoked or its user disabled, by another
   * process. Use it only where the answer leads to {@link rotateRefreshToken}
   * or to a refusal, never to tokens issued without it: the rotation's
   * conditional write re-checks all three and reports the state it found.
   */
  findRefreshTokenToRotate(id: string): Promise<RefreshTokenState | null>;
  /**
   * Marks `parentId` used and creates its successor, touching the session,
   * only if the token is still unused, its session not revoked and its user
   * not disabled; else
   * reports what it found (see {@link RotationResult}). See the concurrency
   * promise on {@link Store}.
   */
  rotateRefreshToken(write: RotationWrite): Promise<RotationResult>;

  /**
   * The device with its user's email, in one query, or null. The email lets
   * login compare the device with the account being logged into without
   * looking the account up first. Deleting a user deletes its devices.
   */
  findTrustedDevice(id: string): Promise<{ device: TrustedDeviceRecord; email: string } | null>;

  listSigningKeys(): Promise<SigningKeyRecord[]>;
  addSigningKey(key: SigningKeyRecord): Promise<void>;
  /**
   * Sets `retiredAt` on a key (possibly in the future: a scheduled
   * retirement), or moves a scheduled retirement earlier, never later.
   * False when unknown or already retired by `at`.
   */
  retireSigningKey(kid: string, at: number): Promise<boolean>;
  /** Deletes keys retired before `before` (their tokens have all expired). Returns how many. */
  deleteSigningKeysRetiredBefore(before: number): Promise<number>;

  /**
   * The server secret called `name`, shared by every instance: the first
   * caller's `candidate` is stored (insert-if-absent, so of instances
   * starting together exactly one candidate wins) and every caller gets the
   * stored one back. Secrets are never listed, logged or rotated here.
   */
  serverSecret(args: { name: ServerSecretName; candidate: string; now: number }): Promise<string>;
  /**
   * Records a DPoP proof's replay key (a hash of its key thumbprint and
   * `jti`) until `expiresAt`, in one insert-if-absent statement: true when
   * it was new (or only an expired record had it), false when a live record
   * has it, which is a replay. Across instances exactly one of concurrent
   * recordings of one key wins. Also deletes up to `pruneLimit` (default
   * 100) expired records, so the table stays bounded without a sweeper.
   * @see RFC 9449 §11.1
   */
  recordDpopProof(args: {
    jtiHash: string;
    expiresAt: number;
    now: number;
    pruneLimit?: number;
  }): Promise<boolean>;

  recordSecurityEvent(event: SecurityEventRecord): Promise<void>;
  /** Events matching every given filter, newest recorded first. */
  listSecurityEvents(opts?: SecurityEventQuery): Promise<SecurityEventRecord[]>;

  /**
   * Deletes at most `limit` rows of one kind that are past their cut-off,
   * in one short unit of work (SQLite: its own transaction), and returns how
   * many it deleted: the caller repeats until fewer than `limit` come back,
   * so no batch holds a lock for long. Safe to run from several instances
   * at once: a row two batches both chose is deleted once.
   */
  pruneBatch(kind: PruneKind, cutoffs: PruneCutoffs, limit: number): Promise<number>;
  /** How many rows of one kind {@link Store.pruneBatch} would delete now (a dry run). */
  countPrunable(kind: PruneKind, cutoffs: PruneCutoffs): Promise<number>;
  /** Sessions not revoked and not expired at `now` (a metric). */
  countActiveSessions(now: number): Promise<number>;
}
