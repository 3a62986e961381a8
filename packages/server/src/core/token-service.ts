import type {
  ClientRecord,
  RefreshTokenRecord,
  RefreshTokenState,
  SessionRecord,
  Store,
  UserRecord,
} from '../store/store.js';
import {
  type AccessTokenClaims,
  decodeAccessToken,
  newJti,
  signAccessToken,
  verifyAccessToken,
} from './access-token.js';
import { type Clock, systemClock, toEpochSeconds } from './clock.js';
import { DEVICE_TTL_MS, newDeviceToken, parseDeviceToken } from './device-token.js';
import { BatonError } from './errors.js';
import { newId } from './ids.js';
import { assertAcceptablePassword, hashPassword, verifyPassword } from './passwords.js';
import {
  deriveSuccessor,
  newRefreshToken,
  newRefreshTokenId,
  parseRefreshToken,
  secretMatches,
} from './refresh-token.js';
import { KeyRing, type PublicJwk, type SigningAlgorithm } from './signing-keys.js';

/** The public client every installation has; `/auth/login` uses it unless told otherwise. */
export const DEFAULT_CLIENT_ID = 'app';

/** Options of {@link createTokenService}. Durations in milliseconds. */
export interface TokenServiceOptions {
  store: Store;
  /** `iss` of every access token; also the default `aud`. */
  issuer: string;
  /** Access-token lifetime (default 15 min). */
  accessTtl?: number;
  /** A session dies after this long unused (default 14 d). */
  refreshIdleTtl?: number;
  /** A session dies this long after login, however active (default 30 d). */
  sessionMaxTtl?: number;
  /** How long a rotated refresh token may be replayed for the same successor (default 10 s). */
  reuseGrace?: number;
  /** Algorithm of new signing keys (default ES256). */
  signingAlg?: SigningAlgorithm;
  /** Clock leeway when verifying access tokens, in seconds (default 5). */
  leeway?: number;
  now?: Clock;
  /** Observes outcomes (metrics, logs). Must not throw. */
  onEvent?: (event: TokenServiceEvent) => void;
}

/** What the token service reports to observers. Never carries secrets. */
export type TokenServiceEvent =
  | {
      kind: 'refresh';
      outcome: RefreshOutcome | 'invalid' | 'reuse_detected';
      sessionId?: string;
      clientId?: string;
    }
  | { kind: 'login'; outcome: 'success' | 'failure'; userId?: string; clientId?: string }
  | { kind: 'session_revoked'; reason: string; sessionId?: string; userId?: string; count: number };

/** How a successful refresh was served. */
export type RefreshOutcome = 'rotated' | 'grace_replay';

/** A user as the API shows it. */
export interface PublicUser {
  id: string;
  email: string;
  createdAt: number;
}

/** The pair handed to a client after login or refresh. */
export interface IssuedTokens {
  accessToken: string;
  tokenType: 'Bearer';
  /** Seconds until the access token expires. */
  expiresIn: number;
  refreshToken: string;
  sessionId: string;
  clientId: string;
  scope: string | null;
  /** When the session (and so the refresh token) ends at the latest, ms: for cookie Max-Age. */
  refreshExpiresAt: number;
}

/**
 * A presented device token that checked out: it is genuine, still within
 * its lifetime, and belongs to the user with `email`.
 */
export interface TrustedDevice {
  id: string;
  userId: string;
  /** The owner's normalised email, to compare with the account being logged into. */
  email: string;
  /** The token as presented, handed back when the device logs in to its user again. */
  token: string;
}

/** What a successful login returns: the tokens and the device token to keep. */
export interface LoginResult extends IssuedTokens {
  /** `bdv_…`: proves this device's successful login; the presented one when it was already trusted. */
  deviceToken: string;
  deviceId: string;
}

/** Where a request came from, kept on the session. */
export interface RequestContext {
  userAgent?: string | null;
  ip?: string | null;
}

/** A verified access token and the live session behind it. */
export interface Authenticated {
  claims: AccessTokenClaims;
  session: SessionRecord;
}

