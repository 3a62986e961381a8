// docs/security.md item 32, "not usable to lock a victim out for long": with the
// account lockout alone, an attacker who sends BATON_LIMIT_LOGIN_FAILURES
// wrong passwords every 15 minutes keeps a known account locked for good.
// A device that logged in to the account before carries a device token
// (cookie `__Host-baton_device` or body `device_token`) and is counted on a
// bucket of its own, so the attacker's failures never reach it.
import type { LightMyRequestResponse } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { signUp, type TestApp, testApp } from '../../test/helpers.js';
import { DEVICE_COOKIE } from './cookies.js';

const PASSWORD = 'correct horse battery';
const WRONG = 'wrong password!';
const LIMIT = 10;
const BROWSER = { origin: 'http://localhost:3000', 'sec-fetch-site': 'same-origin', 'x-baton-csrf': '1' };

/** Everything a client sees, bar the Date and Retry-After headers (the latter counts down in real time). */
function visible(res: LightMyRequestResponse) {
  const headers = Object.fromEntries(
    Object.entries(res.headers).filter(([name]) => name !== 'date' && name !== 'retry-after'),
  );
  return { status: res.statusCode, body: res.body, headers };
}

const deviceIdOf = (token: string) => /^bdv_([A-Za-z0-9_-]{22})\./.exec(token)![1]!;

