import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serviceAvailable } from '../../../../test/e2e/support/services.js';
import { ISSUER, signUp, testApp, testClock } from '../../test/helpers.js';
import { createPostgresStore } from '../store/postgres/postgres-store.js';
import { createServer } from './app.js';

const DB_URL = 'postgres://postgres@127.0.0.1:5432/test';
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };
const PASSWORD = 'correct horse battery';
const pgAvailable = await serviceAvailable('PostgreSQL', 5432);

interface Harness {
  app: Awaited<ReturnType<typeof createServer>>;
  close(): Promise<void>;
}

async function sqliteHarness(): Promise<Harness> {
  const t = await testApp({ limits: { loginFailuresPerAccount: null, requestsPerIpPerMinute: null } });
  return { app: t.app, close: () => t.close() };
}

async function postgresHarness(): Promise<Harness> {
  const schema = `baton_test_${randomBytes(6).toString('hex')}`;
  const store = createPostgresStore({ connectionString: DB_URL, schema, max: 3 });
  await store.migrate();
  const app = await createServer({
    store,
    issuer: ISSUER,
    now: testClock(),
    limits: { loginFailuresPerAccount: null, requestsPerIpPerMinute: null },
  });
  await app.ready();
  return {
    app,
    async close() {
      await app.close();
      await store.close();
      const admin = new pg.Client({ connectionString: DB_URL });
      await admin.connect();
      await admin.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(schema)} CASCADE`);
      await admin.end();
    },
  };
}

/**
 * Issue 9 items 6 and 10: control characters in identifiers are a 400
 * `invalid_request` before any store call (PostgreSQL answered a NUL with a
 * 500), and addresses that look the same are the same account.
 */
for (const [dialect, open, run] of [
  ['SQLite', sqliteHarness, true],
  ['PostgreSQL', postgresHarness, pgAvailable],
] as const) {
  describe.runIf(run)(`identifier input (${dialect})`, () => {
    let h: Harness;
    let access: string;
    beforeAll(async () => {
      h = await open();
      access = (await signUp(h.app, 'ada@example.com', PASSWORD)).access_token;
    });
    afterAll(() => h?.close());

    const json = (url: string, payload: unknown) =>
      h.app.inject({ method: 'POST', url, payload: payload as object });
    const form = (url: string, body: string) =>
      h.app.inject({ method: 'POST', url, headers: FORM, payload: body });

    it.each([
      [
        'register: NUL in the email',
        () => json('/auth/register', { email: 'eve\u0000@example.com', password: PASSWORD }),
      ],
      [
        'register: BEL in the email',
        () => json('/auth/register', { email: 'eve\u0007@example.com', password: PASSWORD }),
      ],
      [
        'register: NUL in the password',
        () => json('/auth/register', { email: 'eve@example.com', password: `${PASSWORD}\u0000` }),
      ],
      [
        'login: NUL in the email',
        () => json('/auth/login', { email: 'ada\u0000@example.com', password: PASSWORD }),
      ],
      [
        'login: NUL in client_id',
        () => json('/auth/login', { email: 'ada@example.com', password: PASSWORD, client_id: 'app\u0000' }),
      ],
      [
        'login: C1 in client_id',
        () => json('/auth/login', { email: 'ada@example.com', password: PASSWORD, client_id: 'app\u009b' }),
      ],
      [
        'login: NUL in scope',
        () => json('/auth/login', { email: 'ada@example.com', password: PASSWORD, scope: 'read\u0000' }),
      ],
      [
        '/oauth/token: NUL in client_id',
        () => form('/oauth/token', 'grant_type=refresh_token&refresh_token=brt_x&client_id=app%00'),
      ],
      ['/oauth/revoke: NUL in client_id', () => form('/oauth/revoke', 'token=brt_x&client_id=app%00')],
      [
        '/oauth/introspect: NUL in client_id',
        () => form('/oauth/introspect', 'token=x&client_id=rs%00&client_secret=bcs_x'),
      ],
      [
        'DELETE /auth/sessions/: NUL in the id',
        () =>
          h.app.inject({
            method: 'DELETE',
            url: '/auth/sessions/ses_%00x',
            headers: { authorization: `Bearer ${access}` },
          }),
      ],
    ])('%s → 400 invalid_request', async (_name, send) => {
      const res = await send();
      expect(res.statusCode).toBe(400);
      expect(res.json().error).toBe('invalid_request');
    });

    it('two visually identical addresses are one account: the second is email_taken', async () => {
      const first = await json('/auth/register', {
        email: 'Ren\u00e9@b\u00fccher.example',
        password: PASSWORD,
      });
      expect(first.statusCode).toBe(201);
      for (const lookalike of [
        'rene\u0301@bu\u0308cher.example',
        'REN\u00c9@B\u00dcCHER.EXAMPLE',
        'ren\u00e9@\uff42\u00fccher.example',
      ]) {
        const again = await json('/auth/register', { email: lookalike, password: PASSWORD });
        expect(again.statusCode, lookalike).toBe(409);
        expect(again.json().error).toBe('email_taken');
      }
      const login = await json('/auth/login', {
        email: 'rene\u0301@bu\u0308cher.example',
        password: PASSWORD,
      });
      expect(login.statusCode).toBe(200);
    });

    it('a user registered as Ada@Example.com still logs in under any case', async () => {
      expect(
        (await json('/auth/register', { email: 'Grace@Example.com', password: PASSWORD })).statusCode,
      ).toBe(201);
      expect((await json('/auth/login', { email: 'grace@EXAMPLE.com', password: PASSWORD })).statusCode).toBe(
        200,
      );
    });
  });
}
