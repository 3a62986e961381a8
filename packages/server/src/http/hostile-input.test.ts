import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { refresh, signUp, type TestApp, testApp } from '../../test/helpers.js';

/**
 * docs/security.md item 35: any malformed body, wrong types, `__proto__` keys, deep
 * nesting, invalid UTF-8, huge bodies, odd content types: a 4xx JSON error,
 * never a 5xx, never an echo of the input, no state change.
 */
describe('hostile input on every route', () => {
  let t: TestApp;
  let tokens: Awaited<ReturnType<typeof signUp>>;
  const MARKER = 'zq9MARKERzq9';

  beforeAll(async () => {
    t = await testApp({ limits: { loginFailuresPerAccount: null, requestsPerIpPerMinute: null } });
    tokens = await signUp(t.app);
  });
  afterAll(() => t.close());

  const routes: { method: 'POST' | 'DELETE' | 'GET'; url: string }[] = [
    { method: 'POST', url: '/auth/register' },
    { method: 'POST', url: '/auth/login' },
    { method: 'POST', url: '/auth/refresh' },
    { method: 'POST', url: '/auth/logout' },
    { method: 'POST', url: '/auth/logout-all' },
    { method: 'POST', url: '/auth/password' },
    { method: 'DELETE', url: '/auth/sessions/ses_x' },
    { method: 'POST', url: '/api/v1/users/refresh-token' },
  ];

  const deep = `${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}`;
  const bodies: { name: string; type: string; body: string | Buffer }[] = [
    { name: 'malformed JSON', type: 'application/json', body: `{"email": "${MARKER}",` },
    {
      name: 'operator injection',
      type: 'application/json',
      body: JSON.stringify({
        email: { $ne: null },
        password: { $ne: null },
        refresh_token: { $gt: '' },
        current_password: { $ne: 1 },
        new_password: [MARKER],
      }),
    },
    {
      name: '__proto__ key',
      type: 'application/json',
      body: `{"__proto__": {"admin": true}, "email": "${MARKER}@x.io", "password": "${MARKER}${MARKER}"}`,
    },
    {
      name: 'constructor.prototype',
      type: 'application/json',
      body: `{"constructor": {"prototype": {"x": 1}}, "refresh_token": "${MARKER}"}`,
    },
    { name: 'deep nesting', type: 'application/json', body: deep },
    { name: 'array body', type: 'application/json', body: `["${MARKER}"]` },
    {
      name: 'numbers for strings',
      type: 'application/json',
      body: '{"email": 12345678, "password": 12345678, "refresh_token": 1, "current_password": 1, "new_password": 1}',
    },
    {
      name: 'invalid UTF-8',
      type: 'application/json',
      body: Buffer.concat([
        Buffer.from('{"email": "'),
        Buffer.from([0xc3, 0x28, 0xff]),
        Buffer.from('", "password": "xxxxxxxxxxx"}'),
      ]),
    },
    {
      name: '2 MB body',
      type: 'application/json',
      body: JSON.stringify({ email: 'a@b.c', password: MARKER.repeat(180_000) }),
    },
    { name: 'text/plain', type: 'text/plain', body: MARKER },
    { name: 'xml', type: 'application/xml', body: `<a>${MARKER}</a>` },
    {
      name: 'multipart',
      type: 'multipart/form-data; boundary=x',
      body: `--x\r\nContent-Disposition: form-data; name="a"\r\n\r\n${MARKER}\r\n--x--`,
    },
    { name: 'form with __proto__', type: 'application/x-www-form-urlencoded', body: `__proto__=${MARKER}` },
  ];

  async function snapshot(): Promise<string> {
    const users = await t.store.listUsers();
    const sessions = await Promise.all(users.map((u) => t.store.listActiveSessions(u.id, t.clock())));
    return JSON.stringify({ users: users.map((u) => [u.id, u.passwordHash, u.disabledAt]), sessions });
  }

  for (const { method, url } of routes) {
    for (const { name, type, body } of bodies) {
      it(`${method} ${url} with ${name} → 4xx JSON, no echo, no change`, async () => {
        const before = await snapshot();
        const res = await t.app.inject({
          method,
          url,
          // No credentials: parsing and validation must hold before authentication is even looked at.
          headers: { 'content-type': type },
          payload: body,
        });
        expect(res.statusCode, res.body).toBeGreaterThanOrEqual(400);
        expect(res.statusCode, res.body).toBeLessThan(500);
        const json = res.json();
        expect(Object.keys(json)).toEqual(expect.arrayContaining(['error', 'error_description']));
        expect(res.body).not.toContain(MARKER);
        expect(await snapshot()).toBe(before);
      });
    }
  }

  it('the session survived all of it', async () => {
    expect((await refresh(t.app, tokens.refresh_token)).statusCode).toBe(200);
  });

  it('an oversized body gets 413 as JSON', async () => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/auth/login',
      headers: { 'content-type': 'application/json' },
      payload: JSON.stringify({ email: 'a@b.c', password: 'x'.repeat(2_000_000) }),
    });
    expect(res.statusCode).toBe(413);
    expect(res.json().error).toBe('payload_too_large');
  });

  it('duplicate and spoofed headers are harmless', async () => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/auth/login',
      headers: {
        'content-type': 'application/json',
        'x-forwarded-for': '1.2.3.4, 5.6.7.8',
        'x-forwarded-host': 'evil.example',
        'x-forwarded-proto': 'https',
      },
      payload: { email: 'ada@example.com', password: 'wrong password' },
    });
    expect(res.statusCode).toBe(401);
    const sessions = await t.app.inject({
      url: '/auth/sessions',
      headers: { authorization: `Bearer ${tokens.access_token}` },
    });
    // Without BATON_TRUST_PROXY the forwarded address is ignored.
    expect(sessions.body).not.toContain('1.2.3.4');
  });

  it('a token in the Authorization header that is not Bearer is invalid_token, not a crash', async () => {
    for (const header of ['Basic Zm9vOmJhcg==', 'Bearer', 'Bearer a b', `Bearer ${'x'.repeat(20_000)}`]) {
      const res = await t.app.inject({ url: '/auth/me', headers: { authorization: header } });
      expect(res.statusCode).toBe(401);
      expect(res.json().error).toBe('invalid_token');
    }
  });
});
