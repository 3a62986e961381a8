import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningBaton, runCli, startBaton } from './support/baton.js';

/**
 * Hardening: `baton users disable` run as its own process while two
 * `baton serve` processes on one SQLite file keep logging the user in. A
 * login inside Argon2 when the switch commits must not come out with a
 * session that lives on: every login that answered 200 must be refused on
 * refresh and on /auth/me, whichever process asks.
 */
const PASSWORD = 'correct horse battery';
const ROUNDS = 4;
const N = 6;
const MAX_BATCHES = 40;

describe('a login in flight on another process loses to `baton users disable`', () => {
  let a: RunningBaton;
  let b: RunningBaton;
  beforeAll(async () => {
    const env = { BATON_LIMIT_IP_PER_MIN: 'off', BATON_LIMIT_LOGIN_FAILURES: 'off' };
    a = await startBaton({ env });
    b = await startBaton({ env: { ...env, BATON_ISSUER: a.url }, dataDir: a.dataDir });
  });
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
  });

  const call = (base: RunningBaton, path: string, init: { body?: unknown; bearer?: string } = {}) =>
    fetch(`http://127.0.0.1:${base.port}${path}`, {
      method: init.body === undefined ? 'GET' : 'POST',
      headers: {
        ...(init.body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(init.bearer ? { authorization: `Bearer ${init.bearer}` } : {}),
      },
      ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
    });

  it(`${ROUNDS} rounds: logins on both processes while the CLI disables the account leave no live session`, async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const email = `proc-${round}@example.com`;
      expect((await call(a, '/auth/register', { body: { email, password: PASSWORD } })).status).toBe(201);
      let finished = false;
      const cli = runCli(['users', 'disable', email], {
        BATON_DATABASE_URL: `sqlite:${join(a.dataDir, 'baton.db')}`,
      }).finally(() => {
        finished = true;
      });
      const won: { access_token: string; refresh_token: string }[] = [];
      // Batches of logins until the CLI is done (and one more), bounded.
      for (let batch = 0, after = 0; batch < MAX_BATCHES && after < 2; batch++) {
        if (finished) after++;
        const responses = await Promise.all(
          Array.from({ length: N }, (_, i) =>
            call(i % 2 ? a : b, '/auth/login', { body: { email, password: PASSWORD } }),
          ),
        );
        for (const res of responses) {
          expect([200, 401]).toContain(res.status);
          const body = (await res.json()) as { access_token: string; refresh_token: string };
          if (res.status === 200) won.push(body);
        }
      }
      const result = await cli;
      expect(result.code, result.out).toBe(0);
      for (const [i, tokens] of won.entries()) {
        const other = i % 2 ? b : a;
        const r = await call(other, '/auth/refresh', { body: { refresh_token: tokens.refresh_token } });
        expect(r.status).toBe(401);
        expect(((await r.json()) as { error: string }).error).toBe('invalid_grant');
        expect((await call(other, '/auth/me', { bearer: tokens.access_token })).status).toBe(401);
      }
    }
  });
});
