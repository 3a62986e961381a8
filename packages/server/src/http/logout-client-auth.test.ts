import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { signUp, type TestApp, testApp } from '../../test/helpers.js';
import { createClient } from '../core/clients.js';

const EMAIL = 'ada@example.com';
const PASSWORD = 'correct horse battery';
const basic = (id: string, secret: string) =>
  `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

/**
 * Issue 9 item 8: `/auth/logout` with a confidential client's refresh token
 * revokes only when that client authenticates, as `/oauth/revoke` does
 * (RFC 7009 §2.1).
 */
describe('logout by a confidential client’s refresh token', () => {
  let t: TestApp;
  let secret: string;
  let otherSecret: string;
  let refreshToken: string;
  beforeEach(async () => {
    t = await testApp();
    secret = (await createClient(t.store, { id: 'backend', type: 'confidential' }, t.clock())).secret!;
    otherSecret = (await createClient(t.store, { id: 'other', type: 'confidential' }, t.clock())).secret!;
    await signUp(t.app, EMAIL, PASSWORD);
    const login = await t.app.inject({
      method: 'POST',
      url: '/auth/login',
      headers: { authorization: basic('backend', secret) },
      payload: { email: EMAIL, password: PASSWORD },
    });
    refreshToken = login.json().refresh_token;
  });
  afterEach(() => t.close());

  const logout = (payload: Record<string, string>, headers: Record<string, string> = {}) =>
    t.app.inject({ method: 'POST', url: '/auth/logout', headers, payload });
  const alive = async () => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/oauth/token',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: basic('backend', secret),
      },
      payload: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken }).toString(),
    });
    if (res.statusCode === 200) refreshToken = res.json().refresh_token;
    return res.statusCode === 200;
  };

  it('without client authentication: 401 invalid_client, and the session stays alive', async () => {
    const res = await logout({ refresh_token: refreshToken });
    expect(res.statusCode).toBe(401);
    expect(res.json().error).toBe('invalid_client');
    expect(res.headers['www-authenticate']).toMatch(/^Basic /);
    expect(res.headers['set-cookie']).toBeUndefined();
    expect(await alive()).toBe(true);
  });

  it('naming the client without its secret, or a wrong secret, revokes nothing either', async () => {
    expect((await logout({ refresh_token: refreshToken, client_id: 'backend' })).statusCode).toBe(401);
    const wrong = await logout({ refresh_token: refreshToken }, { authorization: basic('backend', 'nope') });
    expect(wrong.statusCode).toBe(401);
    expect(await alive()).toBe(true);
  });

  it('another authenticated client is unauthorized_client (RFC 7009 §2.1), and nothing is revoked', async () => {
    const res = await logout({ refresh_token: refreshToken }, { authorization: basic('other', otherSecret) });
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toBe('unauthorized_client');
    expect(await alive()).toBe(true);
  });

  it('the client itself, by Basic or client_secret_post, ends the session', async () => {
    expect(
      (await logout({ refresh_token: refreshToken }, { authorization: basic('backend', secret) })).statusCode,
    ).toBe(204);
    expect(await alive()).toBe(false);
  });

  it('client_secret_post works too', async () => {
    const res = await logout({ refresh_token: refreshToken, client_id: 'backend', client_secret: secret });
    expect(res.statusCode).toBe(204);
    expect(await alive()).toBe(false);
  });

  it('a public client’s refresh token still logs out without credentials', async () => {
    const mine = await signUp(t.app, 'bob@example.com', PASSWORD);
    expect((await logout({ refresh_token: mine.refresh_token })).statusCode).toBe(204);
    const again = await t.app.inject({
      method: 'POST',
      url: '/auth/refresh',
      payload: { refresh_token: mine.refresh_token },
    });
    expect(again.statusCode).toBe(401);
  });
});
