import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ISSUER, refresh, signUp, type TestApp, testApp } from '../../../test/helpers.js';

describe('/auth routes', () => {
  let t: TestApp;
  beforeEach(async () => {
    t = await testApp();
  });
  afterEach(() => t.close());

  it('register → login → me → refresh, with no-store on token responses', async () => {
    const reg = await t.app.inject({
      method: 'POST',
      url: '/auth/register',
      payload: { email: 'ada@example.com', password: 'correct horse battery' },
    });
    expect(reg.statusCode).toBe(201);
    expect(reg.json().user).toMatchObject({ email: 'ada@example.com' });
    expect(reg.body).not.toContain('argon2');

    const login = await t.app.inject({
      method: 'POST',
      url: '/auth/login',
      payload: { email: 'ada@example.com', password: 'correct horse battery' },
    });
    expect(login.statusCode).toBe(200);
    expect(login.headers['cache-control']).toBe('no-store');
    expect(login.headers.pragma).toBe('no-cache');
    const body = login.json();
    expect(body).toMatchObject({ token_type: 'Bearer', expires_in: 900 });
    expect(body.refresh_token).toMatch(/^brt_[A-Za-z0-9_.-]+$/);
    expect(body.session_id).toMatch(/^ses_/);

    const me = await t.app.inject({
      url: '/auth/me',
      headers: { authorization: `Bearer ${body.access_token}` },
    });
    expect(me.statusCode).toBe(200);
    expect(me.json()).toMatchObject({
      user: { email: 'ada@example.com' },
      session_id: body.session_id,
      client_id: 'app',
    });

    const r = await refresh(t.app, body.refresh_token);
    expect(r.statusCode).toBe(200);
    expect(r.headers['cache-control']).toBe('no-store');
    expect(r.json().refresh_token).not.toBe(body.refresh_token);
  });

  it('registering an existing email is a 409', async () => {
    await signUp(t.app);
    const again = await t.app.inject({
      method: 'POST',
      url: '/auth/register',
      payload: { email: 'ADA@example.com', password: 'another password' },
    });
    expect(again.statusCode).toBe(409);
    expect(again.json().error).toBe('email_taken');
  });

  it('access tokens verify with jose against the JWKS (RFC 9068 header and claims)', async () => {
    const { access_token, session_id } = await signUp(t.app);
    const jwks = await t.app.inject({ url: '/.well-known/jwks.json' });
    expect(jwks.headers['cache-control']).toMatch(/max-age=\d+/);
    const keys = jwks.json().keys;
    for (const k of keys) {
      expect(k).not.toHaveProperty('d');
      expect(k).toMatchObject({ use: 'sig', alg: 'ES256' });
    }
    const { payload, protectedHeader } = await jwtVerify(access_token, createLocalJWKSet(jwks.json()), {
      issuer: ISSUER,
      audience: ISSUER,
      typ: 'at+jwt',
      algorithms: ['ES256'],
      currentDate: new Date(t.clock()),
    });
    expect(protectedHeader.kid).toBe(keys[0].kid);
    expect(payload).toMatchObject({ sid: session_id, client_id: 'app' });
    for (const claim of ['sub', 'exp', 'iat', 'jti']) expect(payload).toHaveProperty(claim);
    expect(decodeProtectedHeader(access_token).typ).toBe('at+jwt');
  });

  it('wrong password, unknown user and disabled account give the same 401', async () => {
    await signUp(t.app);
    const attempt = (email: string, password: string) =>
      t.app.inject({ method: 'POST', url: '/auth/login', payload: { email, password } });
    const wrong = await attempt('ada@example.com', 'wrong password!');
    const unknown = await attempt('nobody@example.com', 'wrong password!');
    const user = (await t.store.findUserByEmail('ada@example.com'))!;
    await t.store.setUserDisabled({ userId: user.id, disabled: true, now: t.clock() });
    const disabled = await attempt('ada@example.com', 'correct horse battery');
    for (const res of [wrong, unknown, disabled]) {
      expect(res.statusCode).toBe(401);
      expect(res.body).toBe(wrong.body);
      expect(res.headers['www-authenticate']).toBe(wrong.headers['www-authenticate']);
    }
    expect(wrong.json().error).toBe('invalid_credentials');
  });

  it('a bad or spent refresh token is 401 invalid_grant on /auth/refresh', async () => {
    const { refresh_token } = await signUp(t.app);
    expect((await refresh(t.app, refresh_token)).statusCode).toBe(200);
    t.clock.advance(11_000);
    const replay = await refresh(t.app, refresh_token);
    expect(replay.statusCode).toBe(401);
    expect(replay.json().error).toBe('invalid_grant');
    expect(replay.body).not.toContain(refresh_token);
    const missing = await t.app.inject({ method: 'POST', url: '/auth/refresh', payload: {} });
    expect(missing.statusCode).toBe(401);
    expect(missing.json().error).toBe('invalid_grant');
  });

  it('protected routes: 401 with a bare Bearer challenge without a token, invalid_token with a bad one', async () => {
    const none = await t.app.inject({ url: '/auth/me' });
    expect(none.statusCode).toBe(401);
    expect(none.headers['www-authenticate']).toBe('Bearer realm="baton"');
    const { access_token } = await signUp(t.app);
    const [h, p, s] = access_token.split('.') as [string, string, string];
    const tampered = `${h}.${p}.${s.slice(0, -2)}${s.at(-2) === 'A' ? 'B' : 'A'}${s.at(-1)}`;
    const algNone = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'at+jwt' })).toString('base64url')}.${p}.`;
    for (const token of [tampered, algNone, 'garbage', `${h}.${p}`]) {
      const res = await t.app.inject({ url: '/auth/me', headers: { authorization: `Bearer ${token}` } });
      expect(res.statusCode).toBe(401);
      expect(res.headers['www-authenticate']).toMatch(/^Bearer realm="baton", error="invalid_token"/);
      expect(res.json().error).toBe('invalid_token');
    }
    t.clock.advance(16 * 60_000);
    const expired = await t.app.inject({
      url: '/auth/me',
      headers: { authorization: `Bearer ${access_token}` },
    });
    expect(expired.statusCode).toBe(401);
    expect(expired.json().error_description).toMatch(/expired/);
  });

  it('logout by refresh token revokes the session; the access token stops working on /auth/me', async () => {
    const { refresh_token, access_token } = await signUp(t.app);
    const out = await t.app.inject({ method: 'POST', url: '/auth/logout', payload: { refresh_token } });
    expect(out.statusCode).toBe(204);
    expect((await refresh(t.app, refresh_token)).statusCode).toBe(401);
    const me = await t.app.inject({ url: '/auth/me', headers: { authorization: `Bearer ${access_token}` } });
    expect(me.statusCode).toBe(401);
  });

  it('logout by access token, and logout with garbage is still 204 but revokes nothing', async () => {
    const a = await signUp(t.app);
    const b = await signUp(t.app);
    const garbage = await t.app.inject({
      method: 'POST',
      url: '/auth/logout',
      payload: { refresh_token: 'brt_nope' },
    });
    expect(garbage.statusCode).toBe(204);
    const out = await t.app.inject({
      method: 'POST',
      url: '/auth/logout',
      headers: { authorization: `Bearer ${a.access_token}` },
    });
    expect(out.statusCode).toBe(204);
    expect((await refresh(t.app, a.refresh_token)).statusCode).toBe(401);
    expect((await refresh(t.app, b.refresh_token)).statusCode).toBe(200);
  });

  it('sessions: list marks the current one; deleting one revokes it; another user cannot', async () => {
    const a1 = await signUp(t.app);
    const a2 = await signUp(t.app);
    const eve = await signUp(t.app, 'eve@example.com');
    const list = await t.app.inject({
      url: '/auth/sessions',
      headers: { authorization: `Bearer ${a1.access_token}` },
    });
    expect(list.statusCode).toBe(200);
    const sessions = list.json().sessions as { id: string; current: boolean }[];
    expect(sessions.map((s) => s.id).sort()).toEqual([a1.session_id, a2.session_id].sort());
    expect(sessions.find((s) => s.current)?.id).toBe(a1.session_id);

    const foreign = await t.app.inject({
      method: 'DELETE',
      url: `/auth/sessions/${a2.session_id}`,
      headers: { authorization: `Bearer ${eve.access_token}` },
    });
    expect(foreign.statusCode).toBe(404);
    expect((await refresh(t.app, a2.refresh_token)).statusCode).toBe(200);

    const del = await t.app.inject({
      method: 'DELETE',
      url: `/auth/sessions/${a1.session_id}`,
      headers: { authorization: `Bearer ${a2.access_token}` },
    });
    expect(del.statusCode).toBe(204);
    expect((await refresh(t.app, a1.refresh_token)).statusCode).toBe(401);
  });

  it('logout-all ends every session of the user and no one else’s', async () => {
    const a1 = await signUp(t.app);
    const a2 = await signUp(t.app);
    const eve = await signUp(t.app, 'eve@example.com');
    const res = await t.app.inject({
      method: 'POST',
      url: '/auth/logout-all',
      headers: { authorization: `Bearer ${a1.access_token}` },
    });
    expect(res.statusCode).toBe(204);
    expect((await refresh(t.app, a1.refresh_token)).statusCode).toBe(401);
    expect((await refresh(t.app, a2.refresh_token)).statusCode).toBe(401);
    expect((await refresh(t.app, eve.refresh_token)).statusCode).toBe(200);
  });

  it('password change needs the current password and revokes the other sessions', async () => {
    const a1 = await signUp(t.app);
    const a2 = await signUp(t.app);
    const change = (current: string) =>
      t.app.inject({
        method: 'POST',
        url: '/auth/password',
        headers: { authorization: `Bearer ${a1.access_token}` },
        payload: { current_password: current, new_password: 'a brand new secret' },
      });
    const wrong = await change('not my password');
    expect(wrong.statusCode).toBe(403);
    expect((await refresh(t.app, a2.refresh_token)).statusCode).toBe(200);
    const a2b = await signUp(t.app);
    expect((await change('correct horse battery')).statusCode).toBe(204);
    expect((await refresh(t.app, a2b.refresh_token)).statusCode).toBe(401);
    expect((await refresh(t.app, a1.refresh_token)).statusCode).toBe(200);
    const oldLogin = await t.app.inject({
      method: 'POST',
      url: '/auth/login',
      payload: { email: 'ada@example.com', password: 'correct horse battery' },
    });
    expect(oldLogin.statusCode).toBe(401);
  });

  it('health, readiness and metrics answer; refresh outcomes are counted', async () => {
    const { refresh_token } = await signUp(t.app);
    await refresh(t.app, refresh_token);
    await refresh(t.app, refresh_token);
    expect((await t.app.inject({ url: '/healthz' })).json()).toEqual({ status: 'ok' });
    expect((await t.app.inject({ url: '/readyz' })).json()).toMatchObject({
      status: 'ready',
      store: 'sqlite',
    });
    const metrics = (await t.app.inject({ url: '/metrics' })).body;
    expect(metrics).toMatch(/baton_refresh_total\{outcome="rotated"\} 1/);
    expect(metrics).toMatch(/baton_refresh_total\{outcome="grace_replay"\} 1/);
  });

  it('unknown routes are 404 and wrong methods 405, both as JSON errors', async () => {
    const missing = await t.app.inject({ url: '/nope' });
    expect(missing.statusCode).toBe(404);
    expect(missing.json()).toEqual({ error: 'not_found', error_description: 'No such route' });
    const wrong = await t.app.inject({ method: 'GET', url: '/auth/refresh' });
    expect(wrong.statusCode).toBe(405);
    expect(wrong.headers.allow).toBe('POST');
    expect(wrong.json().error).toBe('method_not_allowed');
  });
});

describe('EdDSA signing', () => {
  it('signs with Ed25519 when selected, and the token verifies against the JWKS', async () => {
    const t = await testApp({ signingAlg: 'EdDSA' });
    try {
      const { access_token } = await signUp(t.app);
      const jwks = (await t.app.inject({ url: '/.well-known/jwks.json' })).json();
      expect(jwks.keys[0]).toMatchObject({ kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA', use: 'sig' });
      const { protectedHeader } = await jwtVerify(access_token, createLocalJWKSet(jwks), {
        issuer: ISSUER,
        audience: ISSUER,
        typ: 'at+jwt',
        currentDate: new Date(t.clock()),
      });
      expect(protectedHeader.alg).toBe('EdDSA');
      const me = await t.app.inject({
        url: '/auth/me',
        headers: { authorization: `Bearer ${access_token}` },
      });
      expect(me.statusCode).toBe(200);
    } finally {
      await t.close();
    }
  });
});
