import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { signUp, type TestApp, testApp } from '../../test/helpers.js';

/** docs/security.md item 32: brute force is limited per account and per IP, alike for real and fake accounts. */
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

  const refresh = (url: string, remoteAddress: string) =>
    t!.app.inject({ method: 'POST', url, remoteAddress, payload: {} }).then((r) => r.statusCode);

  it('a percent-encoded path reaches the same route and is counted on the same budget', async () => {
    t = await testApp({ limits: { loginFailuresPerAccount: null, requestsPerIpPerMinute: 4 } });
    const urls = ['/%61uth/refresh', '/auth/refresh', '/%61%75%74%68/refresh', '/auth/%72efresh'];
    const statuses = [];
    for (const url of [...urls, ...urls]) statuses.push(await refresh(url, '10.3.3.3'));
    // 401: each spelling reached the real refresh route (no token); the fifth and later are over the limit.
    expect(statuses).toEqual([401, 401, 401, 401, 429, 429, 429, 429]);
  });

  it('an absolute-form request target (RFC 9112 §3.2.2) is counted like the origin form', async () => {
    t = await testApp({ limits: { loginFailuresPerAccount: null, requestsPerIpPerMinute: 2 } });
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = t.app.server.address() as AddressInfo;
    /** One raw request on its own connection; resolves with the status code. */
    const raw = (target: string) =>
      new Promise<number>((resolve, reject) => {
        const socket = connect(port, '127.0.0.1');
        let data = '';
        socket.setTimeout(10_000, () => socket.destroy(new Error('no answer')));
        socket.on('data', (chunk) => {
          data += chunk.toString('latin1');
        });
        socket.on('close', () => resolve(Number(data.split(' ')[1])));
        socket.on('error', reject);
        socket.end(
          `POST ${target} HTTP/1.1\r\nHost: localhost:${port}\r\nContent-Type: application/json\r\n` +
            'Content-Length: 2\r\nConnection: close\r\n\r\n{}',
        );
      });
    const target = `http://localhost:${port}/auth/refresh`;
    const statuses = [await raw(target), await raw(target), await raw(target), await raw('/auth/refresh')];
    expect(statuses).toEqual([401, 401, 429, 429]);
  });

  it('IPv6 clients share a bucket per /64; an IPv4-mapped address is its IPv4 address', async () => {
    t = await testApp({ limits: { loginFailuresPerAccount: null, requestsPerIpPerMinute: 2 } });
    // One /64 is what a single host or home network gets: a new address in it is free to take.
    expect(await refresh('/auth/refresh', '2001:db8:1:2::1')).toBe(401);
    expect(await refresh('/auth/refresh', '2001:db8:1:2:ffff:ffff:ffff:fffe')).toBe(401);
    expect(await refresh('/auth/refresh', '2001:0db8:0001:0002:0:0:0:77')).toBe(429);
    // The neighbouring /64 is someone else.
    expect(await refresh('/auth/refresh', '2001:db8:1:3::1')).toBe(401);
    expect(await refresh('/auth/refresh', '10.4.4.4')).toBe(401);
    expect(await refresh('/auth/refresh', '::ffff:10.4.4.4')).toBe(401);
    expect(await refresh('/auth/refresh', '10.4.4.4')).toBe(429);
  });
});
