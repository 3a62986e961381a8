import type { RefreshTokenRecord, RefreshTokenState, SessionRecord } from '../store/store.js';
import type { AccessTokens, IssuedTokens } from './access-tokens.js';
import { type AuthenticatedClient, issuedAudiences } from './clients.js';
import { toEpochSeconds } from './clock.js';
import {
  type CoreContext,
  invalidGrant,
  liveness,
  narrowScope,
  type RefreshOutcome,
  type RequestContext,
} from './context.js';
import type { Dpop, DpopInput } from './dpop.js';
import { BatonError, isBatonError } from './errors.js';
import type { InactiveToken, IntrospectionResult } from './introspection-result.js';
import { deriveSuccessor, newRefreshTokenId, parseRefreshToken, secretMatches } from './refresh-token.js';
import { revocationEvent } from './revocation-event.js';
import { decodeSessionCursor, encodeSessionCursor } from './session-cursor.js';
import { createSenderChecks } from './session-sender.js';
import { assertNoControlCharacters } from './text-input.js';

/** Sessions per page of {@link Sessions.listSessionsPage}: the default, and the most one page may hold. */
export const SESSION_PAGE = Object.freeze({ default: 50, max: 100 });

/** One page of a user's live sessions. */
export interface SessionsPage {
  sessions: SessionRecord[];
  /** Continues the listing after this page; null on the last page. */
  nextCursor: string | null;
}

export type { ActiveToken, InactiveToken, IntrospectionResult } from './introspection-result.js';

/** What {@link Sessions.revokeToken} did. */
export type RevocationOutcome = 'revoked' | 'already_revoked' | 'unknown';

/** What a genuine refresh token (any generation) refers to. */
export interface RefreshTokenInfo {
  session: SessionRecord;
  token: RefreshTokenRecord;
  /** Whether it would refresh now: the session's current token, session alive. */
  active: boolean;
}

/** Input of {@link Sessions.refresh}. */
export interface RefreshInput extends RequestContext {
  refreshToken: unknown;
  /** The client that authenticated for this request (`/oauth/token`); none on the first-party routes. */
  client?: AuthenticatedClient;
  /** Narrows the new access token's scope. */
  scope?: string;
  /** The request's `DPoP` header, if it had one (RFC 9449 §5). Verified here; a bad one is refused. */
  dpop?: DpopInput;
}

/**
 * Who asks to end a session by a refresh token (logout, RFC 7009 revocation):
 * where the request came from, and its `DPoP` header, if it had one.
 */
export interface EndSessionInput extends RequestContext {
  /** Verified here whenever sent; a DPoP-bound session ends only with a proof by its key (RFC 9449 §5). */
  dpop?: DpopInput;
}