describe('32: device cookies keep a known device out of the account lockout', () => {
  let t: TestApp;
  let ip = 0;
  beforeEach(async () => {
    t = await testApp({ limits: { loginFailuresPerAccount: LIMIT, requestsPerIpPerMinute: null } });
    await signUp(t.app, 'ada@example.com', PASSWORD);
    await signUp(t.app, 'bob@example.com', PASSWORD);
  });
  afterEach(() => t.close());

  /** A login from a fresh IP each time, so the per-IP failure bucket never decides. */
  const login = (
    email: string,
    password: string,
    device: { cookie?: string; body?: unknown } = {},
    extra: { headers?: Record<string, string>; mode?: 'cookie' } = {},
  ) =>
    t.app.inject({
      method: 'POST',
      url: '/auth/login',
      remoteAddress: `10.1.${Math.floor(++ip / 250)}.${ip % 250}`,
      ...(extra.headers ? { headers: extra.headers } : {}),
      ...(device.cookie !== undefined ? { cookies: { [DEVICE_COOKIE]: device.cookie } } : {}),
      payload: {
        email,
        password,
        ...(device.body !== undefined ? { device_token: device.body } : {}),
        ...(extra.mode ? { mode: extra.mode } : {}),
      },
    });

  /** Logs in and returns the device token the response carries. */
  async function deviceOf(email: string): Promise<string> {
    const res = await login(email, PASSWORD);
    expect(res.statusCode).toBe(200);
    return res.json().device_token;
  }

  async function lockOut(email: string) {
    for (let i = 0; i < LIMIT; i++) expect((await login(email, WRONG)).statusCode).toBe(401);
    expect((await login(email, PASSWORD)).statusCode).toBe(429);
  }

  it('a successful login sets __Host-baton_device (HttpOnly, Secure, SameSite=Strict, Path=/, no Domain) and returns device_token', async () => {
    const res = await login('ada@example.com', PASSWORD);
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body.device_token).toMatch(/^bdv_[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}$/);
    const header = ([] as string[])
      .concat(res.headers['set-cookie'] ?? [])
      .find((c) => c.startsWith(DEVICE_COOKIE));
    expect(header).toBeDefined();
    expect(header).toMatch(new RegExp(`^${DEVICE_COOKIE}=${body.device_token};`));
    expect(header).toMatch(/; HttpOnly/);
    expect(header).toMatch(/; Secure/);
    expect(header).toMatch(/; SameSite=Strict/);
    expect(header).toMatch(/; Path=\/(;|$)/);
    expect(header).toMatch(/; Max-Age=15552000(;|$)/);
    expect(header).not.toMatch(/Domain=/i);
    // Only the secret's hash is stored.
    const stored = await t.store.findTrustedDevice(deviceIdOf(body.device_token));
    expect(stored?.email).toBe('ada@example.com');
    expect(stored?.device.secretHash).not.toContain(body.device_token.split('.')[1]);
  });

  it('a second login with the device token keeps the same device, by cookie or by body', async () => {
    const token = await deviceOf('ada@example.com');
    t.clock.advance(60_000);
    const byCookie = await login('ada@example.com', PASSWORD, { cookie: token });
    expect(byCookie.statusCode).toBe(200);
    expect(byCookie.json().device_token).toBe(token);
    expect(byCookie.cookies.find((c) => c.name === DEVICE_COOKIE)?.value).toBe(token);
    expect((await t.store.findTrustedDevice(deviceIdOf(token)))?.device.lastUsedAt).toBe(t.clock());
    const byBody = await login('ada@example.com', PASSWORD, { body: token });
    expect(byBody.json().device_token).toBe(token);
    // Without one, a new device is remembered.
    expect((await login('ada@example.com', PASSWORD)).json().device_token).not.toBe(token);
  });

  it('in cookie mode the device token travels only in its cookie, after the refresh cookie', async () => {
    const res = await login('ada@example.com', PASSWORD, {}, { headers: BROWSER, mode: 'cookie' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).not.toHaveProperty('device_token');
    const names = res.cookies.map((c) => c.name);
    expect(names).toEqual(['__Secure-baton_rt', DEVICE_COOKIE]);
    expect(res.body).not.toContain(res.cookies[1]!.value);
  });

  it('the attack: an account locked by an attacker still opens for its owner’s device, and only for it', async () => {
    const victim = await deviceOf('ada@example.com');
    await lockOut('ada@example.com');
    await lockOut('ghost@example.com');
    // The owner's device logs in with the right password, by cookie or by body, again and again.
    for (let i = 0; i < 3; i++) {
      expect((await login('ada@example.com', PASSWORD, { cookie: victim })).statusCode).toBe(200);
      expect((await login('ada@example.com', PASSWORD, { body: victim })).statusCode).toBe(200);
    }
    // The owner's success does not lift the attacker's lock, and to him a real and a fake account still look alike.
    const real = await login('ada@example.com', PASSWORD);
    const fake = await login('ghost@example.com', PASSWORD);
    expect(real.statusCode).toBe(429);
    expect(visible(real)).toEqual(visible(fake));
    expect(Number(real.headers['retry-after'])).toBeLessThanOrEqual(900);
  });

  it('a device has its own limit: its failures lock it, not the account nor other devices', async () => {
    const first = await deviceOf('ada@example.com');
    const second = await deviceOf('ada@example.com');
    for (let i = 0; i < LIMIT; i++)
      expect((await login('ada@example.com', WRONG, { cookie: first })).statusCode).toBe(401);
    const locked = await login('ada@example.com', PASSWORD, { cookie: first });
    expect(locked.statusCode).toBe(429);
    expect(locked.json().error).toBe('too_many_requests');
    expect(Number(locked.headers['retry-after'])).toBeGreaterThan(0);
    expect((await login('ada@example.com', PASSWORD, { body: first })).statusCode).toBe(429);
    // The account's own bucket saw none of it: another device and a fresh client still get in.
    expect((await login('ada@example.com', PASSWORD, { cookie: second })).statusCode).toBe(200);
    expect((await login('ada@example.com', PASSWORD)).statusCode).toBe(200);
  });

  it('a device token of account A presented on a login to B changes nothing for B', async () => {
    const adaDevice = await deviceOf('ada@example.com');
    // Failures on B with A's device count on B's account bucket…
    for (let i = 0; i < LIMIT; i++)
      expect((await login('bob@example.com', WRONG, { cookie: adaDevice })).statusCode).toBe(401);
    expect((await login('bob@example.com', PASSWORD)).statusCode).toBe(429);
    // …and A's device does not open B's lock.
    expect((await login('bob@example.com', PASSWORD, { cookie: adaDevice })).statusCode).toBe(429);
    expect((await login('bob@example.com', PASSWORD, { body: adaDevice })).statusCode).toBe(429);
    // A's device was not charged for them: it still logs in to A.
    expect((await login('ada@example.com', PASSWORD, { cookie: adaDevice })).statusCode).toBe(200);
  });

  it('a login to B with A’s device token gets B a device of its own', async () => {
    const adaDevice = await deviceOf('ada@example.com');
    const res = await login('bob@example.com', PASSWORD, { cookie: adaDevice });
    expect(res.statusCode).toBe(200);
    const bobDevice = res.json().device_token;
    expect(deviceIdOf(bobDevice)).not.toBe(deviceIdOf(adaDevice));
    expect((await t.store.findTrustedDevice(deviceIdOf(bobDevice)))?.email).toBe('bob@example.com');
    expect((await t.store.findTrustedDevice(deviceIdOf(adaDevice)))?.email).toBe('ada@example.com');
  });

  it('a forged, tampered, expired or hostile device value counts as none: the lock holds, never a 5xx', async () => {
    const real = await deviceOf('ada@example.com');
    const [prefix, secret] = real.split('.') as [string, string];
    const flipped = `${prefix}.${secret[0] === 'A' ? 'B' : 'A'}${secret.slice(1)}`;
    const otherId = `bdv_${'A'.repeat(22)}.${secret}`;
    await lockOut('ada@example.com');
    const hostile: unknown[] = [
      flipped,
      otherId,
      `${real}x`,
      real.toUpperCase(),
      'x'.repeat(5000),
      '__proto__',
      'constructor',
      '',
      'bdv_',
      `${prefix}.${secret.slice(0, -1)}`,
    ];
    for (const value of hostile) {
      for (const where of ['cookie', 'body'] as const) {
        const res = await login('ada@example.com', PASSWORD, { [where]: value as string });
        expect(res.statusCode, `${where}: ${String(value).slice(0, 20)}`).toBe(429);
      }
    }
    // The body wins over the cookie: a bad body value is not rescued by a good cookie.
    expect(
      (
        await t.app.inject({
          method: 'POST',
          url: '/auth/login',
          cookies: { [DEVICE_COOKIE]: real },
          payload: { email: 'ada@example.com', password: PASSWORD, device_token: flipped },
        })
      ).statusCode,
    ).toBe(429);
    // A device unused for longer than its 180 days is no longer trusted.
    t.clock.advance(181 * 86_400_000);
    expect((await login('ada@example.com', PASSWORD, { cookie: real })).statusCode).toBe(429);
  });

  it('a non-string device_token is a 400 like any other wrong type, and the token never appears in an error', async () => {
    const real = await deviceOf('ada@example.com');
    for (const value of [1, { $ne: null }, [real], null]) {
      const res = await login('ada@example.com', PASSWORD, { body: value });
      expect(res.statusCode).toBe(400);
      expect(res.json().error).toBe('invalid_request');
      expect(res.body).not.toContain(real.split('.')[1]);
    }
    const failed = await login('ada@example.com', WRONG, { cookie: real });
    expect(failed.statusCode).toBe(401);
    expect(failed.body).not.toContain(real.split('.')[1]);
    expect(failed.headers['set-cookie']).toBeUndefined();
  });
});
