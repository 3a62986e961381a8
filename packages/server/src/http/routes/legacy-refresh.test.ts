import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ISSUER, signUp, type TestApp, testApp } from '../../../test/helpers.js';

const ROUTE = '/api/v1/users/refresh-token';

/** The legacy tutorial route, kept for apps migrating from the Express+MongoDB tutorial controller. */
describe('POST /api/v1/users/refresh-token (seed compatibility)', () => {
  let t: TestApp;
  let rt: string;
  beforeEach(async () => {
    t = await testApp();
    rt = (await signUp(t.app)).refresh_token;
  });
  afterEach(() => t.close());

  it('by body: the seed response shape and HttpOnly cookies', async () => {
    const res = await t.app.inject({ method: 'POST', url: ROUTE, payload: { refreshToken: rt } });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body).toEqual({
      statusCode: 200,
      data: { accessToken: expect.any(String), refreshToken: expect.stringMatching(/^brt_/) },
      message: 'Access token refreshed',
      success: true,
    });
    // The seed's bug: the new refresh cookie was `undefined`. Here both cookies carry the new pair.
    const cookies = Object.fromEntries(res.cookies.map((c) => [c.name, c]));
    expect(cookies.accessToken?.value).toBe(body.data.accessToken);
    expect(cookies.refreshToken?.value).toBe(body.data.refreshToken);
    for (const c of [cookies.accessToken, cookies.refreshToken]) {
      expect(c).toMatchObject({ httpOnly: true, secure: true, sameSite: 'Strict' });
    }
  });

  it('by cookie, and the used token is spent (no second use after the grace window)', async () => {
    const first = await t.app.inject({ method: 'POST', url: ROUTE, cookies: { refreshToken: rt } });
    expect(first.statusCode).toBe(200);
    const next = first.json().data.refreshToken;
    expect(next).not.toBe(rt);
    t.clock.advance(11_000);
    const replay = await t.app.inject({ method: 'POST', url: ROUTE, cookies: { refreshToken: rt } });
    expect(replay.statusCode).toBe(401);
    expect(replay.json()).toMatchObject({ error: 'invalid_grant', success: false, statusCode: 401 });
  });

  it('missing or bad token: 401', async () => {
    for (const payload of [{}, { refreshToken: 'not-a-token' }]) {
      const res = await t.app.inject({ method: 'POST', url: ROUTE, payload });
      expect(res.statusCode).toBe(401);
      expect(res.json()).toMatchObject({ error: 'invalid_grant', error_description: expect.any(String) });
    }
  });

  it('a foreign Origin or a cross-site fetch is 403 and rotates nothing', async () => {
    for (const headers of [{ origin: 'https://evil.example' }, { 'sec-fetch-site': 'cross-site' }]) {
      const res = await t.app.inject({ method: 'POST', url: ROUTE, headers, cookies: { refreshToken: rt } });
      expect(res.statusCode).toBe(403);
    }
    const ok = await t.app.inject({
      method: 'POST',
      url: ROUTE,
      headers: { origin: ISSUER },
      cookies: { refreshToken: rt },
    });
    expect(ok.statusCode).toBe(200);
    expect((await t.app.inject({ url: '/metrics' })).body).toMatch(
      /baton_refresh_total\{outcome="rotated"\} 1/,
    );
  });
});
