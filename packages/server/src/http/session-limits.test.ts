import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ISSUER, refresh, signUp, type TestApp, testApp } from '../../test/helpers.js';
import { createServer } from './app.js';

/**
 * Hardening: sessions per user are capped (default 100 live; the oldest by
 * last use give way to a new login) and `GET /auth/sessions` is paginated
 * (`limit`, default 50, at most 100; an opaque `cursor`; `next_cursor`).
 */
const EMAIL = 'many@example.com';
const PASSWORD = 'correct horse battery';

type SessionJson = { id: string; last_used_at: string; current: boolean };
type Page = { sessions: SessionJson[]; next_cursor: string | null };

describe('session cap and pagination', () => {
  let t: TestApp;
  beforeEach(async () => {
    t = await testApp({ limits: { loginFailuresPerAccount: null, requestsPerIpPerMinute: null } });
  });
  afterEach(async () => {
    await t.close();
  });

  const login = async () => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/auth/login',
      payload: { email: EMAIL, password: PASSWORD },
    });
    expect(res.statusCode).toBe(200);
    return res.json() as { access_token: string; refresh_token: string; session_id: string };
  };
  const list = (accessToken: string, query = '') =>
    t.app.inject({ url: `/auth/sessions${query}`, headers: { authorization: `Bearer ${accessToken}` } });

  /** Follows `next_cursor` from the first page to the last (bounded), returning every page. */
  async function walk(accessToken: string, limit?: number): Promise<Page[]> {
    const pages: Page[] = [];
    let cursor: string | null = null;
    for (let i = 0; i < 50; i++) {
      const params = new URLSearchParams();
      if (limit !== undefined) params.set('limit', String(limit));
      if (cursor !== null) params.set('cursor', cursor);
      const res = await list(accessToken, params.size ? `?${params}` : '');
      expect(res.statusCode).toBe(200);
      const page = res.json() as Page;
      expect(page.next_cursor === null || typeof page.next_cursor === 'string').toBe(true);
      pages.push(page);
      cursor = page.next_cursor;
      if (cursor === null) return pages;
    }
    throw new Error('pagination did not end');
  }

  // 101 real Argon2id logins: seconds of CPU on a busy 2-core machine, so more time than vitest's 5 s default.
  it('the 101st login revokes the session used longest ago, and the newest works', {
    timeout: 60_000,
  }, async () => {
    const first = await signUp(t.app, EMAIL, PASSWORD);
    const sessions: { refresh_token: string; session_id: string }[] = [first];
    for (let i = 1; i < 100; i++) {
      t.clock.advance(1000);
      sessions.push(await login());
    }
    // The first session is used again: now the second is the one used longest ago.
    t.clock.advance(1000);
    const used = await refresh(t.app, first.refresh_token);
    expect(used.statusCode).toBe(200);
    t.clock.advance(1000);
    const newest = await login();

    // 100 live sessions: two pages at the default limit of 50, newest first.
    const pages = await walk(newest.access_token);
    expect(pages.map((p) => p.sessions.length)).toEqual([50, 50]);
    const ids = pages.flatMap((p) => p.sessions.map((s) => s.id));
    expect(new Set(ids).size).toBe(100);
    expect(ids).not.toContain(sessions[1]!.session_id);
    expect(ids[0]).toBe(newest.session_id);

    const evicted = await refresh(t.app, sessions[1]!.refresh_token);
    expect(evicted.statusCode).toBe(401);
    expect(evicted.json().error).toBe('invalid_grant');
    expect((await t.store.findSession(sessions[1]!.session_id))?.revokedReason).toBe('session_limit');
    expect(
      (await t.app.inject({ url: '/auth/me', headers: { authorization: `Bearer ${newest.access_token}` } }))
        .statusCode,
    ).toBe(200);
    expect((await refresh(t.app, used.json().refresh_token)).statusCode).toBe(200);
    expect((await refresh(t.app, sessions[2]!.refresh_token)).statusCode).toBe(200);
    const user = await t.store.findUserByEmail(EMAIL);
    const events = await t.store.listSecurityEvents({ userId: user!.id });
    expect(events).toContainEqual(
      expect.objectContaining({ type: 'session_revoked', sessionId: sessions[1]!.session_id }),
    );
  });

  it('walks every session exactly once, in order, when many share their last-used time', async () => {
    const first = await signUp(t.app, EMAIL, PASSWORD);
    // Seven sessions in the same millisecond, then three later ones: ties across page boundaries.
    for (let i = 0; i < 6; i++) await login();
    for (let i = 0; i < 3; i++) {
      t.clock.advance(1000);
      await login();
    }
    const all = (await list(first.access_token, '?limit=100')).json() as Page;
    expect(all.sessions).toHaveLength(10);
    expect(all.next_cursor).toBeNull();
    for (const limit of [1, 2, 3, 4, 7]) {
      const pages = await walk(first.access_token, limit);
      for (const p of pages) expect(p.sessions.length).toBeLessThanOrEqual(limit);
      expect(pages.flatMap((p) => p.sessions.map((s) => s.id))).toEqual(all.sessions.map((s) => s.id));
    }
    expect(all.sessions.filter((s) => s.current).map((s) => s.id)).toEqual([first.session_id]);
  });

  it.each([
    '?limit=0',
    '?limit=101',
    '?limit=-1',
    '?limit=1.5',
    '?limit=ten',
    '?limit=',
    '?cursor=',
    '?cursor=not-a-cursor',
    '?cursor=%00%FF',
    `?cursor=${'A'.repeat(300)}`,
    `?cursor=${Buffer.from('{"l":1}').toString('base64url')}`,
    '?cursor=a&cursor=b',
    '?limit=1&limit=2',
  ])('GET /auth/sessions%s is 400 invalid_request', async (query) => {
    const { access_token } = await signUp(t.app, EMAIL, PASSWORD);
    const res = await list(access_token, query);
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toBe('invalid_request');
  });

  it('maxSessionsPerUser sets the cap; a bad one is a TypeError at construction', async () => {
    const small = await testApp({ maxSessionsPerUser: 2 });
    try {
      const a = await signUp(small.app, EMAIL, PASSWORD);
      small.clock.advance(1000);
      const b = await signUp(small.app, EMAIL, PASSWORD);
      small.clock.advance(1000);
      const c = await signUp(small.app, EMAIL, PASSWORD);
      expect((await refresh(small.app, a.refresh_token)).statusCode).toBe(401);
      expect((await refresh(small.app, b.refresh_token)).statusCode).toBe(200);
      expect((await refresh(small.app, c.refresh_token)).statusCode).toBe(200);
      for (const bad of [0, -1, 1.5, Number.NaN, '3' as unknown as number])
        await expect(
          createServer({ store: small.store, issuer: ISSUER, maxSessionsPerUser: bad }),
        ).rejects.toThrow(TypeError);
    } finally {
      await small.close();
    }
  });
});
