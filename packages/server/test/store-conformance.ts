import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ClientRecord, NewSession, SessionRecord, Store } from '../src/store/store.js';

/**
 * The one conformance suite every `Store` adapter runs against a real
 * database. `open` returns a fresh, empty, migrated store; `openSecond`
 * opens another connection to the same database, to prove the
 * rotation promise across connections, as separate server instances would.
 */
export function storeConformance(
  name: string,
  factory: { open(): Promise<Store>; openSecond(of: Store): Promise<Store>; cleanup?(): Promise<void> },
): void {
  describe(`Store conformance: ${name}`, () => {
    let store: Store;
    const T0 = 1_800_000_000_000;

    beforeEach(async () => {
      store = await factory.open();
    });
    afterEach(async () => {
      await store.close();
      await factory.cleanup?.();
    });

    const client = (id: string, extra: Partial<ClientRecord> = {}): ClientRecord => ({
      id,
      name: id,
      type: 'public',
      secretHash: null,
      allowedOrigins: [],
      allowedScopes: [],
      audience: null,
      accessTtl: null,
      refreshIdleTtl: null,
      sessionMaxTtl: null,
      createdAt: T0,
      ...extra,
    });

    async function userWithSession(suffix = 'a', sessionId = `ses_${suffix}`, tokenId = `tok_${suffix}`) {
      await store.createClient(client('app'), { ifMissing: true });
      const existing = await store.findUserByEmail(`${suffix}@example.com`);
      const user =
        existing ??
        (await store.createUser({
          id: `usr_${suffix}`,
          email: `${suffix}@example.com`,
          passwordHash: 'h',
          createdAt: T0,
        }));
      const session: NewSession['session'] = {
        id: sessionId,
        userId: user.id,
        clientId: 'app',
        scope: null,
        createdAt: T0,
        lastUsedAt: T0,
        idleExpiresAt: T0 + 1000,
        expiresAt: T0 + 5000,
        userAgent: 'test',
        ip: '127.0.0.1',
      };
      await store.createSession({ session, firstToken: { id: tokenId, secretHash: 'hash0' } });
      return { user, session };
    }

    it('migrate is idempotent', async () => {
      expect(await store.migrate()).toBe(0);
    });

    it('creates users and refuses a duplicate email with email_taken', async () => {
      await store.createUser({ id: 'usr_1', email: 'x@example.com', passwordHash: 'h1', createdAt: T0 });
      await expect(
        store.createUser({ id: 'usr_2', email: 'x@example.com', passwordHash: 'h2', createdAt: T0 }),
      ).rejects.toMatchObject({ code: 'email_taken' });
      expect((await store.findUserByEmail('x@example.com'))?.id).toBe('usr_1');
      expect(await store.findUserById('usr_2')).toBeNull();
      expect((await store.listUsers()).map((u) => u.id)).toEqual(['usr_1']);
    });

    it('stores clients and creates the default one only if missing', async () => {
      await store.createClient(client('app', { allowedScopes: ['read'] }));
      await store.createClient(client('app', { allowedScopes: ['changed'] }), { ifMissing: true });
      expect((await store.findClient('app'))?.allowedScopes).toEqual(['read']);
      expect(await store.findClient('nope')).toBeNull();
    });

    it('creates a session with its first token and reads it back', async () => {
      const { session } = await userWithSession();
      const state = await store.findRefreshToken('tok_a');
      expect(state?.token).toMatchObject({
        id: 'tok_a',
        sessionId: session.id,
        usedAt: null,
        successorId: null,
      });
      expect(state?.session).toMatchObject({ id: session.id, revokedAt: null, expiresAt: T0 + 5000 });
      expect(state?.successor).toBeNull();
      expect(await store.findRefreshToken('missing')).toBeNull();
    });

    it('rotates once: marks the parent used, links the successor, touches the session', async () => {
      await userWithSession();
      const won = await store.rotateRefreshToken({
        parentId: 'tok_a',
        successor: { id: 'tok_b', secretHash: 'hash1' },
        now: T0 + 10,
        idleExpiresAt: T0 + 1010,
      });
      expect(won).toBe(true);
      const parent = await store.findRefreshToken('tok_a');
      expect(parent?.token).toMatchObject({ usedAt: T0 + 10, successorId: 'tok_b' });
      expect(parent?.successor).toMatchObject({
        id: 'tok_b',
        parentId: 'tok_a',
        usedAt: null,
        secretHash: 'hash1',
      });
      expect(parent?.session).toMatchObject({ lastUsedAt: T0 + 10, idleExpiresAt: T0 + 1010 });
      // A second rotation of the same parent loses and writes nothing.
      expect(
        await store.rotateRefreshToken({
          parentId: 'tok_a',
          successor: { id: 'tok_c', secretHash: 'x' },
          now: T0 + 20,
          idleExpiresAt: T0 + 2000,
        }),
      ).toBe(false);
      expect(await store.findRefreshToken('tok_c')).toBeNull();
      expect((await store.findRefreshToken('tok_a'))?.token.successorId).toBe('tok_b');
    });

    it('of many concurrent rotations of one token exactly one wins', async () => {
      await userWithSession();
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          store.rotateRefreshToken({
            parentId: 'tok_a',
            successor: { id: `succ_${i}`, secretHash: `h${i}` },
            now: T0 + 1,
            idleExpiresAt: T0 + 100,
          }),
        ),
      );
      expect(results.filter(Boolean)).toHaveLength(1);
    });

    it('of concurrent rotations over two connections exactly one wins', async () => {
      await userWithSession();
      const other = await factory.openSecond(store);
      try {
        const results = await Promise.all(
          Array.from({ length: 20 }, (_, i) =>
            (i % 2 ? other : store).rotateRefreshToken({
              parentId: 'tok_a',
              successor: { id: `succ_${i}`, secretHash: `h${i}` },
              now: T0 + 1,
              idleExpiresAt: T0 + 100,
            }),
          ),
        );
        expect(results.filter(Boolean)).toHaveLength(1);
      } finally {
        await other.close();
      }
    });

    it('does not rotate a token of a revoked session', async () => {
      await userWithSession();
      expect(await store.revokeSession({ sessionId: 'ses_a', reason: 'logout', now: T0 + 1 })).toBe(true);
      expect(await store.revokeSession({ sessionId: 'ses_a', reason: 'logout', now: T0 + 2 })).toBe(false);
      expect(
        await store.rotateRefreshToken({
          parentId: 'tok_a',
          successor: { id: 'tok_b', secretHash: 'h' },
          now: T0 + 3,
          idleExpiresAt: T0 + 100,
        }),
      ).toBe(false);
      const s = await store.findSession('ses_a');
      expect(s).toMatchObject({ revokedAt: T0 + 1, revokedReason: 'logout' });
    });

    it('lists only live sessions, newest use first', async () => {
      await userWithSession('a', 'ses_1', 'tok_1');
      await userWithSession('a', 'ses_2', 'tok_2');
      await userWithSession('a', 'ses_3', 'tok_3');
      await store.rotateRefreshToken({
        parentId: 'tok_2',
        successor: { id: 'tok_2b', secretHash: 'h' },
        now: T0 + 50,
        idleExpiresAt: T0 + 900,
      });
      await store.revokeSession({ sessionId: 'ses_3', reason: 'logout', now: T0 + 60 });
      const live = await store.listActiveSessions('usr_a', T0 + 100);
      expect(live.map((s: SessionRecord) => s.id)).toEqual(['ses_2', 'ses_1']);
      // ses_2's rotation moved its idle deadline to T0+900; ses_1 idles out at T0+1000.
      expect((await store.listActiveSessions('usr_a', T0 + 950)).map((s) => s.id)).toEqual(['ses_1']);
      expect((await store.listActiveSessions('usr_a', T0 + 1000)).map((s) => s.id)).toEqual([]);
    });

    it('revokes all of a user sessions but one, and counts them', async () => {
      await userWithSession('a', 'ses_1', 'tok_1');
      await userWithSession('a', 'ses_2', 'tok_2');
      await userWithSession('b', 'ses_3', 'tok_3');
      expect(
        await store.revokeUserSessions({
          userId: 'usr_a',
          reason: 'logout_all',
          now: T0 + 1,
          exceptSessionId: 'ses_2',
        }),
      ).toBe(1);
      expect((await store.findSession('ses_1'))?.revokedReason).toBe('logout_all');
      expect((await store.findSession('ses_2'))?.revokedAt).toBeNull();
      expect((await store.findSession('ses_3'))?.revokedAt).toBeNull();
    });

    it('changes a password and revokes the other sessions in one step', async () => {
      await userWithSession('a', 'ses_1', 'tok_1');
      await userWithSession('a', 'ses_2', 'tok_2');
      expect(
        await store.changePassword({
          userId: 'usr_a',
          passwordHash: 'new',
          now: T0 + 5,
          keepSessionId: 'ses_1',
        }),
      ).toBe(1);
      expect(await store.findUserById('usr_a')).toMatchObject({
        passwordHash: 'new',
        passwordChangedAt: T0 + 5,
      });
      expect((await store.findSession('ses_2'))?.revokedReason).toBe('password_changed');
      expect((await store.findSession('ses_1'))?.revokedAt).toBeNull();
    });

    it('disabling a user revokes every session', async () => {
      await userWithSession('a', 'ses_1', 'tok_1');
      await store.setUserDisabled({ userId: 'usr_a', disabled: true, now: T0 + 7 });
      expect((await store.findUserById('usr_a'))?.disabledAt).toBe(T0 + 7);
      expect((await store.findSession('ses_1'))?.revokedReason).toBe('user_disabled');
      await store.setUserDisabled({ userId: 'usr_a', disabled: false, now: T0 + 8 });
      expect((await store.findUserById('usr_a'))?.disabledAt).toBeNull();
    });

    it('keeps signing keys, retires and deletes them', async () => {
      const key = {
        alg: 'ES256' as const,
        privateJwk: '{}',
        publicJwk: '{}',
        createdAt: T0,
        activatesAt: T0,
        retiredAt: null,
      };
      await store.addSigningKey({ ...key, kid: 'k1' });
      await store.addSigningKey({ ...key, kid: 'k2', createdAt: T0 + 1 });
      expect((await store.listSigningKeys()).map((k) => k.kid)).toEqual(['k1', 'k2']);
      expect(await store.retireSigningKey('k1', T0 + 10)).toBe(true);
      expect(await store.retireSigningKey('missing', T0 + 10)).toBe(false);
      expect(await store.deleteSigningKeysRetiredBefore(T0 + 10)).toBe(0);
      expect(await store.deleteSigningKeysRetiredBefore(T0 + 11)).toBe(1);
      expect((await store.listSigningKeys()).map((k) => k.kid)).toEqual(['k2']);
    });

    it('schedules a key retirement and only ever moves it earlier', async () => {
      await store.addSigningKey({
        kid: 'k1',
        alg: 'EdDSA',
        privateJwk: '{"d":"x"}',
        publicJwk: '{"x":"y"}',
        createdAt: T0,
        activatesAt: T0 + 5,
        retiredAt: null,
      });
      expect(await store.retireSigningKey('k1', T0 + 100)).toBe(true);
      expect(await store.retireSigningKey('k1', T0 + 200)).toBe(false);
      expect(await store.retireSigningKey('k1', T0 + 100)).toBe(false);
      expect(await store.retireSigningKey('k1', T0 + 50)).toBe(true);
      expect(await store.listSigningKeys()).toEqual([
        {
          kid: 'k1',
          alg: 'EdDSA',
          privateJwk: '{"d":"x"}',
          publicJwk: '{"x":"y"}',
          createdAt: T0,
          activatesAt: T0 + 5,
          retiredAt: T0 + 50,
        },
      ]);
    });

    it('reads back every field of users, clients and sessions as written', async () => {
      const full = client('svc', {
        type: 'confidential',
        secretHash: 'sh',
        allowedOrigins: ['https://a.example', 'https://b.example'],
        allowedScopes: ['read', 'write'],
        audience: 'https://api.example',
        accessTtl: 60_000,
        refreshIdleTtl: 3_600_000,
        sessionMaxTtl: 86_400_000,
        createdAt: T0 + 1,
      });
      await store.createClient(client('app'));
      await store.createClient(full);
      expect(await store.findClient('svc')).toEqual(full);
      expect((await store.listClients()).map((c) => c.id)).toEqual(['app', 'svc']);
      const { user, session } = await userWithSession();
      expect(await store.findUserById(user.id)).toEqual({
        id: 'usr_a',
        email: 'a@example.com',
        passwordHash: 'h',
        createdAt: T0,
        disabledAt: null,
        passwordChangedAt: null,
      });
      expect(await store.findSession(session.id)).toEqual({
        ...session,
        revokedAt: null,
        revokedReason: null,
      });
    });

    it('does not rotate an unknown token', async () => {
      expect(
        await store.rotateRefreshToken({
          parentId: 'nope',
          successor: { id: 'tok_x', secretHash: 'h' },
          now: T0,
          idleExpiresAt: T0 + 1,
        }),
      ).toBe(false);
      expect(await store.findRefreshToken('tok_x')).toBeNull();
    });

    it('lists security events newest first, filtered and limited', async () => {
      for (let i = 0; i < 3; i++) {
        await store.recordSecurityEvent({
          type: 'login_failed',
          at: T0 + i,
          userId: 'usr_a',
          ip: `10.0.0.${i}`,
        });
      }
      await store.recordSecurityEvent({ type: 'login_succeeded', at: T0 + 9, userId: 'usr_b' });
      expect((await store.listSecurityEvents({ userId: 'usr_a', limit: 2 })).map((e) => e.at)).toEqual([
        T0 + 2,
        T0 + 1,
      ]);
      const all = await store.listSecurityEvents();
      expect(all.map((e) => e.type)).toEqual([
        'login_succeeded',
        'login_failed',
        'login_failed',
        'login_failed',
      ]);
      expect(all[0]).toEqual({
        type: 'login_succeeded',
        at: T0 + 9,
        userId: 'usr_b',
        sessionId: null,
        clientId: null,
        ip: null,
      });
    });

    it('records security events', async () => {
      await store.recordSecurityEvent({
        type: 'refresh_token_reuse',
        at: T0,
        userId: 'usr_a',
        sessionId: 'ses_a',
        detail: { n: 1 },
      });
      const [e] = await store.listSecurityEvents({ userId: 'usr_a' });
      expect(e).toMatchObject({ type: 'refresh_token_reuse', at: T0, sessionId: 'ses_a', detail: { n: 1 } });
    });

    it('remembers trusted devices with their user email, and touches them', async () => {
      const { user } = await userWithSession('a');
      await userWithSession('b');
      const device = { id: 'dev_1', userId: user.id, secretHash: 'dh', createdAt: T0, lastUsedAt: T0 };
      await store.addTrustedDevice(device);
      await store.addTrustedDevice({ ...device, id: 'dev_2', userId: 'usr_b', secretHash: 'dh2' });
      expect(await store.findTrustedDevice('dev_1')).toEqual({ device, email: 'a@example.com' });
      expect((await store.findTrustedDevice('dev_2'))?.email).toBe('b@example.com');
      expect(await store.findTrustedDevice('missing')).toBeNull();
      expect(await store.touchTrustedDevice({ id: 'dev_1', now: T0 + 42 })).toBe(true);
      expect(await store.touchTrustedDevice({ id: 'missing', now: T0 + 42 })).toBe(false);
      expect(await store.findTrustedDevice('dev_1')).toEqual({
        device: { ...device, lastUsedAt: T0 + 42 },
        email: 'a@example.com',
      });
      // Only the one device moved.
      expect((await store.findTrustedDevice('dev_2'))?.device.lastUsedAt).toBe(T0);
    });

    it('refuses a second device with the same id and a device of an unknown user', async () => {
      const { user } = await userWithSession('a');
      const device = { id: 'dev_1', userId: user.id, secretHash: 'dh', createdAt: T0, lastUsedAt: T0 };
      await store.addTrustedDevice(device);
      await expect(store.addTrustedDevice({ ...device, secretHash: 'other' })).rejects.toThrow();
      await expect(
        store.addTrustedDevice({ ...device, id: 'dev_2', userId: 'usr_nobody' }),
      ).rejects.toThrow();
      expect((await store.findTrustedDevice('dev_1'))?.device.secretHash).toBe('dh');
      expect(await store.findTrustedDevice('dev_2')).toBeNull();
    });

    it('keeps trusted devices across a password change and disabling', async () => {
      const { user } = await userWithSession('a');
      await store.addTrustedDevice({
        id: 'dev_1',
        userId: user.id,
        secretHash: 'dh',
        createdAt: T0,
        lastUsedAt: T0,
      });
      await store.changePassword({ userId: user.id, passwordHash: 'new', now: T0 + 1, keepSessionId: null });
      await store.setUserDisabled({ userId: user.id, disabled: true, now: T0 + 2 });
      expect((await store.findTrustedDevice('dev_1'))?.device.userId).toBe(user.id);
    });

    it('deleting a client revokes its sessions', async () => {
      await userWithSession();
      expect(await store.deleteClient('app', T0 + 3)).toBe(true);
      expect((await store.findSession('ses_a'))?.revokedReason).toBe('admin');
      expect(await store.deleteClient('app', T0 + 4)).toBe(false);
    });
  });
}
