import type { RefreshTokenState, RotationWrite } from '../store.js';

/** How many sessions' newest tokens are kept by default: about 1 KB each, so at most about 10 MB. */
export const RECENT_TOKENS_MAX = 10_000;

/**
 * The newest token of the sessions this process refreshed last, with its
 * session, as the store last read or wrote them, so that the next refresh
 * of a busy session skips its lookup statement (on SQLite the lookup was
 * about a tenth of a refresh's instructions; bench/ANALYSIS.md).
 *
 * Only an unused token of an unrevoked session goes in. A rotation takes
 * its token out, before and after it runs, and puts the successor in;
 * revoking a session here takes its token out. An entry can still be stale
 * in one direction: another process may have used its token, revoked its
 * session or disabled its user. That is safe because the only thing done
 * with an entry is to attempt the rotation, and the rotation's conditional
 * write checks all three in the database: a stale entry ends as a conflict,
 * which reports the state read fresh, and core decides from that. It never
 * ends in tokens issued. Every other read (introspection, revocation,
 * logout, the grace replay) goes to the database.
 */
export interface RecentTokens {
  get(id: string): RefreshTokenState | undefined;
  /** Keeps a state read from the database, if it is an unused token of a live session. */
  remember(state: RefreshTokenState): void;
  /** A rotation of token `id` is about to run, or has run: its entry goes, and is returned. */
  take(id: string): RefreshTokenState | undefined;
  /** `w` rotated `parent`: its successor, with the session touched as the rotation touched it, goes in. */
  rotated(parent: RefreshTokenState, w: RotationWrite): void;
  /** The session was revoked or deleted here. */
  forgetSession(sessionId: string): void;
  /** Sessions were revoked by a rule wider than their ids (a user's, a client's). */
  forgetAll(): void;
  readonly size: number;
}

/** Creates the memory, holding at most `max` entries; the oldest goes first. */
export function createRecentTokens(max: number = RECENT_TOKENS_MAX): RecentTokens {
  const byToken = new Map<string, RefreshTokenState>();
  // A session has one unused token at a time, so one id per session.
  const bySession = new Map<string, string>();

  function drop(id: string): RefreshTokenState | undefined {
    const state = byToken.get(id);
    if (state === undefined) return undefined;
    byToken.delete(id);
    if (bySession.get(state.session.id) === id) bySession.delete(state.session.id);
    return state;
  }

  function put(state: RefreshTokenState): void {
    if (max <= 0) return;
    // Frozen, so no caller can change what the session's next refresh reads.
    Object.freeze(state.token);
    Object.freeze(state.session);
    Object.freeze(state);
    const replaced = bySession.get(state.session.id);
    if (replaced !== undefined) drop(replaced);
    byToken.set(state.token.id, state);
    bySession.set(state.session.id, state.token.id);
    // Map iteration is insertion order: the first key is the oldest entry.
    if (byToken.size > max) drop(byToken.keys().next().value as string);
  }

  return {
    get: (id) => byToken.get(id),
    remember(state) {
      if (state.token.usedAt === null && state.session.revokedAt === null) put(state);
    },
    take: drop,
    rotated(parent, w) {
      put({
        token: {
          id: w.successor.id,
          sessionId: parent.session.id,
          secretHash: w.successor.secretHash,
          parentId: parent.token.id,
          successorId: null,
          createdAt: w.now,
          usedAt: null,
        },
        session: { ...parent.session, lastUsedAt: w.now, idleExpiresAt: w.idleExpiresAt },
        successor: null,
      });
    },
    forgetSession(sessionId) {
      const id = bySession.get(sessionId);
      if (id !== undefined) drop(id);
    },
    forgetAll() {
      byToken.clear();
      bySession.clear();
    },
    get size() {
      return byToken.size;
    },
  };
}