const DEFAULTS = {
  accessTtl: 15 * 60_000,
  refreshIdleTtl: 14 * 86_400_000,
  sessionMaxTtl: 30 * 86_400_000,
  reuseGrace: 10_000,
};

const EMAIL = /^[^\s@]+@[^\s@]+$/;

/** Normalises and checks an email address (trimmed, lower-cased, ≤ 254 characters). */
export function normalizeEmail(email: string): string {
  const e = email.trim().toLowerCase();
  if (e.length > 254 || !EMAIL.test(e))
    throw new BatonError('invalid_request', 'email must be a valid email address');
  return e;
}

const toPublicUser = (u: UserRecord): PublicUser => ({ id: u.id, email: u.email, createdAt: u.createdAt });
const invalidGrant = (description: string) => new BatonError('invalid_grant', description);

/**
 * The token lifecycle: accounts, sessions, rotation with reuse detection,
 * access tokens. Knows nothing of HTTP or SQL.
 */
export type TokenService = ReturnType<typeof createTokenService>;

/**
 * Creates the token service. Call `init()` once before use (creates the first
 * signing key and the default client when missing).
 */
export function createTokenService(options: TokenServiceOptions) {
  const store = options.store;
  const now = options.now ?? systemClock;
  const cfg = {
    accessTtl: options.accessTtl ?? DEFAULTS.accessTtl,
    refreshIdleTtl: options.refreshIdleTtl ?? DEFAULTS.refreshIdleTtl,
    sessionMaxTtl: options.sessionMaxTtl ?? DEFAULTS.sessionMaxTtl,
    reuseGrace: options.reuseGrace ?? DEFAULTS.reuseGrace,
  };
  for (const [name, value] of Object.entries(cfg)) {
    if (!Number.isFinite(value) || value <= 0)
      throw new TypeError(`${name} must be a positive number of milliseconds`);
  }
  if (typeof options.issuer !== 'string' || options.issuer === '') throw new TypeError('issuer is required');
  const issuer = options.issuer;
  const emit = options.onEvent ?? (() => {});
  const keys = new KeyRing({
    store,
    now,
    alg: options.signingAlg ?? 'ES256',
    maxTokenLifetime: cfg.accessTtl,
  });

  // Clients change rarely and are read on every refresh: a short cache keeps
  // the hot path at one query. Deleting a client revokes its sessions in the
  // store, so a stale entry can never bring a session back.
  const clientCache = new Map<string, { client: ClientRecord | null; until: number }>();
  async function findClient(id: string): Promise<ClientRecord | null> {
    const t = now();
    const hit = clientCache.get(id);
    if (hit && hit.until > t) return hit.client;
    const client = await store.findClient(id);
    if (clientCache.size > 1000) clientCache.clear();
    clientCache.set(id, { client, until: t + 10_000 });
    return client;
  }

  function issue(
    session: SessionRecord,
    client: ClientRecord,
    refreshToken: string,
    scope: string | null,
    t: number,
  ): IssuedTokens {
    const ttl = client.accessTtl ?? cfg.accessTtl;
    // An access token never outlives its session.
    const exp = Math.min(t + ttl, session.expiresAt);
    const claims: AccessTokenClaims = {
      iss: issuer,
      sub: session.userId,
      aud: client.audience ?? issuer,
      exp: toEpochSeconds(exp),
      iat: toEpochSeconds(t),
      jti: newJti(),
      sid: session.id,
      client_id: client.id,
      ...(scope ? { scope } : {}),
    };
    return {
      accessToken: signAccessToken(keys.signingKey(t), claims),
      tokenType: 'Bearer',
      expiresIn: Math.max(0, claims.exp - claims.iat),
      refreshToken,
      sessionId: session.id,
      clientId: client.id,
      scope,
      refreshExpiresAt: session.expiresAt,
    };
  }

  function narrowScope(granted: string | null, requested: string | undefined): string | null {
    if (requested === undefined) return granted;
    const have = new Set((granted ?? '').split(' ').filter(Boolean));
    const want = requested.split(' ').filter(Boolean);
    if (want.some((s) => !have.has(s)))
      throw new BatonError('invalid_scope', 'The requested scope exceeds the granted scope');
    return want.length ? [...new Set(want)].join(' ') : null;
  }

  function liveness(session: SessionRecord, t: number): string | null {
    if (session.revokedAt !== null) return 'The session has been revoked';
    if (session.expiresAt <= t) return 'The session has expired';
    if (session.idleExpiresAt <= t) return 'The session has expired after inactivity';
    return null;
  }

  async function clientOf(session: SessionRecord): Promise<ClientRecord> {
    const client = await findClient(session.clientId);
    if (!client) throw invalidGrant('The client of this session no longer exists');
    return client;
  }

  async function reuseDetected(state: RefreshTokenState, t: number, ctx: RequestContext): Promise<never> {
    // Revocation and audit record in one transaction: a crash between them
    // must not leave a revoked family with no record of why (or the reverse).
    const revoked = await store.revokeSession({
      sessionId: state.session.id,
      reason: 'reuse_detected',
      now: t,
      event: {
        type: 'refresh_token_reuse',
        at: t,
        userId: state.session.userId,
        sessionId: state.session.id,
        clientId: state.session.clientId,
        ip: ctx.ip ?? null,
        detail: { usedAt: state.token.usedAt, successorUsed: state.successor?.usedAt != null },
      },
    });
    emit({
      kind: 'refresh',
      outcome: 'reuse_detected',
      sessionId: state.session.id,
      clientId: state.session.clientId,
    });
    if (revoked)
      emit({
        kind: 'session_revoked',
        reason: 'reuse_detected',
        sessionId: state.session.id,
        userId: state.session.userId,
        count: 1,
      });
    throw invalidGrant('Refresh token reuse detected; the session has been revoked');
  }

  async function findOwnedState(
    refreshToken: unknown,
  ): Promise<{ state: RefreshTokenState; secret: Buffer } | null> {
    const parsed = parseRefreshToken(refreshToken);
    if (!parsed) return null;
    const state = await store.findRefreshToken(parsed.id);
    if (!state || !secretMatches(parsed.secret, state.token.secretHash)) return null;
    return { state, secret: parsed.secret };
  }

  const service = {
    issuer,
    config: Object.freeze({ ...cfg, issuer }),
    keys,
    now,

    /** Creates the first signing key and the default public client when missing. */
    async init(): Promise<void> {
      await keys.init();
      await store.createClient(
        {
          id: DEFAULT_CLIENT_ID,
          name: 'Default public client',
          type: 'public',
          secretHash: null,
          allowedOrigins: [],
          allowedScopes: [],
          audience: null,
          accessTtl: null,
          refreshIdleTtl: null,
          sessionMaxTtl: null,
          createdAt: now(),
        },
        { ifMissing: true },
      );
    },

    findClient,

    /** Creates an account. */
    async register(input: { email: string; password: string }): Promise<PublicUser> {
      const email = normalizeEmail(input.email);
      const password = assertAcceptablePassword(input.password);
      const passwordHash = await hashPassword(password);
      const user = await store.createUser({ id: newId('usr'), email, passwordHash, createdAt: now() });
      return toPublicUser(user);
    },

    /**
     * The device a presented device token stands for, or null for anything
     * else (absent, malformed, unknown, wrong secret, unused for longer than
     * the device lifetime). Costs no query unless the value is well-formed.
     * Which account it belongs to is for the caller to compare: a device only
     * counts on a login to its own account.
     */
    async findTrustedDevice(deviceToken: unknown): Promise<TrustedDevice | null> {
      const parsed = parseDeviceToken(deviceToken);
      if (!parsed) return null;
      const found = await store.findTrustedDevice(parsed.id);
      if (!found || !secretMatches(parsed.secret, found.device.secretHash)) return null;
      if (found.device.lastUsedAt + DEVICE_TTL_MS <= now()) return null;
      return {
        id: found.device.id,
        userId: found.device.userId,
        email: found.email,
        token: deviceToken as string,
      };
    },

    /**
     * First-party login: checks the password and starts a new session (a new
     * token family; nothing from before is reused). Unknown user, wrong
     * password and disabled account fail identically, after the same work.
     *
     * A confidential client (a trusted backend) may log a user in only after
     * it has authenticated (`clientAuthenticated`, checked by the caller);
     * its session can then only be refreshed by that client, authenticated.
     */
    async login(
      input: {
        email: string;
        password: string;
        clientId?: string;
        scope?: string;
        clientAuthenticated?: boolean;
        /** A device token the caller found valid; reused when it is this user's, else a new one is minted. */
        device?: TrustedDevice | null;
      } & RequestContext,
    ): Promise<LoginResult> {
      const clientId = input.clientId ?? DEFAULT_CLIENT_ID;
      const client = await findClient(clientId);
      if (!client) throw new BatonError('invalid_request', 'Unknown client_id');
      if (client.type !== 'public' && input.clientAuthenticated !== true) {
        throw new BatonError(
          'unauthorized_client',
          'A confidential client must authenticate (client_secret_basic or client_secret_post) to log users in',
        );
      }
      let email: string | null = null;
      try {
        email = normalizeEmail(input.email);
      } catch {
        email = null;
      }
      const user = email ? await store.findUserByEmail(email) : null;
      const ok = await verifyPassword(user?.passwordHash ?? null, input.password);
      if (!user || !ok || user.disabledAt !== null) {
        emit({ kind: 'login', outcome: 'failure', clientId, ...(user ? { userId: user.id } : {}) });
        throw new BatonError('invalid_credentials', 'Invalid email or password');
      }
      const scope =
        input.scope === undefined ? null : narrowScope(client.allowedScopes.join(' ') || null, input.scope);
      const t = now();
      const expiresAt = t + (client.sessionMaxTtl ?? cfg.sessionMaxTtl);
      const session: SessionRecord = {
        id: newId('ses'),
        userId: user.id,
        clientId,
        scope,
        createdAt: t,
        lastUsedAt: t,
        idleExpiresAt: Math.min(t + (client.refreshIdleTtl ?? cfg.refreshIdleTtl), expiresAt),
        expiresAt,
        userAgent: input.userAgent?.slice(0, 512) ?? null,
        ip: input.ip ?? null,
        revokedAt: null,
        revokedReason: null,
      };
      const rt = newRefreshToken();
      await store.createSession({ session, firstToken: { id: rt.id, secretHash: rt.hash } });
      // This success is the proof the device token records: keep the device's
      // token when it is already this user's, else remember a new device.
      let device: { id: string; token: string };
      if (input.device && input.device.userId === user.id) {
        await store.touchTrustedDevice({ id: input.device.id, now: t });
        device = input.device;
      } else {
        const minted = newDeviceToken();
        await store.addTrustedDevice({
          id: minted.id,
          userId: user.id,
          secretHash: minted.hash,
          createdAt: t,
          lastUsedAt: t,
        });
        device = minted;
      }
      emit({ kind: 'login', outcome: 'success', userId: user.id, clientId });
      return {
        ...issue(session, client, rt.token, scope, t),
        deviceToken: device.token,
        deviceId: device.id,
      };
    },

    /**
     * Trades a refresh token for a new pair, rotating it.
     *
     * 1. unknown, malformed, expired or revoked → `invalid_grant`;
     * 2. current → mark used, issue the successor;
     * 3. already used within the grace window, successor unused → the same
     *    successor again (concurrent tabs do not sign each other out);
     * 4. otherwise → reuse: revoke the whole session, `invalid_grant`.
     *
     * `clientId`, when the caller authenticated or named a client, must be
     * the session's. A confidential client's session is refreshed only with
     * `clientAuthenticated` (RFC 6749 §6: the client MUST authenticate).
     * `scope` narrows the new access token's scope.
     * @see RFC 6749 §6, RFC 9700 §4.14.2
     */
    async refresh(
      input: {
        refreshToken: unknown;
        clientId?: string;
        clientAuthenticated?: boolean;
        scope?: string;
      } & RequestContext,
    ): Promise<IssuedTokens & { outcome: RefreshOutcome }> {
      const fail = (description: string, sessionId?: string): never => {
        emit({ kind: 'refresh', outcome: 'invalid', ...(sessionId ? { sessionId } : {}) });
        throw invalidGrant(description);
      };
      const parsed = parseRefreshToken(input.refreshToken);
      if (!parsed) return fail('The refresh token is malformed');
      let state = await store.findRefreshToken(parsed.id);
      // A wrong secret for a real id is a guess or a corrupted token, not a replay: refuse without revoking.
      if (!state || !secretMatches(parsed.secret, state.token.secretHash))
        return fail('The refresh token is invalid');
      if (input.clientId !== undefined && input.clientId !== state.session.clientId) {
        return fail('The refresh token was issued to another client', state.session.id);
      }
      const client = await clientOf(state.session);
      if (
        client.type === 'confidential' &&
        (input.clientAuthenticated !== true || input.clientId !== client.id)
      ) {
        // A stolen token of a confidential client is useless without its secret: refuse before rotating.
        emit({ kind: 'refresh', outcome: 'invalid', sessionId: state.session.id });
        throw new BatonError(
          'unauthorized_client',
          'This refresh token belongs to a confidential client: refresh it at /oauth/token with client authentication',
        );
      }
      const scope = narrowScope(state.session.scope, input.scope);

      const t = now();
      const dead = liveness(state.session, t);
      if (dead) return fail(dead, state.session.id);

      if (state.token.usedAt === null) {
        const successor = deriveSuccessor(parsed.secret, newRefreshTokenId());
        const idleExpiresAt = Math.min(
          t + (client.refreshIdleTtl ?? cfg.refreshIdleTtl),
          state.session.expiresAt,
        );
        const rotation = await store.rotateRefreshToken({
          parentId: state.token.id,
          successor: { id: successor.id, secretHash: successor.hash },
          now: t,
          idleExpiresAt,
        });
        if (rotation.outcome === 'rotated') {
          emit({ kind: 'refresh', outcome: 'rotated', sessionId: state.session.id, clientId: client.id });
          const session = { ...state.session, lastUsedAt: t, idleExpiresAt };
          return { ...issue(session, client, successor.token, scope, t), outcome: 'rotated' };
        }
        // Lost the race to a concurrent rotation (or a revocation): the store
        // says what it found, so decide once from that.
        if (!rotation.state) return fail('The refresh token is invalid');
        state = rotation.state;
        const ended = liveness(state.session, t);
        if (ended) return fail(ended, state.session.id);
      }

      const usedAt = state.token.usedAt;
      if (usedAt === null) return fail('The refresh token is invalid', state.session.id);
      const successor = state.successor;
      const withinGrace = t - usedAt <= cfg.reuseGrace;
      if (withinGrace && successor && successor.usedAt === null) {
        const again = deriveSuccessor(parsed.secret, successor.id);
        // The stored hash proves the derivation matches what was issued.
        if (again.hash !== successor.secretHash)
          return fail('The refresh token is invalid', state.session.id);
        emit({
          kind: 'refresh',
          outcome: 'grace_replay',
          sessionId: state.session.id,
          clientId: client.id,
        });
        return { ...issue(state.session, client, again.token, scope, t), outcome: 'grace_replay' };
      }
      return reuseDetected(state, t, input);
    },

    /**
     * Ends the session a refresh token belongs to (logout, RFC 7009
     * revocation). Unknown or garbage tokens are not an error: returns null.
     */
    async revokeRefreshToken(
      refreshToken: unknown,
      reason: 'logout' | 'token_revoked' = 'logout',
    ): Promise<SessionRecord | null> {
      const found = await findOwnedState(refreshToken);
      if (!found) return null;
      const revoked = await store.revokeSession({ sessionId: found.state.session.id, reason, now: now() });
      if (revoked)
        emit({
          kind: 'session_revoked',
          reason,
          sessionId: found.state.session.id,
          userId: found.state.session.userId,
          count: 1,
        });
      return found.state.session;
    },

    /**
     * What a genuine refresh token (any generation) refers to: its row, its
     * session, and whether it would refresh now (the session's current token,
     * session alive). Null for unknown, garbage or forged tokens.
     */
    async refreshTokenInfo(
      refreshToken: unknown,
    ): Promise<{ session: SessionRecord; token: RefreshTokenRecord; active: boolean } | null> {
      const found = await findOwnedState(refreshToken);
      if (!found) return null;
      const { session, token } = found.state;
      return { session, token, active: token.usedAt === null && liveness(session, now()) === null };
    },

    /**
     * Verifies an access token and, unless `checkSession` is false, that its
     * session is still alive, so logout and revocation bite at once on
     * Baton's own routes. Throws `invalid_token`.
     */
    async authenticate(
      accessToken: string,
      opts: { checkSession?: boolean; audiences?: readonly string[] } = {},
    ): Promise<Authenticated> {
      const t = now();
      // A kid we have not seen may belong to a key another instance created a
      // moment ago: reload once (rate-limited in the key ring, so a flood of
      // made-up kids cannot become a flood of store reads).
      const decoded = decodeAccessToken(accessToken);
      if (!keys.find(decoded.kid, t)) await keys.reloadForUnknownKid();
      const claims = verifyAccessToken(decoded, {
        keys,
        issuer,
        audiences: opts.audiences ?? [issuer],
        now: t,
        ...(options.leeway !== undefined ? { leeway: options.leeway } : {}),
      });
      const session = await store.findSession(claims.sid);
      if (!session || session.userId !== claims.sub)
        throw new BatonError('invalid_token', 'The session of this token is unknown');
      if (opts.checkSession !== false) {
        const dead = liveness(session, t);
        if (dead) throw new BatonError('invalid_token', dead);
      }
      return { claims, session };
    },

    async getUser(userId: string): Promise<PublicUser | null> {
      const u = await store.findUserById(userId);
      return u ? toPublicUser(u) : null;
    },

    /** Live sessions of a user, newest first. */
    listSessions(userId: string): Promise<SessionRecord[]> {
      return store.listActiveSessions(userId, now());
    },

    /** Revokes one of the user's own sessions; `not_found` for anyone else's. */
    async revokeUserSession(userId: string, sessionId: string): Promise<void> {
      const session = await store.findSession(sessionId);
      if (!session || session.userId !== userId || session.revokedAt !== null) {
        throw new BatonError('not_found', 'No such session');
      }
      await store.revokeSession({ sessionId, reason: 'revoked_by_user', now: now() });
      emit({ kind: 'session_revoked', reason: 'revoked_by_user', sessionId, userId, count: 1 });
    },

    /** Revokes one session by id, whoever owns it (logout by access token, admin). */
    async revokeSession(sessionId: string, reason: 'logout' | 'token_revoked' | 'admin'): Promise<boolean> {
      const revoked = await store.revokeSession({ sessionId, reason, now: now() });
      if (revoked) emit({ kind: 'session_revoked', reason, sessionId, count: 1 });
      return revoked;
    },

    /** Revokes every session of a user. */
    async logoutAll(userId: string): Promise<number> {
      const count = await store.revokeUserSessions({ userId, reason: 'logout_all', now: now() });
      emit({ kind: 'session_revoked', reason: 'logout_all', userId, count });
      return count;
    },

    /**
     * Changes a password after checking the current one; every other session
     * of the user is revoked in the same transaction.
     */
    async changePassword(input: {
      userId: string;
      sessionId: string | null;
      currentPassword: string;
      newPassword: string;
      ip?: string | null;
    }): Promise<void> {
      const user = await store.findUserById(input.userId);
      const ok = await verifyPassword(user?.passwordHash ?? null, input.currentPassword);
      if (!user || !ok) throw new BatonError('access_denied', 'The current password is wrong');
      const password = assertAcceptablePassword(input.newPassword, 'new_password');
      const passwordHash = await hashPassword(password);
      const t = now();
      const count = await store.changePassword({
        userId: user.id,
        passwordHash,
        now: t,
        keepSessionId: input.sessionId,
        event: {
          type: 'password_changed',
          at: t,
          userId: user.id,
          sessionId: input.sessionId,
          ip: input.ip ?? null,
        },
      });
      emit({ kind: 'session_revoked', reason: 'password_changed', userId: user.id, count });
    },

    /** The JWKS to publish. @see RFC 7517 §5 */
    jwks(): { keys: PublicJwk[] } {
      return keys.jwks(now());
    },
  };
  return service;
}
