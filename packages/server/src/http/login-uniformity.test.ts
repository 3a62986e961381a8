// docs/security.md item 31: unknown user, wrong password and disabled account answer
// alike, after alike work. Timing is not asserted (it would be flaky and
// prove little); instead the Argon2 library is observed, not replaced: every
// call goes through to the real `@node-rs/argon2`, and the test checks that
// each failing path runs exactly one verification against a hash with the
// same cost parameters as a real user's.
import * as argon2 from '@node-rs/argon2';
import type { LightMyRequestResponse } from 'fastify';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { signUp, type TestApp, testApp } from '../../test/helpers.js';
import { DEVICE_COOKIE } from './cookies.js';

vi.mock('@node-rs/argon2', async (importOriginal) => {
  const real = await importOriginal<typeof import('@node-rs/argon2')>();
  return { ...real, hash: vi.fn(real.hash), verify: vi.fn(real.verify) };
});

const verify = vi.mocked(argon2.verify);
const hash = vi.mocked(argon2.hash);
const PASSWORD = 'correct horse battery';
/** The cost part of a PHC string: algorithm, version, m, t, p. */
const costOf = (phc: string) => phc.split('$').slice(1, 4).join('$');

/** Everything a client sees, bar the Date header. */
function visible(res: LightMyRequestResponse, ignore: string[] = []) {
  const headers = Object.fromEntries(
    Object.entries(res.headers).filter(([name]) => name !== 'date' && !ignore.includes(name)),
  );
  return { status: res.statusCode, body: res.body, headers };
}

describe('31: login failures are indistinguishable', () => {
  let t: TestApp;
  beforeEach(async () => {
    t = await testApp({ limits: { loginFailuresPerAccount: 2, requestsPerIpPerMinute: null } });
    await signUp(t.app, 'ada@example.com', PASSWORD);
    await signUp(t.app, 'dis@example.com', PASSWORD);
    const dis = (await t.store.findUserByEmail('dis@example.com'))!;
    await t.store.setUserDisabled({ userId: dis.id, disabled: true, now: t.clock() });
  });
  afterEach(() => t.close());

  const login = (email: string, password: string, remoteAddress: string, device?: string) =>
    t.app.inject({
      method: 'POST',
      url: '/auth/login',
      remoteAddress,
      ...(device !== undefined ? { cookies: { [DEVICE_COOKIE]: device } } : {}),
      payload: { email, password },
    });

  it('unknown, malformed, wrong password and disabled: same status, body and headers, one Argon2 verify each', async () => {
    const realCost = costOf((await t.store.findUserByEmail('ada@example.com'))!.passwordHash);
    // No warm-up: the very first unknown-user login of a process costs the same as any other.
    const attempts: [string, string, string][] = [
      ['unknown user', 'nobody@example.com', PASSWORD],
      ['malformed email', 'not an email', PASSWORD],
      ['wrong password', 'ada@example.com', 'wrong password!'],
      ['disabled, right password', 'dis@example.com', PASSWORD],
      ['disabled, wrong password', 'dis@example.com', 'wrong password!'],
    ];
    const seen: ReturnType<typeof visible>[] = [];
    for (const [what, email, password] of attempts) {
      verify.mockClear();
      hash.mockClear();
      // One IP each, so no per-IP counting tells the attempts apart.
      const res = await login(email, password, `10.0.1.${seen.length}`);
      expect(res.statusCode, what).toBe(401);
      seen.push(visible(res));
      // The same work: one verification at the real hashes' cost, and no extra hashing.
      expect(verify, what).toHaveBeenCalledTimes(1);
      expect(costOf(verify.mock.calls[0]![0] as string), what).toBe(realCost);
      // A hash Argon2 cannot parse is refused at once, without the work: the verification must complete.
      await expect(verify.mock.results[0]!.value, what).resolves.toBeTypeOf('boolean');
      expect(hash, what).not.toHaveBeenCalled();
    }
    for (const other of seen) expect(other).toEqual(seen[0]);
    expect(JSON.parse(seen[0]!.body)).toEqual({
      error: 'invalid_credentials',
      error_description: 'Invalid email or password',
    });
  });

  it('a locked real account and a locked fake one look the same, and neither runs Argon2', async () => {
    for (const email of ['ada@example.com', 'ghost@example.com']) {
      await login(email, 'wrong password!', '10.0.2.1');
      await login(email, 'wrong password!', '10.0.2.2');
    }
    verify.mockClear();
    const real = await login('ada@example.com', PASSWORD, '10.0.3.1');
    const fake = await login('ghost@example.com', PASSWORD, '10.0.3.2');
    expect(real.statusCode).toBe(429);
    // Retry-After counts down in real seconds: compare it by range, everything else exactly.
    expect(visible(real, ['retry-after'])).toEqual(visible(fake, ['retry-after']));
    for (const res of [real, fake]) {
      const retry = Number(res.headers['retry-after']);
      expect(retry).toBeGreaterThan(0);
      expect(retry).toBeLessThanOrEqual(15 * 60);
    }
    expect(verify).not.toHaveBeenCalled();
  });

  it('a valid device cookie of another account changes nothing: unknown and real look the same, one Argon2 verify each', async () => {
    // bob's device is genuine, but only for bob: on logins to anyone else it must count as absent.
    await signUp(t.app, 'bob@example.com', PASSWORD);
    const bobDevice = (
      await t.app.inject({
        method: 'POST',
        url: '/auth/login',
        remoteAddress: '10.0.4.99',
        payload: { email: 'bob@example.com', password: PASSWORD },
      })
    ).json().device_token as string;
    expect(bobDevice).toMatch(/^bdv_/);
    const attempts: [string, string, string][] = [
      ['unknown user', 'nobody@example.com', PASSWORD],
      ['wrong password', 'ada@example.com', 'wrong password!'],
      ['disabled, right password', 'dis@example.com', PASSWORD],
    ];
    const seen: ReturnType<typeof visible>[] = [];
    for (const [what, email, password] of attempts) {
      verify.mockClear();
      const res = await login(email, password, `10.0.4.${seen.length}`, bobDevice);
      expect(res.statusCode, what).toBe(401);
      seen.push(visible(res));
      expect(verify, what).toHaveBeenCalledTimes(1);
    }
    for (const other of seen) expect(other).toEqual(seen[0]);
    // Locked alike, too: with another account's device, a locked real and a locked fake account answer the same 429.
    for (const email of ['ada@example.com', 'ghost@example.com']) {
      await login(email, 'wrong password!', '10.0.5.1', bobDevice);
      await login(email, 'wrong password!', '10.0.5.2', bobDevice);
    }
    verify.mockClear();
    const real = await login('ada@example.com', PASSWORD, '10.0.5.3', bobDevice);
    const fake = await login('ghost@example.com', PASSWORD, '10.0.5.4', bobDevice);
    expect(real.statusCode).toBe(429);
    expect(visible(real, ['retry-after'])).toEqual(visible(fake, ['retry-after']));
    expect(verify).not.toHaveBeenCalled();
  });
});
