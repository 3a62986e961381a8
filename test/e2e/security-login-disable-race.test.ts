// Hardening: a login in flight must not survive `baton users disable` or a
// password change. Login reads the account, spends 10-40 ms in Argon2, then
// creates the session; an operator's switch that lands inside that window
// must still win. Each round starts N correct-password logins, then disables
// the account (or changes its password) after a delay that sweeps the Argon2
// window from round to round; afterwards no login may have left a session
// that refreshes or passes /auth/me. Run on SQLite and on PostgreSQL, where
// every query is a network round trip and the interleaving is wider.
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer } from '../../packages/server/src/http/app.js';
import { createPostgresStore } from '../../packages/server/src/store/postgres/postgres-store.js';
import type { Store } from '../../packages/server/src/store/store.js';
import { ISSUER, refresh, tempStore, testClock } from '../../packages/server/test/helpers.js';
import { serviceAvailable } from './support/services.js';

const DB_URL = 'postgres://postgres@127.0.0.1:5432/test';
const PASSWORD = 'correct horse battery';
const NEW_PASSWORD = 'another horse battery';
const N = 6;
const ROUNDS = 20;

const postgresUp = await serviceAvailable('PostgreSQL', 5432);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Subject {
  app: FastifyInstance;
  store: Store;
  now: () => number;
  close(): Promise<void>;
}

function raceSuite(name: string, open: () => Promise<Subject>, enabled = true) {
  describe.runIf(enabled)(`a login in flight loses to the operator's switch (${name})`, () => {
    let s: Subject;
    beforeAll(async () => {
      s = await open();
    });
    afterAll(async () => {
      await s?.close();
    });

    /** Starts N logins, runs `interrupt` after `delay` ms, and returns the logins that succeeded. */
    async function race(email: string, delay: number, interrupt: () => Promise<void>) {
      const logins = Array.from({ length: N }, () =>
        s.app.inject({ method: 'POST', url: '/auth/login', payload: { email, password: PASSWORD } }),
      );
      await sleep(delay);
      await interrupt();
      const done = await Promise.all(logins);
      for (const res of done) expect([200, 401]).toContain(res.statusCode);
      return done.filter((r) => r.statusCode === 200).map((r) => r.json());
    }

    /** Every session a racing login returned must be dead: no refresh, no /auth/me. */
    async function expectAllDead(
      won: { access_token: string; refresh_token: string; session_id: string }[],
      userId: string,
    ) {
      for (const tokens of won) {
        const r = await refresh(s.app, tokens.refresh_token);
        expect(r.statusCode).toBe(401);
        expect(r.json().error).toBe('invalid_grant');
        const me = await s.app.inject({
          url: '/auth/me',
          headers: { authorization: `Bearer ${tokens.access_token}` },
        });
        expect(me.statusCode).toBe(401);
        const session = await s.store.findSession(tokens.session_id);
        expect(session?.revokedAt).not.toBeNull();
      }
      expect(await s.store.listActiveSessions(userId, s.now())).toEqual([]);
    }

    async function register(email: string): Promise<string> {
      const res = await s.app.inject({
        method: 'POST',
        url: '/auth/register',
        payload: { email, password: PASSWORD },
      });
      expect(res.statusCode).toBe(201);
      return res.json().user.id as string;
    }

    it(`${ROUNDS} rounds of ${N} logins racing a disable leave no live session`, async () => {
      for (let round = 0; round < ROUNDS; round++) {
        const email = `disable-${round}@example.com`;
        const userId = await register(email);
        const won = await race(email, (round * 3) % 45, () => s.app.baton.disableUser(userId));
        await expectAllDead(won, userId);
      }
    });

    it(`${ROUNDS} rounds of ${N} logins with the old password racing a password change leave no live session`, async () => {
      for (let round = 0; round < ROUNDS; round++) {
        const email = `change-${round}@example.com`;
        const userId = await register(email);
        const won = await race(email, (round * 4) % 60, () =>
          s.app.baton.changePassword({
            userId,
            sessionId: null,
            currentPassword: PASSWORD,
            newPassword: NEW_PASSWORD,
          }),
        );
        await expectAllDead(won, userId);
        // The new password still logs in: the change itself went through.
        const fresh = await s.app.inject({
          method: 'POST',
          url: '/auth/login',
          payload: { email, password: NEW_PASSWORD },
        });
        expect(fresh.statusCode).toBe(200);
      }
    });
  });
}

const limits = { loginFailuresPerAccount: null, requestsPerIpPerMinute: null };

raceSuite('SQLite', async () => {
  const { store, dispose } = await tempStore();
  const now = testClock();
  const app = await createServer({ store, issuer: ISSUER, now, limits });
  await app.ready();
  return {
    app,
    store,
    now,
    async close() {
      await app.close();
      await dispose();
    },
  };
});

raceSuite(
  'PostgreSQL',
  async () => {
    const schema = `baton_sec_${randomBytes(6).toString('hex')}`;
    const store = createPostgresStore({ connectionString: DB_URL, schema, max: 10 });
    await store.migrate();
    const now = testClock();
    const app = await createServer({ store, issuer: ISSUER, now, limits });
    await app.ready();
    return {
      app,
      store,
      now,
      async close() {
        await app.close();
        await store.close();
        const admin = new pg.Pool({ connectionString: DB_URL, max: 1 });
        await admin.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(schema)} CASCADE`);
        await admin.end();
      },
    };
  },
  postgresUp,
);
