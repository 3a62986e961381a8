import type { FastifyInstance } from 'fastify';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ISSUER, signUp, type TestClock, tempStore, testClock } from '../../test/helpers.js';
import { isBatonError } from '../core/errors.js';
import { createServer } from '../http/app.js';
import type { Store } from '../store/store.js';
import { runKeys } from './keys.js';

const MIN = 60_000;

describe('baton keys (moved clock, in-process server on the same database)', () => {
  let store: Store;
  let file: string;
  let dispose: () => Promise<void>;
  let clock: TestClock;
  let app: FastifyInstance;

  beforeEach(async () => {
    ({ store, file, dispose } = await tempStore());
    clock = testClock();
    app = await createServer({ store, issuer: ISSUER, now: clock });
    await app.ready();
  });
  afterEach(async () => {
    await app.close();
    await dispose();
  });

  const keys = async (...args: string[]) => {
    let text = '';
    await runKeys([...args, '--database-url', `sqlite:${file}`], {}, (s) => (text += s), clock);
    return text;
  };
  const jwks = async () => (await app.inject({ url: '/.well-known/jwks.json' })).json();
  const kidOf = (token: string) => decodeProtectedHeader(token).kid ?? '';
  const verify = async (token: string) =>
    jwtVerify(token, createLocalJWKSet(await jwks()), {
      issuer: ISSUER,
      audience: ISSUER,
      typ: 'at+jwt',
      currentDate: new Date(clock()),
    });
  const me = (token: string) =>
    app.inject({ url: '/auth/me', headers: { authorization: `Bearer ${token}` } });

  it('rotates without downtime: published first, signs later, old key leaves once its tokens expired', async () => {
    const before = await signUp(app);
    const oldKid = kidOf(before.access_token);

    const rotated = await keys('rotate');
    const newKid = /Added key (\S+)/.exec(rotated)?.[1];
    expect(newKid).toBeDefined();
    expect(rotated).toContain(`Key ${oldKid} retires at ${new Date(clock() + 6 * MIN).toISOString()}`);
    await app.baton.keys.reload(); // what the poll timer does

    // Published at once, but tokens are still signed by the old key until the propagation delay has passed.
    expect((await jwks()).keys.map((k: { kid: string }) => k.kid).sort()).toEqual([oldKid, newKid].sort());
    expect(kidOf((await signUp(app)).access_token)).toBe(oldKid);
    expect(await keys('list')).toMatch(new RegExp(`${newKid}\\s+ES256\\s+pending`));

    clock.advance(6 * MIN);
    const after = await signUp(app);
    expect(kidOf(after.access_token)).toBe(newKid);
    // A token signed before the rotation still verifies, locally and at Baton.
    expect((await verify(before.access_token)).payload.sid).toBe(before.session_id);
    expect((await verify(after.access_token)).payload.sid).toBe(after.session_id);
    expect((await me(before.access_token)).statusCode).toBe(200);
    const listed = await keys('list');
    expect(listed).toMatch(new RegExp(`${oldKid}\\s+ES256\\s+retired`));
    expect(listed).toMatch(new RegExp(`${newKid}\\s+ES256\\s+signing`));

    // Refreshing the old session now yields new-key tokens.
    const rotatedSession = await app.inject({
      method: 'POST',
      url: '/auth/refresh',
      payload: { refresh_token: before.refresh_token },
    });
    expect(kidOf(rotatedSession.json().access_token)).toBe(newKid);

    // Every token of the old key has expired (15 min) plus leeway: it leaves the JWKS, then the store.
    clock.advance(15 * MIN + 60_000);
    expect((await jwks()).keys.map((k: { kid: string }) => k.kid)).toEqual([newKid]);
    expect(await keys('list')).toMatch(new RegExp(`${oldKid}\\s+ES256\\s+expired`));
    const again = await keys('rotate', '--activate-in', '10m');
    expect(again).toContain('Deleted 1 expired key(s)');
    expect((await store.listSigningKeys()).map((k) => k.kid)).not.toContain(oldKid);
  });

  it('rotate --now signs at once; retire refuses the last signer', async () => {
    const first = await signUp(app);
    const oldKid = kidOf(first.access_token);
    const out = await keys('rotate', '--now');
    const newKid = /Added key (\S+)/.exec(out)?.[1] ?? '';
    await app.baton.keys.reload();
    expect(kidOf((await signUp(app)).access_token)).toBe(newKid);
    expect((await me(first.access_token)).statusCode).toBe(200);

    const refused = await keys('retire', newKid).catch((e: unknown) => e);
    expect(isBatonError(refused, 'invalid_request')).toBe(true);
    const already = await keys('retire', oldKid).catch((e: unknown) => e);
    expect(isBatonError(already, 'invalid_request')).toBe(true);
    const unknown = await keys('retire', 'nope').catch((e: unknown) => e);
    expect(isBatonError(unknown, 'not_found')).toBe(true);
    expect(await keys('rotate', '--now', '--activate-in', '1m').catch((e: Error) => e.message)).toMatch(
      /either --now or --activate-in/,
    );
  });

  it('never prints private key material', async () => {
    await keys('rotate', '--now');
    const text = (await keys('list')) + (await keys('--help'));
    for (const k of await store.listSigningKeys()) {
      const d = (JSON.parse(k.privateJwk) as { d: string }).d;
      expect(text).not.toContain(d);
    }
    expect(text).toContain('kid');
  });
});
