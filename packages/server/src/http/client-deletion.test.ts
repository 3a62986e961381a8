// Deleting a client (`baton clients delete`) must end what the client can do:
// new logins, refreshes and the access tokens of its sessions on Baton's own
// routes. At once on the instance that deleted it; on the other instances
// within the client cache's lifetime (CLIENT_CACHE_TTL_MS).
import type { FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ISSUER, refresh, type TestClock, tempStore, testClock } from '../../test/helpers.js';
import { CLIENT_CACHE_TTL_MS } from '../core/client-registry.js';
import { createSqliteStore } from '../store/sqlite/sqlite-store.js';
import type { Store } from '../store/store.js';
import { createServer } from './app.js';

const USER = { email: 'ada@example.com', password: 'correct horse battery' };
const CLIENT = 'spa-deleted';

interface Instance {
  app: FastifyInstance;
  clock: TestClock;
  store: Store;
}

async function instance(store: Store): Promise<Instance> {
  const clock = testClock();
  const app = await createServer({
    store,
    issuer: ISSUER,
    now: clock,
    limits: { requestsPerIpPerMinute: null },
  });
  await app.ready();
  return { app, clock, store };
}

const login = (on: Instance) =>
  on.app.inject({ method: 'POST', url: '/auth/login', payload: { ...USER, client_id: CLIENT } });
const me = (on: Instance, accessToken: string) =>
  on.app.inject({ method: 'GET', url: '/auth/me', headers: { authorization: `Bearer ${accessToken}` } });

describe('a deleted client stops working', () => {
  let a: Instance;
  let b: Instance;
  let dispose: () => Promise<void>;

  beforeEach(async () => {
    // Two instances on one SQLite file, each with its own connection, cache and clock.
    const temp = await tempStore();
    dispose = temp.dispose;
    a = await instance(temp.store);
    b = await instance(createSqliteStore({ filename: temp.file }));
    const reg = await a.app.inject({ method: 'POST', url: '/auth/register', payload: USER });
    expect(reg.statusCode).toBe(201);
    await a.app.baton.clients.create({ id: CLIENT, type: 'public' });
  });
  afterEach(async () => {
    await b.app.close();
    await b.store.close();
    await a.app.close();
    await dispose();
  });

  it('at once on the instance that deleted it: login, refresh and /auth/me', async () => {
    // Logging in first puts the client in this instance's cache.
    const before = await login(a);
    expect(before.statusCode).toBe(200);
    const tokens = before.json() as { access_token: string; refresh_token: string };
    expect(await a.app.baton.clients.delete(CLIENT)).toBe(true);

    const again = await login(a);
    expect(again.statusCode).toBe(400);
    expect(again.json().error).toBe('invalid_request');
    const refreshed = await refresh(a.app, tokens.refresh_token);
    expect(refreshed.statusCode).toBe(401);
    expect(refreshed.json().error).toBe('invalid_grant');
    expect((await me(a, tokens.access_token)).statusCode).toBe(401);
  });

  it('on another instance within the cache lifetime, including a session it started in between', async () => {
    const primed = await login(b);
    expect(primed.statusCode).toBe(200);
    expect(await a.app.baton.clients.delete(CLIENT)).toBe(true);

    // B has not seen the deletion yet: its cache still answers, so it can start
    // a session the deletion's revocation never saw. That session must not live on.
    const stale = await login(b);
    expect(stale.statusCode).toBe(200);
    const orphan = stale.json() as { access_token: string; refresh_token: string };
    // The deleting instance refuses it at once.
    expect((await me(a, orphan.access_token)).statusCode).toBe(401);

    b.clock.advance(CLIENT_CACHE_TTL_MS + 1);
    const late = await login(b);
    expect(late.statusCode).toBe(400);
    expect(late.json().error).toBe('invalid_request');
    expect((await me(b, orphan.access_token)).statusCode).toBe(401);
    const refreshed = await refresh(b.app, orphan.refresh_token);
    expect(refreshed.statusCode).toBe(401);
    expect(refreshed.json().error).toBe('invalid_grant');
    // The session B had before the deletion was revoked by it.
    const primedRefresh = (primed.json() as { refresh_token: string }).refresh_token;
    expect((await refresh(b.app, primedRefresh)).statusCode).toBe(401);
  });
});
