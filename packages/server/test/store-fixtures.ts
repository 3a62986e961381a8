import type { ClientRecord, Store } from '../src/store/store.js';

/** The instant the store tests start from. */
export const STORE_T0 = 1_800_000_000_000;

/** A public client record with no limits of its own; `extra` overrides any field. */
export function clientRecord(id: string, extra: Partial<ClientRecord> = {}): ClientRecord {
  return {
    id,
    name: id,
    type: 'public',
    secretHash: null,
    allowedOrigins: [],
    allowedScopes: [],
    audience: null,
    accessTtl: null,
    refreshIdleTtl: null,
    sessionMaxTtl: null,
    createdAt: STORE_T0,
    ...extra,
  };
}

/**
 * `n` users with one session each, of client `app` (which must exist):
 * user `usr_<i>`, session `ses_<i>`, first token `tok_<i>` with secret hash
 * `hash_<i>`, idle until T0 + 1 s, ending at T0 + 50 s. Returns the token ids.
 */
export async function openSessions(store: Store, n: number, from = 0): Promise<string[]> {
  const ids: string[] = [];
  for (let i = from; i < from + n; i++) {
    await store.createUser({
      id: `usr_${i}`,
      email: `u${i}@example.com`,
      passwordHash: 'h',
      createdAt: STORE_T0,
    });
    await store.createSession({
      session: {
        id: `ses_${i}`,
        userId: `usr_${i}`,
        clientId: 'app',
        scope: null,
        createdAt: STORE_T0,
        lastUsedAt: STORE_T0,
        idleExpiresAt: STORE_T0 + 1000,
        expiresAt: STORE_T0 + 50_000,
        userAgent: null,
        ip: null,
      },
      firstToken: { id: `tok_${i}`, secretHash: `hash_${i}` },
    });
    ids.push(`tok_${i}`);
  }
  return ids;
}

/**
 * Runs each statement that reads one user's sessions, for tests of their
 * plans: the session cap's count and its eviction (two more logins of
 * `usr_0` against a cap of one), the listing, and "log out everywhere".
 * Needs client `app` and `usr_0` with its session (`openSessions`).
 * Returns the ids the listing saw (only the newest session survives the cap).
 */
export async function readUserSessions(store: Store): Promise<string[]> {
  const login = (id: string) =>
    store.createSession({
      session: {
        id,
        userId: 'usr_0',
        clientId: 'app',
        scope: null,
        createdAt: STORE_T0 + 1,
        lastUsedAt: STORE_T0 + 1,
        idleExpiresAt: STORE_T0 + 1000,
        expiresAt: STORE_T0 + 50_000,
        userAgent: null,
        ip: null,
      },
      firstToken: { id: `tok_${id}`, secretHash: `hash_${id}` },
      sessionLimit: { max: 1 },
    });
  await login('ses_a');
  await login('ses_b');
  const listed = (await store.listActiveSessions('usr_0', STORE_T0 + 2)).map((s) => s.id);
  await store.revokeUserSessions({ userId: 'usr_0', reason: 'logout_all', now: STORE_T0 + 3 });
  return listed;
}