/** Sessions: rotation, revocation (by the user, an operator, RFC 7009), introspection. */
export interface Sessions {
  /**
   * Trades a refresh token for a new pair, rotating it.
   *
   * 1. unknown, malformed, expired or revoked → `invalid_grant`;
   * 2. current → mark used, issue the successor;
   * 3. already used within the grace window, successor unused → the same
   *    successor again (concurrent tabs do not sign each other out);
   * 4. otherwise → reuse: revoke the whole session, `invalid_grant`.
   *
   * A DPoP-bound session (RFC 9449 §5) refreshes only with a valid proof by
   * its key; without one, or with another key's, the request is refused
   * (`invalid_grant`) and recorded as a security event, and nothing is
   * revoked. For it rule 3 has no time limit: a used token whose successor
   * is unused gets that successor again at any age. A proof presented for
   * an unbound session is verified but does not bind it.
   *
   * `client`, when the request authenticated one, must be the session's. A
   * confidential client's session is refreshed only by that client,
   * authenticated with its secret (RFC 6749 §6: the client MUST
   * authenticate). `scope` narrows the new access token's scope.
   * @see RFC 6749 §6, RFC 9700 §4.14.2
   */
  refresh(input: RefreshInput): Promise<IssuedTokens & { outcome: RefreshOutcome }>;
  /**
   * Ends the session a refresh token belongs to (logout). Unknown or garbage
   * tokens are not an error. A confidential client's session is ended only
   * for that client, authenticated, as at the revocation endpoint: without
   * client authentication `invalid_client` (the client must authenticate,
   * RFC 7009 §2.1 and RFC 6749 §5.2), by another client `unauthorized_client`
   * (the token was not issued to it); either way nothing is revoked.
   *
   * A live DPoP-bound session ends only with a proof by its key, as it
   * refreshes only with one: without it, or with another key's, the request
   * is refused (`invalid_dpop_proof`) and recorded as a security event, and
   * the session lives on, so a thief who copied the token but not the key
   * cannot sign its owner out. A proof that is sent is verified (and its
   * `jti` spent) whatever the token; for an unbound session a valid one
   * changes nothing.
   * @see RFC 7009 §2.1, RFC 9449 §5
   */
  revokeRefreshToken(
    refreshToken: unknown,
    client?: AuthenticatedClient,
    input?: EndSessionInput,
  ): Promise<void>;
  /** What a genuine refresh token refers to; null for unknown, garbage or forged tokens. */
  refreshTokenInfo(refreshToken: unknown): Promise<RefreshTokenInfo | null>;
  /** Live sessions of a user, newest first. */
  listSessions(userId: string): Promise<SessionRecord[]>;
  /**
   * One page of {@link Sessions.listSessions}: `limit` an integer from 1 to
   * {@link SESSION_PAGE}.max (default {@link SESSION_PAGE}.default), `cursor`
   * the `nextCursor` of the previous page. A bad limit or cursor is
   * `invalid_request`. Stable under ties in last use: a walk over an
   * unchanging list sees every session exactly once.
   */
  listSessionsPage(userId: string, opts?: { limit?: unknown; cursor?: unknown }): Promise<SessionsPage>;
  /** Revokes one of the user's own sessions; `not_found` for anyone else's. */
  revokeUserSession(userId: string, sessionId: string): Promise<void>;
  /** Revokes one session by id, whoever owns it (logout by access token, an operator); false when it was not live. */
  revokeSession(sessionId: string, reason: 'logout' | 'admin'): Promise<boolean>;
  /** Revokes every session of a user: `logout_all` by the user, `admin` by an operator. Returns how many. */
  logoutAll(userId: string, reason?: 'logout_all' | 'admin'): Promise<number>;
  /**
   * Introspects a token for a confidential client (a resource server).
   * Refresh tokens (`brt_…`) and access tokens (JWTs) have disjoint
   * formats, so the `token_type_hint` is not needed to find either.
   *
   * A refresh token is active while it is its session's current one and the
   * session is alive. An access token is active while its signature, issuer,
   * audience (any the server issues for) and expiry check out *and* its
   * session is alive: a revoked session makes its unexpired access tokens
   * inactive at once, which local JWT verification alone cannot do.
   * @see RFC 7662 §2.1, §2.2
   */
  introspect(token: string, client: AuthenticatedClient): Promise<IntrospectionResult>;
  /**
   * Revokes a token on behalf of the client it was issued to.
   *
   * - A refresh token (any generation) ends its whole session.
   * - An access token ends its session too: Baton's access tokens are
   *   stateless JWTs that cannot be revoked one by one, and a session whose
   *   access token had to be revoked should not keep refreshing. Verifiers
   *   that check only the JWT accept it until it expires; introspection and
   *   Baton's own routes refuse it at once.
   * - Unknown, malformed, expired or foreign-issuer tokens are not an error
   *   (RFC 7009 §2.2: the client could not act on one): `unknown`.
   * - A genuine token issued to another client is refused
   *   (`unauthorized_client`), as RFC 7009 §2.1 requires.
   *
   * - A refresh token of a live DPoP-bound session needs a proof by the
   *   session's key, as in {@link Sessions.revokeRefreshToken}; access
   *   tokens are not bound and need none.
   *
   * The formats of refresh and access tokens are disjoint, so
   * `token_type_hint` is not needed to find either (§2.1 makes it a hint only).
   * @see RFC 7009 §2.1, §2.2, RFC 9449 §5
   */
  revokeToken(
    token: string,
    client: AuthenticatedClient,
    input?: EndSessionInput,
  ): Promise<RevocationOutcome>;
}

const INACTIVE: InactiveToken = Object.freeze({ active: false });

