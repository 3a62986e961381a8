import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { type TestClock, tempStore, testClock } from '../../test/helpers.js';
import type { Store } from '../store/store.js';
import { isBatonError } from './errors.js';
import {
  describeSigningKeys,
  generateSigningKey,
  KeyRing,
  maxAccessTokenLifetime,
  pruneSigningKeys,
  RETIRED_KEY_GRACE_MS,
  retireSigningKey,
  rotateSigningKey,
} from './signing-keys.js';

const MIN = 60_000;
const TTL = 15 * MIN;

const code = (p: Promise<unknown>) =>
  p.then(
    () => 'ok',
    (e: unknown) => (isBatonError(e) ? e.code : `unexpected: ${String(e)}`),
  );

describe('signing-key rotation', () => {
  let store: Store;
  let dispose: () => Promise<void>;
  let clock: TestClock;
  let ring: KeyRing;
  const kids = () => ring.jwks(clock()).keys.map((k) => k.kid);

  beforeEach(async () => {
    ({ store, dispose } = await tempStore());
    clock = testClock();
    ring = new KeyRing({ store, now: clock, alg: 'ES256', maxTokenLifetime: TTL });
    await ring.init();
  });
  afterEach(() => dispose());

  it('publishes a new key before it signs, then retires the old one only once its tokens have expired', async () => {
    const old = ring.signingKey(clock()).kid;
    const { key, retiring } = await rotateSigningKey(store, {
      alg: 'ES256',
      now: clock(),
      activateIn: 6 * MIN,
    });
    expect(retiring).toEqual([old]);
    await ring.reload();

    // Published at once, signing only from activatesAt.
    expect(kids().sort()).toEqual([old, key.kid].sort());
    expect(ring.signingKey(clock()).kid).toBe(old);
    clock.advance(6 * MIN - 1);
    expect(ring.signingKey(clock()).kid).toBe(old);
    clock.advance(1);
    expect(ring.signingKey(clock()).kid).toBe(key.kid);

    // The old key still verifies what it signed until its last token has expired (+ leeway).
    expect(ring.find(old, clock())).toBeDefined();
    clock.advance(TTL + RETIRED_KEY_GRACE_MS - 1);
    expect(kids().sort()).toEqual([old, key.kid].sort());
    clock.advance(1);
    expect(kids()).toEqual([key.kid]);
    expect(ring.find(old, clock())).toBeUndefined();

    // Then it may be deleted from the store.
    expect(await pruneSigningKeys(store, clock(), TTL)).toBe(1);
    expect((await store.listSigningKeys()).map((k) => k.kid)).toEqual([key.kid]);
  });

  it('keeps a retired key published as long as the longest-lived client token', async () => {
    await store.createClient({
      id: 'slow',
      name: 'slow',
      type: 'public',
      secretHash: null,
      allowedOrigins: [],
      allowedScopes: [],
      audience: null,
      accessTtl: 60 * MIN,
      refreshIdleTtl: null,
      sessionMaxTtl: null,
      createdAt: clock(),
    });
    const old = ring.signingKey(clock()).kid;
    await rotateSigningKey(store, { alg: 'ES256', now: clock(), activateIn: 0 });
    await ring.reload();
    expect(ring.maxTokenLifetime).toBe(60 * MIN);
    expect(await maxAccessTokenLifetime(store, TTL)).toBe(60 * MIN);
    clock.advance(30 * MIN);
    expect(kids()).toContain(old);
    clock.advance(30 * MIN + RETIRED_KEY_GRACE_MS);
    expect(kids()).not.toContain(old);
  });

  it('refuses to retire the last key that can sign', async () => {
    const only = ring.signingKey(clock()).kid;
    expect(await code(retireSigningKey(store, only, clock()))).toBe('invalid_request');
    expect(await code(retireSigningKey(store, 'no-such-kid', clock()))).toBe('not_found');

    // A pending successor does not count yet; nor may the pending key be retired while the old one is scheduled to go.
    const { key } = await rotateSigningKey(store, { alg: 'ES256', now: clock(), activateIn: 6 * MIN });
    expect(await code(retireSigningKey(store, only, clock()))).toBe('invalid_request');
    expect(await code(retireSigningKey(store, key.kid, clock()))).toBe('invalid_request');
    clock.advance(6 * MIN);
    expect(await code(retireSigningKey(store, only, clock()))).toBe('invalid_request'); // already retired by the rotation
    expect(await code(retireSigningKey(store, key.kid, clock()))).toBe('invalid_request'); // the only signer now
    await ring.reload();
    expect(ring.signingKey(clock()).kid).toBe(key.kid);
  });

  it('retires a standby key at once when a newer one signs', async () => {
    const old = ring.signingKey(clock()).kid;
    // A key added outside `rotate` (e.g. imported): the old one is not scheduled to retire.
    const extra = generateSigningKey('ES256', clock(), clock());
    await store.addSigningKey({ ...extra, kid: `~${extra.kid}` });
    await ring.reload();
    const status = describeSigningKeys(await store.listSigningKeys(), clock(), TTL);
    expect(status.map((s) => s.state).sort()).toEqual(['signing', 'standby']);
    const retired = await retireSigningKey(store, old, clock());
    expect(retired.retiredAt).toBe(clock());
    await ring.reload();
    expect(ring.signingKey(clock()).kid).toBe(`~${extra.kid}`);
    expect(
      describeSigningKeys(await store.listSigningKeys(), clock(), TTL).find((s) => s.kid === old)?.state,
    ).toBe('retired');
  });

  it('two rotations racing never retire each other’s keys', async () => {
    const t = clock();
    const [a, b] = await Promise.all([
      rotateSigningKey(store, { alg: 'ES256', now: t, activateIn: 6 * MIN }),
      rotateSigningKey(store, { alg: 'ES256', now: t + 1, activateIn: 6 * MIN }),
    ]);
    await ring.reload();
    // Whatever the interleaving, at every later moment some key can sign…
    for (const dt of [0, 6 * MIN, 6 * MIN + 1, 6 * MIN + 2, 60 * MIN]) {
      expect(() => ring.signingKey(t + dt)).not.toThrow();
    }
    // …and in the end the one of the two that nobody retired.
    const records = await store.listSigningKeys();
    const survivors = records.filter((r) => r.retiredAt === null).map((r) => r.kid);
    expect(survivors).toHaveLength(1);
    expect([a.key.kid, b.key.kid]).toContain(survivors[0]);
    expect(ring.signingKey(t + 60 * MIN).kid).toBe(survivors[0]);
  });

  it('the latest rotation wins over an earlier one still pending', async () => {
    const slow = await rotateSigningKey(store, { alg: 'ES256', now: clock(), activateIn: 60 * MIN });
    const fast = await rotateSigningKey(store, { alg: 'ES256', now: clock(), activateIn: 0 });
    expect(fast.retiring).toContain(slow.key.kid);
    await ring.reload();
    expect(ring.signingKey(clock()).kid).toBe(fast.key.kid);
    expect(ring.signingKey(clock() + 61 * MIN).kid).toBe(fast.key.kid);
  });

  it('describes each key’s state', async () => {
    const old = ring.signingKey(clock()).kid;
    const { key } = await rotateSigningKey(store, { alg: 'EdDSA', now: clock(), activateIn: 6 * MIN });
    const at = (t: number) =>
      store
        .listSigningKeys()
        .then((r) => Object.fromEntries(describeSigningKeys(r, t, TTL).map((s) => [s.kid, s.state])));
    expect(await at(clock())).toEqual({ [old]: 'signing', [key.kid]: 'pending' });
    expect(await at(clock() + 6 * MIN)).toEqual({ [old]: 'retired', [key.kid]: 'signing' });
    expect(await at(clock() + 6 * MIN + TTL + RETIRED_KEY_GRACE_MS)).toEqual({
      [old]: 'expired',
      [key.kid]: 'signing',
    });
    expect(key.alg).toBe('EdDSA');
  });

  it('a polling ring picks up a rotation made elsewhere', async () => {
    const other = new KeyRing({ store, now: clock, alg: 'ES256', maxTokenLifetime: TTL });
    await other.init();
    const stop = other.startPolling(10, () => {});
    try {
      const { key } = await rotateSigningKey(store, { alg: 'ES256', now: clock(), activateIn: 0 });
      await vi.waitFor(() => expect(other.signingKey(clock()).kid).toBe(key.kid), {
        timeout: 5000,
        interval: 10,
      });
    } finally {
      stop();
    }
  });

  it('a polling ring stops signing with a key retired elsewhere within about a second, whatever its poll interval', async () => {
    const other = new KeyRing({ store, now: clock, alg: 'ES256', maxTokenLifetime: TTL });
    await other.init();
    // The default interval: the full re-read would come only after a minute.
    const stop = other.startPolling(MIN, () => {});
    try {
      const old = other.signingKey(clock()).kid;
      // `baton keys rotate --now` in another process.
      const { key, retiring } = await rotateSigningKey(store, { alg: 'ES256', now: clock(), activateIn: 0 });
      expect(retiring).toContain(old);
      await vi.waitFor(() => expect(other.signingKey(clock()).kid).toBe(key.kid), {
        timeout: 5000,
        interval: 20,
      });
      // `baton keys retire` of the signing key, with an older key still active to take over.
      const spare = generateSigningKey('ES256', clock() - 1);
      await store.addSigningKey(spare);
      await retireSigningKey(store, key.kid, clock());
      await vi.waitFor(() => expect(other.signingKey(clock()).kid).toBe(spare.kid), {
        timeout: 5000,
        interval: 20,
      });
    } finally {
      stop();
    }
  });

  it('a full reload asked for during a keys-only check still reads the clients’ lifetimes', async () => {
    await store.createClient({
      id: 'slow',
      name: 'slow',
      type: 'public',
      secretHash: null,
      allowedOrigins: [],
      allowedScopes: [],
      audience: null,
      accessTtl: 60 * MIN,
      refreshIdleTtl: null,
      sessionMaxTtl: null,
      createdAt: clock(),
    });
    const check = ring.reloadKeys();
    await ring.reload();
    await check;
    expect(ring.maxTokenLifetime).toBe(60 * MIN);
  });

  it('reloads for unknown kids at most about once a second, however many arrive', async () => {
    let reads = 0;
    const counting: Store = {
      ...store,
      listSigningKeys: () => {
        reads++;
        return store.listSigningKeys();
      },
    };
    const r = new KeyRing({ store: counting, now: clock, alg: 'ES256', maxTokenLifetime: TTL });
    await r.reload();
    reads = 0;
    await Promise.all(Array.from({ length: 200 }, () => r.reloadForUnknownKid()));
    for (let i = 0; i < 200; i++) await r.reloadForUnknownKid();
    expect(reads).toBeLessThanOrEqual(1);
  });
});
