import { afterEach, describe, expect, it } from 'vitest';
import { signUp, type TestApp, testApp } from '../../test/helpers.js';

/** SECURITY.md 32: brute force is limited per account and per IP, alike for real and fake accounts. */
describe('rate limits', () => {
  let t: TestApp | undefined;
  afterEach(() => t?.close());

  const login = (app: TestApp['app'], email: string, password: string, ip = '10.0.0.1') =>
    app.inject({ method: 'POST', url: '/auth/login', remoteAddress: ip, payload: { email, password } });

  it('after N failures an account gets 429 with Retry-After, the same for a real and a fake account', async () => {
    t = await testApp({ limits: { loginFailuresPerAccount: 3, requestsPerIpPerMinute: null } });
    await signUp(t.app);
    for (const email of ['ada@example.com', 'ghost@example.com']) {
      for (let i = 0; i < 3; i++)
        expect((await login(t.app, email, 'wrong password', `10.0.1.${i}`)).statusCode).toBe(401);
    }
    const real = await login(t.app, 'ada@example.com', 'correct horse battery', '10.0.2.1');
    const fake = await login(t.app, 'ghost@example.com', 'whatever password', '10.0.2.2');
    for (const res of [real, fake]) {
      expect(res.statusCode).toBe(429);
      expect(res.json().error).toBe('too_many_requests');
      const retry = Number(res.headers['retry-after']);
      // A victim is locked out for one window at most (15 minutes).
      expect(retry).toBeGreaterThan(0);
      expect(retry).toBeLessThanOrEqual(900);
    }
    expect(real.body).toBe(fake.body);
    // Other accounts are unaffected.
    await signUp(t.app, 'bob@example.com');
    expect((await login(t.app, 'bob@example.com', 'correct horse battery')).statusCode).toBe(200);
  });

  it('a success clears the failure count', async () => {
    t = await testApp({ limits: { loginFailuresPerAccount: 3, requestsPerIpPerMinute: null } });
    await signUp(t.app);
    for (let round = 0; round < 3; round++) {
      expect((await login(t.app, 'ada@example.com', 'wrong password')).statusCode).toBe(401);
      expect((await login(t.app, 'ada@example.com', 'wrong password')).statusCode).toBe(401);
      expect((await login(t.app, 'ada@example.com', 'correct horse battery')).statusCode).toBe(200);
    }
  });

  it('one IP failing across many accounts is limited too', async () => {
    t = await testApp({ limits: { loginFailuresPerAccount: 2, requestsPerIpPerMinute: null } });
    let last = 0;
    for (let i = 0; i < 21; i++)
      last = (await login(t.app, `user${i}@example.com`, 'wrong password', '10.9.9.9')).statusCode;
    expect(last).toBe(429);
    expect((await login(t.app, 'other@example.com', 'wrong password', '10.9.9.10')).statusCode).toBe(401);
  });

  it('requests per IP per minute on /auth are limited; health checks are not', async () => {
    t = await testApp({ limits: { loginFailuresPerAccount: null, requestsPerIpPerMinute: 5 } });
    const statuses: number[] = [];
    for (let i = 0; i < 7; i++) {
      statuses.push(
        (await t.app.inject({ method: 'POST', url: '/auth/refresh', remoteAddress: '10.1.1.1', payload: {} }))
          .statusCode,
      );
    }
    expect(statuses.slice(0, 5).every((s) => s === 401)).toBe(true);
    expect(statuses.slice(5)).toEqual([429, 429]);
    expect((await t.app.inject({ url: '/healthz', remoteAddress: '10.1.1.1' })).statusCode).toBe(200);
    expect(
      (await t.app.inject({ method: 'POST', url: '/auth/refresh', remoteAddress: '10.1.1.2', payload: {} }))
        .statusCode,
    ).toBe(401);
  });

  it('X-Forwarded-For is honoured only from a trusted proxy', async () => {
    t = await testApp({
      limits: { loginFailuresPerAccount: null, requestsPerIpPerMinute: 2 },
      trustProxy: ['127.0.0.1'],
    });
    const hit = (xff: string, remoteAddress: string) =>
      t!.app.inject({
        method: 'POST',
        url: '/auth/refresh',
        remoteAddress,
        headers: { 'x-forwarded-for': xff },
        payload: {},
      });
    // Through the trusted proxy, each client address has its own budget.
    for (let i = 0; i < 4; i++) expect((await hit(`203.0.113.${i}`, '127.0.0.1')).statusCode).toBe(401);
    // From an untrusted peer the header is ignored: spoofing fresh addresses does not reset the budget.
    const spoofed = [];
    for (let i = 0; i < 3; i++) spoofed.push((await hit(`198.51.100.${i}`, '10.2.2.2')).statusCode);
    expect(spoofed).toEqual([401, 401, 429]);
  });
});
