import type { SessionRecord, UserRecord } from '../store/store.js';
import type { AccessTokens, IssuedTokens } from './access-tokens.js';
import type { AuthenticatedClient } from './clients.js';
import { type CoreContext, narrowScope, type RequestContext } from './context.js';
import type { Devices } from './devices.js';
import type { Dpop, DpopInput, VerifiedDpop } from './dpop.js';
import { normalizeEmail } from './email-address.js';
import { BatonError, isBatonError } from './errors.js';
import { newId } from './ids.js';
import type { LoginLimiter } from './login-limiter.js';
import { assertAcceptablePassword, hashPassword, verifyPassword } from './passwords.js';
import { newRefreshToken } from './refresh-token.js';
import { assertNoControlCharacters } from './text-input.js';

/** The public client every installation has; `/auth/login` uses it unless told otherwise. */
export const DEFAULT_CLIENT_ID = 'app';

/** A user as the API shows it. */
export interface PublicUser {
  id: string;
  email: string;
  createdAt: number;
}

/** A user as an operator sees it (`baton users list`). */
export interface AdminUser extends PublicUser {
  disabledAt: number | null;
}

/** What a successful login returns: the tokens and the device token to keep. */
export interface LoginResult extends IssuedTokens {
  /** `bdv_…`: proves this device's successful login; the presented one when it was already trusted. */
  deviceToken: string;
  deviceId: string;
}

/** Input of {@link Accounts.login}. */
export interface LoginInput extends RequestContext {
  email: string;
  password: string;
  /** The client that authenticated with its credentials (a confidential client: a trusted backend). */
  client?: AuthenticatedClient;
  /** A public client named without credentials; default {@link DEFAULT_CLIENT_ID}. */
  clientId?: string;
  scope?: string;
  /** The device token the request presented, if any, as it came: anything not genuine counts as none. */
  deviceToken?: unknown;
  /** The request's `DPoP` header, if it had one: a valid proof binds a public client's session to its key. */
  dpop?: DpopInput;
}

/** Accounts: registration, the login policy, passwords, and the operator's switches. */
export interface Accounts {
  /** Creates an account. */
  register(input: { email: string; password: string }): Promise<PublicUser>;
  /**
   * First-party login, with the whole login policy: the device's trust, the
   * failure limits, the password check, a new session (a new token family;
   * nothing from before is reused). Unknown user, wrong password and
   * disabled account fail identically (`invalid_credentials`), after the
   * same work.
   *
   * A confidential client may log a user in only as an
   * {@link AuthenticatedClient}; its session can then only be refreshed by
   * that client, authenticated.
   */
  login(input: LoginInput): Promise<LoginResult>;
  /**
   * Changes a password after checking the current one (counted like a login
   * attempt on the user's id); every other session of the user is revoked
   * in the same transaction.
   */
  changePassword(input: {
    userId: string;
    sessionId: string | null;
    currentPassword: string;
    newPassword: string;
    ip?: string | null;
  }): Promise<void>;
  /** The user with this id, or null. */
  getUser(userId: string): Promise<PublicUser | null>;
  /** A user by id (`usr_…`) or email; `not_found` otherwise. */
  findUser(ref: string): Promise<AdminUser>;
  /** Accounts, for operators. */
  listUsers(opts: { limit: number }): Promise<AdminUser[]>;
  /** Disables an account and revokes every session of it at once (the operator's kill switch). */
  disableUser(userId: string): Promise<void>;
  /** Re-enables a disabled account; its old sessions stay revoked. */
  enableUser(userId: string): Promise<void>;
}

export { normalizeEmail } from './email-address.js';

const toPublicUser = (u: UserRecord): PublicUser => ({ id: u.id, email: u.email, createdAt: u.createdAt });
const toAdminUser = (u: UserRecord): AdminUser => ({ ...toPublicUser(u), disabledAt: u.disabledAt });