/** Creates the sessions part of the service. */
export function createSessions(core: CoreContext, tokens: AccessTokens, dpop: Dpop): Sessions {
  const { store, now, cfg, emit, issuer } = core;
  const issue = tokens.issue;
  const { wrongSender, assertMayEnd } = createSenderChecks(core);

  async function clientOf(session: SessionRecord) {
    const client = await core.findClient(session.clientId);
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
        detail: {
          usedAt: state.token.usedAt,
          successorUsed: state.successor?.usedAt != null,
          userAgent: ctx.userAgent?.slice(0, 512) ?? null,
        },
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

  /** Revokes a session and tells the observers, once, when it really ended now. */
  async function endSession(
    session: { id: string; userId?: string },
    reason: 'logout' | 'admin' | 'token_revoked',
  ) {
    const t = now();
    const revoked = await store.revokeSession({
      sessionId: session.id,
      reason,
      now: t,
      event: revocationEvent(t, reason, { sessionId: session.id, userId: session.userId ?? null }),
    });
    if (revoked)
      emit({
        kind: 'session_revoked',
        reason,
        sessionId: session.id,
        ...(session.userId !== undefined ? { userId: session.userId } : {}),
        count: 1,
      });
    return revoked;
  }

  const sessions: Sessions = {
    async refresh(input) {
      const fail = (description: string, sessionId?: string): never => {
        emit({ kind: 'refresh', outcome: 'invalid', ...(sessionId ? { sessionId } : {}) });
        throw invalidGrant(description);
      };
      const parsed = parseRefreshToken(input.refreshToken);
      if (!parsed) return fail('The refresh token is malformed');
      // A proof that was sent is checked (and its jti spent) whatever the session: a bad one is a 400.
      const proof = input.dpop ? await dpop.verify(input.dpop) : undefined;
      // Memory may answer: whatever it says, the rotation below re-checks in the database (see the Store).
      let state = await store.findRefreshTokenToRotate(parsed.id);
      // A wrong secret for a real id is a guess or a corrupted token, not a replay: refuse without revoking.
      if (!state || !secretMatches(parsed.secret, state.token.secretHash))
        return fail('The refresh token is invalid');
      if (input.client !== undefined && input.client.id !== state.session.clientId) {
        return fail('The refresh token was issued to another client', state.session.id);
      }
      const client = await clientOf(state.session);
      if (
        client.type === 'confidential' &&
        (input.client === undefined || input.client.method === 'none' || input.client.id !== client.id)
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
      // Never bound late: a thief could bind a stolen token to a key of its own.
      const bound = state.session.dpopJkt !== undefined;
      if (bound && proof?.jkt !== state.session.dpopJkt) return wrongSender(state, proof, t, input);

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
      // A bound session's proof tells its holder from a thief, so a lost response is recovered at any age.
      const withinGrace = bound || t - usedAt <= cfg.reuseGrace;
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

    async revokeRefreshToken(refreshToken, client, input = {}) {
      // A proof that was sent is checked (and its jti spent) whatever the token: a bad one is a 400.
      const proof = input.dpop ? await dpop.verify(input.dpop) : undefined;
      const found = await findOwnedState(refreshToken);
      if (!found) return;
      const { session } = found.state;
      if (client !== undefined && client.id !== session.clientId)
        throw new BatonError('unauthorized_client', 'The token was not issued to this client');
      // A leaked refresh token of a trusted backend must not let anyone end its user's session.
      const owner = await core.findClient(session.clientId);
      if (owner?.type === 'confidential' && (client === undefined || client.method === 'none'))
        throw new BatonError(
          'invalid_client',
          'This refresh token belongs to a confidential client: authenticate the client to revoke it',
        );
      await assertMayEnd(session, proof, input, 'logout');
      await endSession(session, 'logout');
    },

    async refreshTokenInfo(refreshToken) {
      const found = await findOwnedState(refreshToken);
      if (!found) return null;
      const { session, token } = found.state;
      return { session, token, active: token.usedAt === null && liveness(session, now()) === null };
    },

    listSessions(userId) {
      return store.listActiveSessions(userId, now());
    },

    async listSessionsPage(userId, opts = {}) {
      const limit = opts.limit ?? SESSION_PAGE.default;
      if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1 || limit > SESSION_PAGE.max)
        throw new BatonError('invalid_request', `limit must be an integer from 1 to ${SESSION_PAGE.max}`);
      const after = opts.cursor === undefined ? undefined : decodeSessionCursor(opts.cursor);
      // One more than asked tells whether a next page exists without a count.
      const found = await store.listActiveSessions(userId, now(), {
        limit: limit + 1,
        ...(after ? { after } : {}),
      });
      const sessions = found.slice(0, limit);
      const last = sessions.at(-1);
      return {
        sessions,
        nextCursor:
          found.length > limit && last
            ? encodeSessionCursor({ lastUsedAt: last.lastUsedAt, id: last.id })
            : null,
      };
    },

    async revokeUserSession(userId, sessionId) {
      assertNoControlCharacters(sessionId, 'session id');
      const session = await store.findSession(sessionId);
      if (!session || session.userId !== userId || session.revokedAt !== null) {
        throw new BatonError('not_found', 'No such session');
      }
      const t = now();
      await store.revokeSession({
        sessionId,
        reason: 'revoked_by_user',
        now: t,
        event: revocationEvent(t, 'revoked_by_user', { sessionId, userId }),
      });
      emit({ kind: 'session_revoked', reason: 'revoked_by_user', sessionId, userId, count: 1 });
    },

    revokeSession(sessionId, reason) {
      return endSession({ id: sessionId }, reason);
    },

    async logoutAll(userId, reason = 'logout_all') {
      const t = now();
      const count = await store.revokeUserSessions({
        userId,
        reason,
        now: t,
        event: revocationEvent(t, reason, { userId }),
      });
      emit({ kind: 'session_revoked', reason, userId, count });
      return count;
    },

    async introspect(token, client) {
      if (client.method === 'none')
        throw new BatonError('invalid_client', 'Introspection needs a confidential client’s credentials');
      if (parseRefreshToken(token)) {
        const found = await sessions.refreshTokenInfo(token);
        if (!found?.active) return INACTIVE;
        const s = found.session;
        return {
          active: true,
          ...(s.scope ? { scope: s.scope } : {}),
          client_id: s.clientId,
          sub: s.userId,
          exp: toEpochSeconds(Math.min(s.idleExpiresAt, s.expiresAt)),
          iat: toEpochSeconds(found.token.createdAt),
          iss: issuer,
          sid: s.id,
        };
      }
      if (token.split('.').length !== 3) return INACTIVE;
      try {
        const { claims } = await tokens.authenticate(token, {
          audiences: await issuedAudiences(store, issuer),
        });
        return {
          active: true,
          token_type: 'Bearer',
          ...(claims.scope ? { scope: claims.scope } : {}),
          client_id: claims.client_id,
          sub: claims.sub,
          exp: claims.exp,
          iat: claims.iat,
          iss: claims.iss,
          aud: claims.aud,
          jti: claims.jti,
          sid: claims.sid,
        };
      } catch (err) {
        // A bad token is simply inactive; a store failure is not an answer about the token.
        if (isBatonError(err, 'invalid_token')) return INACTIVE;
        throw err;
      }
    },

    async revokeToken(token, client, input = {}) {
      const notYours = () => new BatonError('unauthorized_client', 'The token was not issued to this client');
      const proof = input.dpop ? await dpop.verify(input.dpop) : undefined;
      if (parseRefreshToken(token)) {
        const found = await sessions.refreshTokenInfo(token);
        if (!found) return 'unknown';
        if (found.session.clientId !== client.id) throw notYours();
        await assertMayEnd(found.session, proof, input, 'revoke');
        return (await endSession(found.session, 'token_revoked')) ? 'revoked' : 'already_revoked';
      }
      if (token.split('.').length !== 3) return 'unknown';
      let sid: string;
      try {
        // The session is looked up whatever its state: revoking twice is fine.
        const { claims } = await tokens.authenticate(token, {
          checkSession: false,
          audiences: await issuedAudiences(store, issuer),
        });
        if (claims.client_id !== client.id) throw notYours();
        sid = claims.sid;
      } catch (err) {
        if (isBatonError(err, 'invalid_token')) return 'unknown';
        throw err;
      }
      return (await endSession({ id: sid }, 'token_revoked')) ? 'revoked' : 'already_revoked';
    },
  };
  return sessions;
}
