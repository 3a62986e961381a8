// docs/security.md item 13 with real interleaving. On SQLite a server reads and rotates
// a token without yielding to the event loop, so parallel requests in one
// process never overlap between the read and the conditional write; on
// PostgreSQL every query is a network round trip and they do. Here two
// server instances (two pools on one schema, as two processes would have)
// take N parallel refreshes of one token through all three refresh routes,
// round after round: at most one successor may ever be valid.
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient } from '../../packages/server/src/core/clients.js';
import { createServer } from '../../packages/server/src/http/app.js';
import { createPostgresStore } from '../../packages/server/src/store/postgres/postgres-store.js';
import type { Store } from '../../packages/server/src/store/store.js';
import { testClock } from '../../packages/server/test/helpers.js';
import { serviceAvailable } from './support/services.js';

const DB_URL = 'postgres://postgres@127.0.0.1:5432/test';
const ISSUER = 'http://localhost:3000';
const PASSWORD = 'correct horse battery';
const N = 30;
const ROUNDS = 8;
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

const postgresUp = await serviceAvailable('PostgreSQL', 5432);

describe.runIf(postgresUp)('13: parallel refreshes of one token on two instances sharing PostgreSQL', () => {
  const admin = new pg.Pool({ connectionString: DB_URL, max: 1 });
  const schema = `baton_sec_${randomBytes(6).toString('hex')}`;
  const clock = testClock();
  let stores: Store[] = [];
  let apps: FastifyInstance[] = [];
  let rsSecret: string;

  beforeAll(async () => {
    stores = [
      createPostgresStore({ connectionString: DB_URL, schema, max: 10 }),
      createPostgresStore({ connectionString: DB_URL, schema, max: 10 }),
    ];
    await stores[0]!.migrate();
    rsSecret = (await createClient(stores[0]!, { id: 'rs', type: 'confidential' }, clock())).secret!;
    const limits = { loginFailuresPerAccount: null, requestsPerIpPerMinute: null };
    apps = await Promise.all(
      stores.map((store) => createServer({ store, issuer: ISSUER, now: clock, limits })),
    );
    for (const app of apps) await app.ready();
    await apps[0]!.inject({
      method: 'POST',
      url: '/auth/register',
      payload: { email: 'race@example.com', password: PASSWORD },
    });
  });
  afterAll(async () => {
    for (const app of apps) await app.close();
    for (const store of stores) await store.close();
    await admin.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(schema)} CASCADE`);
    await admin.end();
  });

  /** Refresh `rt` by route `i % 3` (Baton's, RFC 6749's, the seed's) on instance `i % 2`. */
  async function refreshBy(rt: string, i: number): Promise<{ status: number; rt?: string }> {
    const app = apps[i % 2]!;
    if (i % 3 === 0) {
      const res = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: rt } });
      return { status: res.statusCode, rt: res.json().refresh_token };
    }
    if (i % 3 === 1) {
      const res = await app.inject({
        method: 'POST',
        url: '/oauth/token',
        headers: FORM,
        payload: new URLSearchParams({
          grant_type: 'refresh_token',
          refresh_token: rt,
          client_id: 'app',
        }).toString(),
      });
      return { status: res.statusCode, rt: res.json().refresh_token };
    }
    const res = await app.inject({
      method: 'POST',
      url: '/api/v1/users/refresh-token',
      payload: { refreshToken: rt },
    });
    return { status: res.statusCode, rt: res.json().data?.refreshToken };
  }

  async function active(tokens: Iterable<string>): Promise<string[]> {
    const out: string[] = [];
    for (const token of new Set(tokens)) {
      const res = await apps[1]!.inject({
        method: 'POST',
        url: '/oauth/introspect',
        headers: { ...FORM, authorization: `Basic ${Buffer.from(`rs:${rsSecret}`).toString('base64')}` },
        payload: new URLSearchParams({ token }).toString(),
      });
      if (res.json().active === true) out.push(token);
    }
    return out;
  }

  async function rotations(): Promise<number> {
    let total = 0;
    for (const app of apps) {
      const line = (await app.inject({ url: '/metrics' })).body
        .split('\n')
        .find((l) => l.startsWith('baton_refresh_total{outcome="rotated"} '));
      total += Number(line?.split(' ')[1] ?? 0);
    }
    return total;
  }

  it(`${ROUNDS} rounds of ${N}: every caller gets the one successor, and exactly one rotation happens`, async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const login = await apps[round % 2]!.inject({
        method: 'POST',
        url: '/auth/login',
        payload: { email: 'race@example.com', password: PASSWORD },
      });
      const rt1 = login.json().refresh_token as string;
      const before = await rotations();
      const results = await Promise.all(Array.from({ length: N }, (_, i) => refreshBy(rt1, i)));
      expect(results.map((r) => r.status)).toEqual(Array(N).fill(200));
      const successors = new Set(results.map((r) => r.rt));
      expect(successors.size).toBe(1);
      expect(await rotations()).toBe(before + 1);
      expect(await active([rt1, ...(successors as Set<string>)])).toEqual([...successors]);
    }
  });

  it('a parent raced against its successor never leaves two live tokens, and the reuse ends the session', async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const login = await apps[0]!.inject({
        method: 'POST',
        url: '/auth/login',
        payload: { email: 'race@example.com', password: PASSWORD },
      });
      const rt1 = login.json().refresh_token as string;
      const rt2 = (await refreshBy(rt1, 0)).rt!;
      const results = await Promise.all(
        Array.from({ length: N }, (_, i) => refreshBy(i % 5 === 0 ? rt2 : rt1, i)),
      );
      const issued = results.flatMap((r) => (r.status === 200 && r.rt ? [r.rt] : []));
      expect((await active([rt1, rt2, ...issued])).length).toBeLessThanOrEqual(1);
      // Past the grace window RT1 is plain reuse: the session dies, whatever was issued above.
      clock.advance(11_000);
      expect((await refreshBy(rt1, 0)).status).toBe(401);
      expect(await active([rt1, rt2, ...issued])).toEqual([]);
    }
  });
});