/** Creates the accounts part of the service. */
export function createAccounts(
  ctx: CoreContext,
  deps: {
    tokens: AccessTokens;
    devices: Devices;
    limiter: LoginLimiter;
    maxSessionsPerUser: number;
    dpop: Dpop;
  },
): Accounts {
  const { store, now, cfg, emit, findClient } = ctx;
  const { tokens, devices, limiter, maxSessionsPerUser, dpop } = deps;

  /**
   * The password check and the new session, once the policy let the attempt
   * through. `superseded` when the password was right but the account was
   * disabled or its password changed while Argon2 ran.
   */
  async function startSession(
    input: LoginInput,
    device: Awaited<ReturnType<Devices['trustedFor']>>,
    proof: VerifiedDpop | undefined,
  ): Promise<LoginResult | 'superseded'> {
    const clientId = input.client?.id ?? input.clientId ?? DEFAULT_CLIENT_ID;
    const client = await findClient(clientId);
    if (!client) throw new BatonError('invalid_request', 'Unknown client_id');
    if (client.type !== 'public' && input.client === undefined) {
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
    const context = { clientId, ip: input.ip ?? null };
    const userAgent = input.userAgent?.slice(0, 512) ?? null;
    if (!user || !ok || user.disabledAt !== null) {
      // On record, never in the answer: the caller sees the same refusal whatever the reason.
      const reason = !user ? 'unknown_account' : !ok ? 'wrong_password' : 'disabled';
      await store.recordSecurityEvent({
        type: 'login_failed',
        at: now(),
        userId: user?.id ?? null,
        ...context,
        detail: { reason, userAgent },
      });
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
      userAgent,
      ip: input.ip ?? null,
      revokedAt: null,
      revokedReason: null,
      // RFC 9449 §5: a confidential client's tokens are sender-constrained by its own authentication.
      ...(proof && client.type === 'public' ? { dpopJkt: proof.jkt } : {}),
    };
    const rt = newRefreshToken();
    // This success is the proof the device token records, written with the session.
    const deviceProof = devices.proofOfLogin(user.id, device);
    // Conditional on the account as it was verified: an operator's disable or a
    // password change that committed during Argon2 wins over this login.
    // The cap is enforced in the same transaction: a flood of logins cannot pile
    // up sessions, and the oldest (least recently used) make way for the new one.
    const { created, evicted } = await store.createSession({
      session,
      firstToken: { id: rt.id, secretHash: rt.hash },
      verifiedPasswordHash: user.passwordHash,
      event: {
        type: 'login_succeeded',
        at: t,
        userId: user.id,
        sessionId: session.id,
        ...context,
        detail: { userAgent },
      },
      device: deviceProof.write,
      sessionLimit: {
        max: maxSessionsPerUser,
        event: {
          type: 'session_revoked',
          at: t,
          userId: user.id,
          clientId,
          ip: input.ip ?? null,
          detail: { reason: 'session_limit', by: 'system', limit: maxSessionsPerUser },
        },
      },
    });
    if (!created) {
      await store.recordSecurityEvent({
        type: 'login_failed',
        at: t,
        userId: user.id,
        ...context,
        detail: { reason: 'superseded', userAgent },
      });
      emit({ kind: 'login', outcome: 'failure', clientId, userId: user.id });
      return 'superseded';
    }
    if (evicted.length > 0)
      emit({ kind: 'session_revoked', reason: 'session_limit', userId: user.id, count: evicted.length });
    emit({ kind: 'login', outcome: 'success', userId: user.id, clientId });
    return {
      ...tokens.issue(session, client, rt.token, scope, t),
      deviceToken: deviceProof.kept.token,
      deviceId: deviceProof.kept.id,
    };
  }

  return {
    async register(input) {
      const email = normalizeEmail(input.email);
      const password = assertAcceptablePassword(input.password);
      const passwordHash = await hashPassword(password);
      const user = await store.createUser({ id: newId('usr'), email, passwordHash, createdAt: now() });
      return toPublicUser(user);
    },

    async login(input) {
      // Before any store call: PostgreSQL cannot even look a NUL up.
      assertNoControlCharacters(input.email.trim(), 'email');
      if (input.clientId !== undefined) assertNoControlCharacters(input.clientId, 'client_id');
      if (input.scope !== undefined) assertNoControlCharacters(input.scope, 'scope');
      // Every spelling of one address shares one failure budget, or a look-alike spelling buys fresh tries.
      let account: string;
      try {
        account = normalizeEmail(input.email);
      } catch {
        account = input.email.trim().toLowerCase();
      }
      const ip = input.ip ?? 'unknown';
      // A device that logged in to this very account before is counted on its
      // own bucket, so an attacker's failures cannot lock its owner out. Looked
      // up by the token's id, then compared with the email typed.
      // The proof is checked before any password work: a bad one costs the caller a 400, not an attempt.
      const proof = input.dpop ? await dpop.verify(input.dpop) : undefined;
      const device = await devices.trustedFor(input.deviceToken, account);
      await limiter.assertLoginAllowed(account, ip, device?.id);
      let result: LoginResult | 'superseded';
      try {
        result = await startSession(input, device, proof);
      } catch (err) {
        if (isBatonError(err, 'invalid_credentials')) await limiter.loginFailed(account, ip, device?.id);
        throw err;
      }
      // The caller's password was right; the account changed under it. Refused
      // exactly like a wrong password, but not counted: it was no guess.
      if (result === 'superseded') throw new BatonError('invalid_credentials', 'Invalid email or password');
      await limiter.loginSucceeded(account, device?.id);
      return result;
    },

    async changePassword(input) {
      // The new password is judged first: were it judged after the current one, a 400 would
      // confirm a correct guess of the current password without counting it as a failure.
      const password = assertAcceptablePassword(input.newPassword, 'new_password');
      const ip = input.ip ?? 'unknown';
      // Guessing the current password through a stolen access token is a login attempt like any other.
      await limiter.assertLoginAllowed(input.userId, ip);
      const user = await store.findUserById(input.userId);
      const ok = await verifyPassword(user?.passwordHash ?? null, input.currentPassword);
      if (!user || !ok) {
        await limiter.loginFailed(input.userId, ip);
        throw new BatonError('access_denied', 'The current password is wrong');
      }
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
          detail: { by: 'user' },
        },
      });
      emit({ kind: 'session_revoked', reason: 'password_changed', userId: user.id, count });
    },

    async getUser(userId) {
      const u = await store.findUserById(userId);
      return u ? toPublicUser(u) : null;
    },

    async findUser(ref) {
      const user = ref.startsWith('usr_')
        ? await store.findUserById(ref)
        : await store.findUserByEmail(normalizeEmail(ref));
      if (!user) throw new BatonError('not_found', 'No such user');
      return toAdminUser(user);
    },

    async listUsers(opts) {
      return (await store.listUsers(opts)).map(toAdminUser);
    },

    async disableUser(userId) {
      const t = now();
      // Counted before: the store revokes them in the same step as the switch.
      const live = await store.listActiveSessions(userId, t);
      await store.setUserDisabled({
        userId,
        disabled: true,
        now: t,
        event: {
          type: 'user_disabled',
          at: t,
          userId,
          detail: { by: 'admin', sessionsRevoked: live.length },
        },
      });
      emit({ kind: 'session_revoked', reason: 'user_disabled', userId, count: live.length });
    },

    async enableUser(userId) {
      const t = now();
      await store.setUserDisabled({
        userId,
        disabled: false,
        now: t,
        event: { type: 'user_enabled', at: t, userId, detail: { by: 'admin' } },
      });
    },
  };
}
