import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type {
  ClientRecord,
  NewSession,
  RotationResult,
  SecurityEventRecord,
  SessionRecord,
  Store,
} from '../src/store/store.js';
import { clientRecord } from './store-fixtures.js';

/** What an adapter's test gives the conformance suite. */
export interface ConformanceFactory {
  /** A fresh, empty, migrated store. */
  open(): Promise<Store>;
  /** Another connection to the same database, as a separate server instance would hold. */
  openSecond(of: Store): Promise<Store>;
  cleanup?(): Promise<void>;
  /**
   * Runs one SQL statement on the current store's database over a
   * connection of its own, as an operator would (table names unqualified),
   * and returns its rows. For what the `Store` has no method for.
   */
  rawSql(text: string): Promise<Record<string, unknown>[]>;
  /** The driver's `code` for a duplicate primary key. */
  duplicateKeyCode: string;
}

/**
 * The one conformance suite every `Store` adapter runs against a real
 * database. `openSecond` proves the rotation promise across connections.
 */
export function storeConformance(name: string, factory: ConformanceFactory): void {
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

    const client = clientRecord;

    const rotated = (r: RotationResult) => r.outcome === 'rotated';

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

    /** Another session of `usr_<suffix>` (which must exist) opened at `at`, recording `device` as a login does. */
    function loginOn(suffix: string, sessionId: string, device: NewSession['device'], at = T0, extra = {}) {
      return store.createSession({
        session: {
          id: sessionId,
          userId: `usr_${suffix}`,
          clientId: 'app',
          scope: null,
          createdAt: at,
          lastUsedAt: at,
          idleExpiresAt: at + 1000,
          expiresAt: at + 5000,
          userAgent: 'test',
          ip: '127.0.0.1',
        },
        firstToken: { id: `tok_${sessionId}`, secretHash: 'hash0' },
        device,
        ...extra,
      });
    }
    const newDevice = (id: string, secretHash = 'dh') => ({ add: { id, secretHash } });

    it('migrate is idempotent', async () => {
      expect(await store.migrate()).toBe(0);
    });

    it('inspects without migrating: pending steps are counted, not applied; the database clock where it has one', async () => {
      const migrated = await store.inspect();
      expect(migrated.migrationsPending).toBe(0);
      expect(migrated.migrationsApplied).toBeGreaterThan(0);
      // Forget the newest step, as a database one release behind would be.
      await factory.rawSql(
        'DELETE FROM baton_migrations WHERE version = (SELECT MAX(version) FROM baton_migrations)',
      );
      const behind = await store.inspect();
      expect(behind).toMatchObject({
        migrationsApplied: migrated.migrationsApplied - 1,
        migrationsPending: 1,
      });
      // Inspecting applied nothing: still one behind.
      expect((await store.inspect()).migrationsPending).toBe(1);
      if (store.dialect === 'sqlite') {
        expect(behind.databaseTime).toBeNull();
        expect(behind.autovacuum).toBeNull();
      } else {
        // Same machine, so the clocks agree to well within a minute.
        expect(Math.abs(behind.databaseTime! - Date.now())).toBeLessThan(60_000);
        // Whatever this server is set to, as SHOW reports it.
        const [shown] = await factory.rawSql('SHOW autovacuum');
        expect(behind.autovacuum).toBe(shown!.autovacuum === 'on');
      }
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
      expect(won).toEqual({ outcome: 'rotated' });
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
      ).toMatchObject({ outcome: 'conflict' });
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
      expect(results.filter(rotated)).toHaveLength(1);
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
        expect(results.filter(rotated)).toHaveLength(1);
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
      ).toMatchObject({ outcome: 'conflict' });
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
      ).toEqual({ outcome: 'conflict', state: null });
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

    it('remembers trusted devices with their user email, and touches them, in the login’s own transaction', async () => {
      const { user } = await userWithSession('a');
      await userWithSession('b');
      const device = { id: 'dev_1', userId: user.id, secretHash: 'dh', createdAt: T0, lastUsedAt: T0 };
      expect((await loginOn('a', 'ses_a2', newDevice('dev_1'))).created).toBe(true);
      expect((await loginOn('b', 'ses_b2', newDevice('dev_2', 'dh2'))).created).toBe(true);
      expect(await store.findTrustedDevice('dev_1')).toEqual({ device, email: 'a@example.com' });
      expect((await store.findTrustedDevice('dev_2'))?.email).toBe('b@example.com');
      expect(await store.findTrustedDevice('missing')).toBeNull();
      expect((await loginOn('a', 'ses_a3', { touch: 'dev_1' }, T0 + 42)).created).toBe(true);
      // A device gone meanwhile (pruned): the login still opens its session, and no device appears.
      expect((await loginOn('a', 'ses_a4', { touch: 'missing' }, T0 + 43)).created).toBe(true);
      expect(await store.findSession('ses_a4')).not.toBeNull();
      expect(await store.findTrustedDevice('missing')).toBeNull();
      expect(await store.findTrustedDevice('dev_1')).toEqual({
        device: { ...device, lastUsedAt: T0 + 42 },
        email: 'a@example.com',
      });
      // Only the one device moved.
      expect((await store.findTrustedDevice('dev_2'))?.device.lastUsedAt).toBe(T0);
    });

    it('a device whose id is taken fails the whole login; a login the account no longer allows writes no device', async () => {
      await userWithSession('a');
      await loginOn('a', 'ses_1', newDevice('dev_1'));
      await expect(loginOn('a', 'ses_2', newDevice('dev_1', 'other'))).rejects.toThrow();
      expect(await store.findSession('ses_2')).toBeNull();
      expect(await store.findRefreshToken('tok_ses_2')).toBeNull();
      expect((await store.findTrustedDevice('dev_1'))?.device.secretHash).toBe('dh');
      // The password changed while the login was in Argon2, or the account is unknown: no session, no device.
      const stale = await loginOn('a', 'ses_3', newDevice('dev_2'), T0, { verifiedPasswordHash: 'stale' });
      expect(stale).toEqual({ created: false, evicted: [] });
      expect(await loginOn('nobody', 'ses_4', newDevice('dev_3'))).toEqual({ created: false, evicted: [] });
      expect(await store.findTrustedDevice('dev_2')).toBeNull();
      expect(await store.findTrustedDevice('dev_3')).toBeNull();
      expect(await store.findSession('ses_3')).toBeNull();
    });

    it('keeps trusted devices across a password change and disabling', async () => {
      const { user } = await userWithSession('a');
      await loginOn('a', 'ses_1', newDevice('dev_1'));
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

    it('creating a client only if missing ignores an id conflict, not a bad row', async () => {
      const bad = client('odd', { type: 'weird' as ClientRecord['type'] });
      await expect(store.createClient(bad, { ifMissing: true })).rejects.toThrow();
      expect(await store.findClient('odd')).toBeNull();
    });

    it('a duplicate user id is an error but not email_taken', async () => {
      await store.createUser({ id: 'usr_1', email: 'a@example.com', passwordHash: 'h', createdAt: T0 });
      const err = await store
        .createUser({ id: 'usr_1', email: 'b@example.com', passwordHash: 'h', createdAt: T0 })
        .then(
          () => null,
          (e: unknown) => e as { code?: string },
        );
      expect(err?.code).toBe(factory.duplicateKeyCode);
    });

    it('ten rounds of ten concurrent rotations over two connections grow one linear chain', async () => {
      const a = store;
      const b = await factory.openSecond(store);
      try {
        await a.createClient(client('app'));
        await a.createUser({ id: 'usr_1', email: 'c@example.com', passwordHash: 'h', createdAt: T0 });
        await a.createSession({
          session: {
            id: 'ses_1',
            userId: 'usr_1',
            clientId: 'app',
            scope: null,
            createdAt: T0,
            lastUsedAt: T0,
            idleExpiresAt: T0 + 1000,
            expiresAt: T0 + 5000,
            userAgent: null,
            ip: null,
          },
          firstToken: { id: 'tok_0', secretHash: 'h0' },
        });
        let current = 'tok_0';
        for (let round = 1; round <= 10; round++) {
          const results = await Promise.all(
            Array.from({ length: 10 }, (_, i) =>
              (i % 2 ? a : b).rotateRefreshToken({
                parentId: current,
                successor: { id: `tok_${round}_${i}`, secretHash: `h${round}` },
                now: T0 + round,
                idleExpiresAt: T0 + 1000 + round,
              }),
            ),
          );
          expect(results.filter(rotated)).toHaveLength(1);
          const winner = `tok_${round}_${results.findIndex(rotated)}`;
          expect((await a.findRefreshToken(current))?.token.successorId).toBe(winner);
          current = winner;
        }
        const count = await factory.rawSql(
          'SELECT CAST(COUNT(*) AS INTEGER) AS n, CAST(COUNT(used_at) AS INTEGER) AS used FROM refresh_tokens',
        );
        expect(count[0]).toEqual({ n: 11, used: 10 });
        expect(await a.findSession('ses_1')).toMatchObject({ lastUsedAt: T0 + 10, idleExpiresAt: T0 + 1010 });
      } finally {
        await b.close();
      }
    });

    it('deleting a user deletes its trusted devices, sessions and tokens (ON DELETE CASCADE)', async () => {
      await userWithSession('a');
      await loginOn('a', 'ses_1', newDevice('dev_1'));
      // There is no store method to delete a user yet: do it as an operator would, with SQL.
      await factory.rawSql("DELETE FROM users WHERE id = 'usr_a'");
      expect(await factory.rawSql('SELECT CAST(COUNT(*) AS INTEGER) AS n FROM trusted_devices')).toEqual([
        { n: 0 },
      ]);
      expect(await store.findTrustedDevice('dev_1')).toBeNull();
      expect(await store.findSession('ses_a')).toBeNull();
      expect(await store.findRefreshToken('tok_a')).toBeNull();
      expect(await store.findSession('ses_1')).toBeNull();
    });

    it('deleting a client leaves its sessions on record, revoked, and spares other clients', async () => {
      await userWithSession('a', 'ses_1', 'tok_1');
      await store.createClient(client('other'));
      await store.createSession({
        session: { ...(await store.findSession('ses_1'))!, id: 'ses_2', clientId: 'other' },
        firstToken: { id: 'tok_2', secretHash: 'h' },
      });
      expect(await store.deleteClient('app', T0 + 3)).toBe(true);
      expect(await store.findClient('app')).toBeNull();
      expect(await store.findSession('ses_1')).toMatchObject({ revokedAt: T0 + 3, revokedReason: 'admin' });
      expect((await store.findSession('ses_2'))?.revokedAt).toBeNull();
      expect(
        await store.rotateRefreshToken({
          parentId: 'tok_1',
          successor: { id: 'tok_1b', secretHash: 'h' },
          now: T0 + 4,
          idleExpiresAt: T0 + 100,
        }),
      ).toMatchObject({ outcome: 'conflict' });
    });

    describe('session creation is conditional on the account', () => {
      const newSession = (id: string, userId = 'usr_a'): NewSession['session'] => ({
        id,
        userId,
        clientId: 'app',
        scope: null,
        createdAt: T0,
        lastUsedAt: T0,
        idleExpiresAt: T0 + 1000,
        expiresAt: T0 + 5000,
        userAgent: null,
        ip: null,
      });

      it('creates the session when the user is enabled and has the verified hash', async () => {
        await userWithSession('a');
        expect(
          await store.createSession({
            session: newSession('ses_new'),
            firstToken: { id: 'tok_new', secretHash: 'x' },
            verifiedPasswordHash: 'h',
          }),
        ).toEqual({ created: true, evicted: [] });
        expect((await store.findRefreshToken('tok_new'))?.session.id).toBe('ses_new');
      });

      it('writes nothing for a disabled user', async () => {
        await userWithSession('a');
        await store.setUserDisabled({ userId: 'usr_a', disabled: true, now: T0 + 1 });
        for (const verifiedPasswordHash of ['h', undefined]) {
          expect(
            await store.createSession({
              session: newSession('ses_new'),
              firstToken: { id: 'tok_new', secretHash: 'x' },
              ...(verifiedPasswordHash ? { verifiedPasswordHash } : {}),
            }),
          ).toEqual({ created: false, evicted: [] });
        }
        expect(await store.findSession('ses_new')).toBeNull();
        expect(await store.findRefreshToken('tok_new')).toBeNull();
      });

      it('writes nothing when the password hash changed since it was verified', async () => {
        await userWithSession('a');
        await store.changePassword({ userId: 'usr_a', passwordHash: 'h2', now: T0 + 1, keepSessionId: null });
        expect(
          await store.createSession({
            session: newSession('ses_old'),
            firstToken: { id: 'tok_old', secretHash: 'x' },
            verifiedPasswordHash: 'h',
          }),
        ).toEqual({ created: false, evicted: [] });
        expect(await store.findSession('ses_old')).toBeNull();
        expect(
          await store.createSession({
            session: newSession('ses_new'),
            firstToken: { id: 'tok_new', secretHash: 'x' },
            verifiedPasswordHash: 'h2',
          }),
        ).toEqual({ created: true, evicted: [] });
      });

      it('writes nothing for an unknown user', async () => {
        await store.createClient(client('app'), { ifMissing: true });
        expect(
          await store.createSession({
            session: newSession('ses_x', 'usr_nobody'),
            firstToken: { id: 'tok_x', secretHash: 'x' },
          }),
        ).toEqual({ created: false, evicted: [] });
      });

      it('does not rotate a token of a disabled user even if its session was left unrevoked', async () => {
        await userWithSession('a');
        // Disabled behind the store's back (no revocation), as an operator's SQL might.
        await factory.rawSql(`UPDATE users SET disabled_at = ${T0 + 1} WHERE id = 'usr_a'`);
        expect(
          await store.rotateRefreshToken({
            parentId: 'tok_a',
            successor: { id: 'tok_a2', secretHash: 'h' },
            now: T0 + 2,
            idleExpiresAt: T0 + 100,
          }),
        ).toMatchObject({ outcome: 'conflict' });
        expect((await store.findRefreshToken('tok_a'))?.token.usedAt).toBeNull();
        expect(await store.findRefreshToken('tok_a2')).toBeNull();
      });

      it('ten rounds: creations racing a disable over two connections leave no live session', async () => {
        const b = await factory.openSecond(store);
        try {
          await store.createClient(client('app'));
          for (let round = 0; round < 10; round++) {
            const userId = `usr_r${round}`;
            await store.createUser({
              id: userId,
              email: `r${round}@example.com`,
              passwordHash: 'h',
              createdAt: T0,
            });
            const creations = Array.from({ length: 10 }, (_, i) =>
              (i % 2 ? store : b).createSession({
                session: newSession(`ses_${round}_${i}`, userId),
                firstToken: { id: `tok_${round}_${i}`, secretHash: 'x' },
                verifiedPasswordHash: 'h',
              }),
            );
            const disable = (round % 2 ? store : b).setUserDisabled({ userId, disabled: true, now: T0 + 1 });
            const [results] = await Promise.all([Promise.all(creations), disable]);
            expect(await store.listActiveSessions(userId, T0 + 2)).toEqual([]);
            // Whatever was created before the switch was revoked by it.
            for (const [i, r] of results.entries()) {
              const found = await store.findSession(`ses_${round}_${i}`);
              if (r.created) expect(found).toMatchObject({ revokedReason: 'user_disabled' });
              else expect(found).toBeNull();
            }
          }
        } finally {
          await b.close();
        }
      });

      it('ten rounds: creations racing a password change over two connections leave no live session', async () => {
        const b = await factory.openSecond(store);
        try {
          await store.createClient(client('app'));
          for (let round = 0; round < 10; round++) {
            const userId = `usr_p${round}`;
            await store.createUser({
              id: userId,
              email: `p${round}@example.com`,
              passwordHash: 'h',
              createdAt: T0,
            });
            const creations = Array.from({ length: 10 }, (_, i) =>
              (i % 2 ? store : b).createSession({
                session: newSession(`ses_${round}_${i}`, userId),
                firstToken: { id: `tok_${round}_${i}`, secretHash: 'x' },
                verifiedPasswordHash: 'h',
              }),
            );
            const change = (round % 2 ? store : b).changePassword({
              userId,
              passwordHash: 'h2',
              now: T0 + 1,
              keepSessionId: null,
            });
            await Promise.all([...creations, change]);
            expect(await store.listActiveSessions(userId, T0 + 2)).toEqual([]);
          }
        } finally {
          await b.close();
        }
      });
    });

    describe('the live-session cap', () => {
      const at = (
        id: string,
        lastUsedAt: number,
        createdAt = T0,
        extra: Partial<NewSession['session']> = {},
      ) => ({
        session: {
          id,
          userId: 'usr_a',
          clientId: 'app',
          scope: null,
          createdAt,
          lastUsedAt,
          idleExpiresAt: T0 + 100_000,
          expiresAt: T0 + 500_000,
          userAgent: null,
          ip: null,
          ...extra,
        },
        firstToken: { id: `tok_${id}`, secretHash: 'x' },
      });
      const event: SecurityEventRecord = {
        type: 'session_revoked',
        at: T0 + 50,
        userId: 'usr_a',
        detail: { reason: 'session_limit' },
      };

      it('revokes the least recently used, then first created, then lowest id, in the creating transaction', async () => {
        await userWithSession('a', 'ses_seed', 'tok_seed');
        await store.revokeSession({ sessionId: 'ses_seed', reason: 'logout', now: T0 });
        // Revoked and expired sessions do not count, and are never picked.
        await store.createSession(at('ses_expired', T0 - 10, T0, { idleExpiresAt: T0 + 1 }));
        await store.createSession(at('ses_b', T0 + 5, T0 + 1));
        await store.createSession(at('ses_a', T0 + 5, T0 + 1));
        await store.createSession(at('ses_c', T0 + 5, T0));
        await store.createSession(at('ses_d', T0 + 9, T0));
        const created = await store.createSession({
          ...at('ses_new', T0 + 50, T0 + 50),
          sessionLimit: { max: 2, event },
        });
        // Live before: a, b, c, d (+ new = 5): three go, oldest use first; among equal use, oldest creation, then id.
        expect(created.created).toBe(true);
        expect([...created.evicted].sort()).toEqual(['ses_a', 'ses_b', 'ses_c']);
        for (const id of ['ses_a', 'ses_b', 'ses_c'])
          expect(await store.findSession(id)).toMatchObject({
            revokedAt: T0 + 50,
            revokedReason: 'session_limit',
          });
        expect((await store.listActiveSessions('usr_a', T0 + 50)).map((x) => x.id)).toEqual([
          'ses_new',
          'ses_d',
        ]);
        expect((await store.findSession('ses_seed'))?.revokedReason).toBe('logout');
        const events = await store.listSecurityEvents({ userId: 'usr_a' });
        expect(events.map((e) => e.sessionId).sort()).toEqual(['ses_a', 'ses_b', 'ses_c']);
        expect(
          events.every((e) => e.type === 'session_revoked' && e.detail?.reason === 'session_limit'),
        ).toBe(true);
      });

      it('the order among equal last use: created first, then id', async () => {
        await store.createClient(client('app'), { ifMissing: true });
        await store.createUser({ id: 'usr_a', email: 'a@example.com', passwordHash: 'h', createdAt: T0 });
        await store.createSession(at('ses_z', T0 + 5, T0));
        await store.createSession(at('ses_b', T0 + 5, T0 + 1));
        await store.createSession(at('ses_a', T0 + 5, T0 + 1));
        const limit = { max: 3, event };
        expect(
          (await store.createSession({ ...at('ses_n1', T0 + 9, T0 + 9), sessionLimit: limit })).evicted,
        ).toEqual(['ses_z']);
        expect(
          (await store.createSession({ ...at('ses_n2', T0 + 9, T0 + 9), sessionLimit: limit })).evicted,
        ).toEqual(['ses_a']);
        expect(
          (await store.createSession({ ...at('ses_n3', T0 + 9, T0 + 9), sessionLimit: limit })).evicted,
        ).toEqual(['ses_b']);
      });

      it('never revokes the new session, and revokes nothing under the cap', async () => {
        await store.createClient(client('app'), { ifMissing: true });
        await store.createUser({ id: 'usr_a', email: 'a@example.com', passwordHash: 'h', createdAt: T0 });
        // An older session that looks newer (another instance's clock ahead).
        await store.createSession(at('ses_ahead', T0 + 1000, T0));
        expect(
          await store.createSession({ ...at('ses_new', T0 + 10, T0 + 10), sessionLimit: { max: 2 } }),
        ).toEqual({
          created: true,
          evicted: [],
        });
        const second = await store.createSession({
          ...at('ses_new2', T0 + 20, T0 + 20),
          sessionLimit: { max: 1 },
        });
        expect(second.created).toBe(true);
        expect([...second.evicted].sort()).toEqual(['ses_ahead', 'ses_new']);
        expect((await store.listActiveSessions('usr_a', T0 + 20)).map((x) => x.id)).toEqual(['ses_new2']);
        expect(await store.listSecurityEvents({ userId: 'usr_a' })).toEqual([]);
      });

      it('holds exactly under concurrent logins of one user over two connections', async () => {
        const b = await factory.openSecond(store);
        try {
          await store.createClient(client('app'));
          await store.createUser({ id: 'usr_a', email: 'a@example.com', passwordHash: 'h', createdAt: T0 });
          const results = await Promise.all(
            Array.from({ length: 12 }, (_, i) =>
              (i % 2 ? store : b).createSession({
                ...at(`ses_${String(i).padStart(2, '0')}`, T0 + i, T0 + i),
                verifiedPasswordHash: 'h',
                sessionLimit: { max: 3, event },
              }),
            ),
          );
          expect(results.every((r) => r.created)).toBe(true);
          expect(await store.listActiveSessions('usr_a', T0 + 20)).toHaveLength(3);
          expect(results.flatMap((r) => r.evicted)).toHaveLength(9);
        } finally {
          await b.close();
        }
      });
    });

    describe('pages of live sessions', () => {
      it('walks every live session exactly once, in the listing order, across ties in last use', async () => {
        await userWithSession('a', 'ses_seed', 'tok_seed');
        const ids = ['ses_B', 'ses_a', 'ses_b', 'ses_0', 'ses_x', 'ses_Y', 'ses_m'];
        for (const [i, id] of ids.entries()) {
          const lastUsedAt = T0 + (i < 5 ? 7 : i);
          await store.createSession({
            session: { ...(await store.findSession('ses_seed'))!, id, lastUsedAt },
            firstToken: { id: `tok_${id}`, secretHash: 'x' },
          });
        }
        const all = (await store.listActiveSessions('usr_a', T0)).map((s) => s.id);
        expect(all).toHaveLength(8);
        for (const limit of [1, 2, 3, 5, 8, 9]) {
          const walked: string[] = [];
          let after: { lastUsedAt: number; id: string } | undefined;
          for (let i = 0; i < 20; i++) {
            const page = await store.listActiveSessions('usr_a', T0, { limit, ...(after ? { after } : {}) });
            expect(page.length).toBeLessThanOrEqual(limit);
            walked.push(...page.map((s) => s.id));
            const last = page.at(-1);
            if (page.length < limit || !last) break;
            after = { lastUsedAt: last.lastUsedAt, id: last.id };
          }
          expect(walked).toEqual(all);
        }
      });
    });

    describe('ordering ties', () => {
      it('lists users with the same creation time by id', async () => {
        for (const id of ['usr_c', 'usr_a', 'usr_b']) {
          await store.createUser({ id, email: `${id}@example.com`, passwordHash: 'h', createdAt: T0 });
        }
        await store.createUser({ id: 'usr_0', email: 'z@example.com', passwordHash: 'h', createdAt: T0 + 1 });
        expect((await store.listUsers()).map((u) => u.id)).toEqual(['usr_a', 'usr_b', 'usr_c', 'usr_0']);
        expect((await store.listUsers({ limit: 2 })).map((u) => u.id)).toEqual(['usr_a', 'usr_b']);
      });

      it('lists sessions used at the same time by id, after more recently used ones', async () => {
        await userWithSession('a', 'ses_c', 'tok_c');
        await userWithSession('a', 'ses_a', 'tok_a');
        await userWithSession('a', 'ses_b', 'tok_b');
        await userWithSession('a', 'ses_0', 'tok_0');
        await store.rotateRefreshToken({
          parentId: 'tok_0',
          successor: { id: 'tok_0b', secretHash: 'h' },
          now: T0 + 5,
          idleExpiresAt: T0 + 900,
        });
        expect((await store.listActiveSessions('usr_a', T0 + 10)).map((s) => s.id)).toEqual([
          'ses_0',
          'ses_a',
          'ses_b',
          'ses_c',
        ]);
      });

      it('breaks ties of ids bytewise (upper case before lower case, digits before letters)', async () => {
        const ids = ['usr_b', 'usr_B', 'usr_1', 'usr__'];
        for (const [i, id] of ids.entries()) {
          await store.createUser({ id, email: `u${i}@example.com`, passwordHash: 'h', createdAt: T0 });
        }
        expect((await store.listUsers()).map((u) => u.id)).toEqual(['usr_1', 'usr_B', 'usr__', 'usr_b']);
      });

      it('lists clients and signing keys made at the same time by id', async () => {
        for (const id of ['c2', 'c1', 'c3']) await store.createClient(client(id));
        expect((await store.listClients()).map((c) => c.id)).toEqual(['c1', 'c2', 'c3']);
        const key = {
          alg: 'ES256' as const,
          privateJwk: '{}',
          publicJwk: '{}',
          createdAt: T0,
          activatesAt: T0,
          retiredAt: null,
        };
        for (const kid of ['k2', 'k3', 'k1']) await store.addSigningKey({ ...key, kid });
        expect((await store.listSigningKeys()).map((k) => k.kid)).toEqual(['k1', 'k2', 'k3']);
      });

      it('lists security events with the same time newest recorded first', async () => {
        for (const ip of ['10.0.0.1', '10.0.0.2', '10.0.0.3']) {
          await store.recordSecurityEvent({ type: 'login_failed', at: T0, userId: 'usr_a', ip });
        }
        expect((await store.listSecurityEvents({ userId: 'usr_a' })).map((e) => e.ip)).toEqual([
          '10.0.0.3',
          '10.0.0.2',
          '10.0.0.1',
        ]);
      });
    });

    describe('rotation conflicts report what the store found', () => {
      const rotation = (parentId: string, successorId: string, now = T0 + 10) => ({
        parentId,
        successor: { id: successorId, secretHash: `hash_${successorId}` },
        now,
        idleExpiresAt: now + 1000,
      });

      it('a token already rotated: the token used, with its successor', async () => {
        await userWithSession();
        expect(await store.rotateRefreshToken(rotation('tok_a', 'tok_b'))).toEqual({ outcome: 'rotated' });
        const lost = await store.rotateRefreshToken(rotation('tok_a', 'tok_c', T0 + 20));
        expect(lost.outcome).toBe('conflict');
        if (lost.outcome !== 'conflict') return;
        expect(lost.state?.token).toMatchObject({ id: 'tok_a', usedAt: T0 + 10, successorId: 'tok_b' });
        expect(lost.state?.successor).toMatchObject({
          id: 'tok_b',
          parentId: 'tok_a',
          secretHash: 'hash_tok_b',
          usedAt: null,
        });
        expect(lost.state?.session).toMatchObject({ id: 'ses_a', revokedAt: null, lastUsedAt: T0 + 10 });
        // It is the same answer a read gives.
        expect(lost.state).toEqual(await store.findRefreshToken('tok_a'));
      });

      it('the losers of a concurrent race all see the winner', async () => {
        await userWithSession();
        const results = await Promise.all(
          Array.from({ length: 8 }, (_, i) => store.rotateRefreshToken(rotation('tok_a', `succ_${i}`))),
        );
        const winner = `succ_${results.findIndex(rotated)}`;
        const losers = results.filter((r) => !rotated(r));
        expect(losers).toHaveLength(7);
        for (const r of losers) {
          expect(r).toMatchObject({
            outcome: 'conflict',
            state: { token: { successorId: winner }, successor: { id: winner } },
          });
        }
      });

      it('a revoked session: the token unused, the session revoked', async () => {
        await userWithSession();
        await store.revokeSession({ sessionId: 'ses_a', reason: 'logout', now: T0 + 1 });
        const lost = await store.rotateRefreshToken(rotation('tok_a', 'tok_b'));
        expect(lost).toMatchObject({
          outcome: 'conflict',
          state: {
            token: { id: 'tok_a', usedAt: null, successorId: null },
            session: { id: 'ses_a', revokedAt: T0 + 1, revokedReason: 'logout' },
            successor: null,
          },
        });
        expect(await store.findRefreshToken('tok_b')).toBeNull();
      });
    });

    describe('the lookup for a rotation may answer from memory, and the rotation still decides', () => {
      const rotation = (parentId: string, successorId: string, now = T0 + 10) => ({
        parentId,
        successor: { id: successorId, secretHash: `hash_${successorId}` },
        now,
        idleExpiresAt: now + 1000,
      });

      it('answers as the database does, and knows the successor of its own rotation without a read', async () => {
        await userWithSession();
        const first = await store.findRefreshTokenToRotate('tok_a');
        expect(first).toEqual(await store.findRefreshToken('tok_a'));
        expect(await store.rotateRefreshToken(rotation('tok_a', 'tok_b'))).toEqual({ outcome: 'rotated' });
        const next = await store.findRefreshTokenToRotate('tok_b');
        const read = await store.findRefreshToken('tok_b');
        expect(next).toEqual(read);
        expect(next).toMatchObject({
          token: { id: 'tok_b', sessionId: 'ses_a', parentId: 'tok_a', usedAt: null, createdAt: T0 + 10 },
          session: { lastUsedAt: T0 + 10, idleExpiresAt: T0 + 1010, revokedAt: null },
          successor: null,
        });
        // The spent parent is read from the database again: used, with its successor.
        expect((await store.findRefreshTokenToRotate('tok_a'))?.token).toMatchObject({
          usedAt: T0 + 10,
          successorId: 'tok_b',
        });
      });

      it('a token another instance rotated meanwhile: the rotation conflicts and reports it used', async () => {
        await userWithSession();
        const other = await factory.openSecond(store);
        try {
          expect((await store.findRefreshTokenToRotate('tok_a'))?.token.usedAt).toBeNull();
          expect(await other.rotateRefreshToken(rotation('tok_a', 'tok_b'))).toEqual({ outcome: 'rotated' });
          // The plain lookup always reads the database.
          expect((await store.findRefreshToken('tok_a'))?.token.usedAt).toBe(T0 + 10);
          const lost = await store.rotateRefreshToken(rotation('tok_a', 'tok_c', T0 + 20));
          expect(lost).toMatchObject({
            outcome: 'conflict',
            state: { token: { usedAt: T0 + 10, successorId: 'tok_b' }, successor: { id: 'tok_b' } },
          });
          expect(await store.findRefreshToken('tok_c')).toBeNull();
          // And the memory no longer holds the spent token.
          expect((await store.findRefreshTokenToRotate('tok_a'))?.token.usedAt).toBe(T0 + 10);
        } finally {
          await other.close();
        }
      });

      it('a session another instance revoked meanwhile: the rotation conflicts and reports it revoked', async () => {
        await userWithSession();
        const other = await factory.openSecond(store);
        try {
          expect(await store.rotateRefreshToken(rotation('tok_a', 'tok_b'))).toEqual({ outcome: 'rotated' });
          expect((await store.findRefreshTokenToRotate('tok_b'))?.session.revokedAt).toBeNull();
          expect(await other.revokeSession({ sessionId: 'ses_a', reason: 'admin', now: T0 + 15 })).toBe(true);
          expect((await store.findRefreshToken('tok_b'))?.session.revokedAt).toBe(T0 + 15);
          const lost = await store.rotateRefreshToken(rotation('tok_b', 'tok_c', T0 + 20));
          expect(lost).toMatchObject({
            outcome: 'conflict',
            state: {
              token: { id: 'tok_b', usedAt: null },
              session: { revokedAt: T0 + 15, revokedReason: 'admin' },
            },
          });
          expect(await store.findRefreshToken('tok_c')).toBeNull();
        } finally {
          await other.close();
        }
      });

      it('a user another instance disabled meanwhile: the rotation conflicts and writes nothing', async () => {
        await userWithSession();
        const other = await factory.openSecond(store);
        try {
          expect(await store.rotateRefreshToken(rotation('tok_a', 'tok_b'))).toEqual({ outcome: 'rotated' });
          await store.findRefreshTokenToRotate('tok_b');
          await other.setUserDisabled({ userId: 'usr_a', disabled: true, now: T0 + 15 });
          expect(await store.rotateRefreshToken(rotation('tok_b', 'tok_c', T0 + 20))).toMatchObject({
            outcome: 'conflict',
          });
          expect(await store.findRefreshToken('tok_c')).toBeNull();
        } finally {
          await other.close();
        }
      });

      it.each([
        [
          'revoking the session',
          (s: Store) => s.revokeSession({ sessionId: 'ses_a', reason: 'logout', now: T0 + 15 }),
        ],
        [
          "revoking the user's sessions",
          (s: Store) => s.revokeUserSessions({ userId: 'usr_a', reason: 'admin', now: T0 + 15 }),
        ],
        [
          'changing the password',
          (s: Store) =>
            s.changePassword({ userId: 'usr_a', passwordHash: 'h2', now: T0 + 15, keepSessionId: null }),
        ],
        [
          'disabling the user',
          (s: Store) => s.setUserDisabled({ userId: 'usr_a', disabled: true, now: T0 + 15 }),
        ],
        ['deleting the client', (s: Store) => s.deleteClient('app', T0 + 15)],
      ])('after %s here, the lookup for a rotation reads the revocation', async (_, revoke) => {
        await userWithSession();
        expect(await store.rotateRefreshToken(rotation('tok_a', 'tok_b'))).toEqual({ outcome: 'rotated' });
        expect((await store.findRefreshTokenToRotate('tok_b'))?.session.revokedAt).toBeNull();
        await revoke(store);
        expect((await store.findRefreshTokenToRotate('tok_b'))?.session.revokedAt).toBe(T0 + 15);
      });

      it('after the session cap revokes a session here, the lookup for a rotation reads the revocation', async () => {
        await userWithSession();
        expect(await store.rotateRefreshToken(rotation('tok_a', 'tok_b'))).toEqual({ outcome: 'rotated' });
        expect((await store.findRefreshTokenToRotate('tok_b'))?.session.revokedAt).toBeNull();
        const newer: NewSession['session'] = {
          ...(await store.findSession('ses_a'))!,
          id: 'ses_new',
          createdAt: T0 + 20,
          lastUsedAt: T0 + 20,
          idleExpiresAt: T0 + 1020,
        };
        const created = await store.createSession({
          session: newer,
          firstToken: { id: 'tok_new', secretHash: 'h' },
          sessionLimit: { max: 1 },
        });
        expect(created.evicted).toEqual(['ses_a']);
        expect((await store.findRefreshTokenToRotate('tok_b'))?.session).toMatchObject({
          revokedAt: T0 + 20,
          revokedReason: 'session_limit',
        });
      });
    });

    describe('events written with a state change', () => {
      const reuse = (at: number): SecurityEventRecord => ({
        type: 'refresh_token_reuse',
        at,
        userId: 'usr_a',
        sessionId: 'ses_a',
        clientId: 'app',
        ip: '10.1.1.1',
        detail: { usedAt: T0, successorUsed: false },
      });
      // A row the database refuses (type is NOT NULL): the real failure of a real write, no mock.
      const broken = { type: null, at: T0 } as unknown as SecurityEventRecord;

      it('revokeSession records its event with the revocation, and again when already revoked', async () => {
        await userWithSession();
        expect(await store.listSecurityEvents()).toEqual([]);
        expect(
          await store.revokeSession({
            sessionId: 'ses_a',
            reason: 'reuse_detected',
            now: T0 + 1,
            event: reuse(T0 + 1),
          }),
        ).toBe(true);
        expect(await store.findSession('ses_a')).toMatchObject({
          revokedAt: T0 + 1,
          revokedReason: 'reuse_detected',
        });
        expect(await store.listSecurityEvents()).toEqual([reuse(T0 + 1)]);
        // A second detection (a concurrent request revoked first) is on record too; the revocation stands as it was.
        expect(
          await store.revokeSession({
            sessionId: 'ses_a',
            reason: 'reuse_detected',
            now: T0 + 2,
            event: reuse(T0 + 2),
          }),
        ).toBe(false);
        expect((await store.listSecurityEvents()).map((e) => e.at)).toEqual([T0 + 2, T0 + 1]);
        expect((await store.findSession('ses_a'))?.revokedAt).toBe(T0 + 1);
      });

      it('an event the database refuses rolls back the revocation of one session', async () => {
        await userWithSession();
        await expect(
          store.revokeSession({ sessionId: 'ses_a', reason: 'reuse_detected', now: T0 + 1, event: broken }),
        ).rejects.toThrow();
        expect((await store.findSession('ses_a'))?.revokedAt).toBeNull();
        expect(await store.listSecurityEvents()).toEqual([]);
      });

      it('an event the database refuses rolls back revoking all of a user sessions', async () => {
        await userWithSession('a', 'ses_1', 'tok_1');
        await expect(
          store.revokeUserSessions({ userId: 'usr_a', reason: 'logout_all', now: T0 + 1, event: broken }),
        ).rejects.toThrow();
        expect((await store.findSession('ses_1'))?.revokedAt).toBeNull();
        const event: SecurityEventRecord = {
          type: 'session_revoked',
          at: T0 + 2,
          userId: 'usr_a',
          sessionId: null,
          clientId: null,
          ip: null,
        };
        expect(
          await store.revokeUserSessions({ userId: 'usr_a', reason: 'logout_all', now: T0 + 2, event }),
        ).toBe(1);
        expect(await store.listSecurityEvents()).toEqual([event]);
      });

      it('an event the database refuses rolls back a password change', async () => {
        await userWithSession('a', 'ses_1', 'tok_1');
        await userWithSession('a', 'ses_2', 'tok_2');
        await expect(
          store.changePassword({
            userId: 'usr_a',
            passwordHash: 'new',
            now: T0 + 5,
            keepSessionId: 'ses_1',
            event: broken,
          }),
        ).rejects.toThrow();
        expect(await store.findUserById('usr_a')).toMatchObject({
          passwordHash: 'h',
          passwordChangedAt: null,
        });
        expect((await store.findSession('ses_2'))?.revokedAt).toBeNull();
        const event: SecurityEventRecord = {
          type: 'password_changed',
          at: T0 + 6,
          userId: 'usr_a',
          sessionId: 'ses_1',
          clientId: null,
          ip: null,
        };
        expect(
          await store.changePassword({
            userId: 'usr_a',
            passwordHash: 'new',
            now: T0 + 6,
            keepSessionId: 'ses_1',
            event,
          }),
        ).toBe(1);
        expect(await store.listSecurityEvents()).toEqual([event]);
        expect((await store.findSession('ses_2'))?.revokedReason).toBe('password_changed');
      });

      it('an event the database refuses rolls back disabling a user', async () => {
        await userWithSession('a', 'ses_1', 'tok_1');
        await expect(
          store.setUserDisabled({ userId: 'usr_a', disabled: true, now: T0 + 7, event: broken }),
        ).rejects.toThrow();
        expect((await store.findUserById('usr_a'))?.disabledAt).toBeNull();
        expect((await store.findSession('ses_1'))?.revokedAt).toBeNull();
        const event: SecurityEventRecord = {
          type: 'session_revoked',
          at: T0 + 8,
          userId: 'usr_a',
          sessionId: null,
          clientId: null,
          ip: null,
        };
        await store.setUserDisabled({ userId: 'usr_a', disabled: true, now: T0 + 8, event });
        expect(await store.listSecurityEvents()).toEqual([event]);
        expect((await store.findSession('ses_1'))?.revokedReason).toBe('user_disabled');
      });
    });

    describe('DPoP binding, proof replay records and server secrets', () => {
      it('keeps a session’s DPoP key thumbprint and reads it back on every path', async () => {
        await store.createClient(client('app'), { ifMissing: true });
        await store.createUser({ id: 'usr_b', email: 'b@example.com', passwordHash: 'h', createdAt: T0 });
        const bound: NewSession['session'] = {
          id: 'ses_bound',
          userId: 'usr_b',
          clientId: 'app',
          scope: null,
          createdAt: T0,
          lastUsedAt: T0,
          idleExpiresAt: T0 + 1000,
          expiresAt: T0 + 5000,
          userAgent: null,
          ip: null,
          dpopJkt: 'jkt-of-the-key',
        };
        await store.createSession({ session: bound, firstToken: { id: 'tok_bound', secretHash: 'h0' } });
        expect(await store.findSession('ses_bound')).toEqual({
          ...bound,
          revokedAt: null,
          revokedReason: null,
        });
        expect((await store.findRefreshToken('tok_bound'))?.session.dpopJkt).toBe('jkt-of-the-key');
        expect((await store.listActiveSessions('usr_b', T0)).map((x) => x.dpopJkt)).toEqual([
          'jkt-of-the-key',
        ]);
        const rotation = await store.rotateRefreshToken({
          parentId: 'tok_bound',
          successor: { id: 'tok_bound2', secretHash: 'h1' },
          now: T0 + 1,
          idleExpiresAt: T0 + 2000,
        });
        expect(rotation.outcome).toBe('rotated');
        const again = await store.rotateRefreshToken({
          parentId: 'tok_bound',
          successor: { id: 'tok_other', secretHash: 'h2' },
          now: T0 + 2,
          idleExpiresAt: T0 + 2000,
        });
        expect(again.outcome === 'conflict' && again.state?.session.dpopJkt).toBe('jkt-of-the-key');
        // An unbound session has no such member at all.
        await userWithSession('c');
        expect(await store.findSession('ses_c')).not.toHaveProperty('dpopJkt');
      });

      it('records a proof once: a live record is a replay, an expired one is taken over', async () => {
        expect(await store.recordDpopProof({ jtiHash: 'j1', expiresAt: T0 + 100, now: T0 })).toBe(true);
        expect(await store.recordDpopProof({ jtiHash: 'j1', expiresAt: T0 + 200, now: T0 + 50 })).toBe(false);
        expect(await store.recordDpopProof({ jtiHash: 'j2', expiresAt: T0 + 100, now: T0 + 50 })).toBe(true);
        // No pruning here: the expired record itself must not pass for a live one, nor block the key.
        expect(
          await store.recordDpopProof({ jtiHash: 'j1', expiresAt: T0 + 300, now: T0 + 100, pruneLimit: 0 }),
        ).toBe(true);
        expect(await store.recordDpopProof({ jtiHash: 'j1', expiresAt: T0 + 400, now: T0 + 150 })).toBe(
          false,
        );
      });

      it('of concurrent recordings of one proof over two connections exactly one wins', async () => {
        const second = await factory.openSecond(store);
        try {
          const results = await Promise.all(
            Array.from({ length: 10 }, (_, i) =>
              (i % 2 ? second : store).recordDpopProof({ jtiHash: 'race', expiresAt: T0 + 100, now: T0 }),
            ),
          );
          expect(results.filter(Boolean)).toHaveLength(1);
        } finally {
          await second.close();
        }
      });

      it('prunes expired records a bounded batch at a time, never live ones', async () => {
        for (let i = 0; i < 7; i++)
          await store.recordDpopProof({ jtiHash: `old${i}`, expiresAt: T0 + i, now: T0 - 1, pruneLimit: 0 });
        await store.recordDpopProof({ jtiHash: 'live', expiresAt: T0 + 1000, now: T0 - 1, pruneLimit: 0 });
        const count = async () =>
          Number((await factory.rawSql('SELECT COUNT(*) AS n FROM dpop_proofs'))[0]?.n);
        expect(await count()).toBe(8);
        await store.recordDpopProof({ jtiHash: 'new1', expiresAt: T0 + 1000, now: T0 + 100, pruneLimit: 3 });
        expect(await count()).toBe(6);
        await store.recordDpopProof({ jtiHash: 'new2', expiresAt: T0 + 1000, now: T0 + 100 });
        const left = (await factory.rawSql('SELECT jti_hash FROM dpop_proofs ORDER BY jti_hash')).map(
          (r) => r.jti_hash,
        );
        expect(left).toEqual(['live', 'new1', 'new2']);
        expect(await store.recordDpopProof({ jtiHash: 'live', expiresAt: T0 + 2000, now: T0 + 100 })).toBe(
          false,
        );
      });

      it('keeps the first server secret: every instance reads the one that landed', async () => {
        const second = await factory.openSecond(store);
        try {
          const got = await Promise.all([
            store.serverSecret({ name: 'dpop_nonce', candidate: 'first', now: T0 }),
            second.serverSecret({ name: 'dpop_nonce', candidate: 'second', now: T0 }),
          ]);
          expect(got[0]).toBe(got[1]);
          expect(['first', 'second']).toContain(got[0]);
          expect(await store.serverSecret({ name: 'dpop_nonce', candidate: 'third', now: T0 + 1 })).toBe(
            got[0],
          );
        } finally {
          await second.close();
        }
      });
    });
  });
}
