import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DEVICE_TTL_MS } from '../src/core/device-token.js';
import { generateSigningKey } from '../src/core/signing-keys.js';
import { createTokenService, type TokenService } from '../src/core/token-service.js';
import type { PruneKind, Store } from '../src/store/store.js';
import { standalone, type TestClock, testClock } from './helpers.js';
import type { ConformanceFactory } from './store-conformance.js';

/**
 * The data-lifecycle half of the conformance suite, run by every adapter
 * on a real database next to `storeConformance`: what core records as
 * security events, and what pruning deletes, with a moved clock.
 */
export function storeLifecycle(name: string, factory: ConformanceFactory): void {
  describe(`Store lifecycle: ${name}`, () => {
    let store: Store;
    let clock: TestClock;
    let service: TokenService;
    const PASSWORD = 'correct horse battery';

    const HOUR = 3_600_000;
    const DAY = 24 * HOUR;
    const counts = (partial: Partial<Record<PruneKind, number>>): Record<PruneKind, number> => ({
      session_tokens: 0,
      sessions: 0,
      spent_tokens: 0,
      trusted_devices: 0,
      security_events: 0,
      ...partial,
    });
    const serviceOn = async (s: Store, retention = {}) => {
      const made = createTokenService({
        store: s,
        issuer: 'https://auth.example.com',
        now: clock,
        retention,
      });
      await made.init();
      return made;
    };

    beforeEach(async () => {
      store = await factory.open();
      clock = testClock();
      service = await serviceOn(store);
    });
    afterEach(async () => {
      await store.close();
      await factory.cleanup?.();
    });

    describe('security events', () => {
      it('a login, a failed login and a reuse detection are three events', async () => {
        const user = await service.register({ email: 'ada@example.com', password: PASSWORD });
        const ctx = { ip: '203.0.113.7', userAgent: 'test-agent/1' };
        const first = await service.login({ email: 'ada@example.com', password: PASSWORD, ...ctx });
        await expect(
          service.login({ email: 'ada@example.com', password: 'wrong horse battery', ...ctx }),
        ).rejects.toMatchObject({ code: 'invalid_credentials' });
        await service.refresh({ refreshToken: first.refreshToken });
        clock.advance(60_000);
        await expect(service.refresh({ refreshToken: first.refreshToken })).rejects.toMatchObject({
          code: 'invalid_grant',
        });
        const types = (await store.listSecurityEvents({ userId: user.id })).map((e) => e.type).reverse();
        expect(types).toEqual(['login_succeeded', 'login_failed', 'refresh_token_reuse']);
      });

      it('a scripted flow records every event with who and why, and no secret', async () => {
        const user = await service.register({ email: 'ada@example.com', password: PASSWORD });
        const ctx = { ip: '203.0.113.7', userAgent: 'test-agent/1' };
        const login = () => service.login({ email: 'ada@example.com', password: PASSWORD, ...ctx });
        const first = await login();
        await expect(
          service.login({ email: 'ada@example.com', password: 'wrong horse battery', ...ctx }),
        ).rejects.toMatchObject({ code: 'invalid_credentials' });
        await service.refresh({ refreshToken: first.refreshToken });
        clock.advance(60_000);
        await expect(service.refresh({ refreshToken: first.refreshToken, ...ctx })).rejects.toMatchObject({
          code: 'invalid_grant',
        });
        const second = await login();
        await service.revokeRefreshToken(second.refreshToken); // logout
        const third = await login();
        await service.revokeUserSession(user.id, third.sessionId);
        await login();
        await service.logoutAll(user.id);
        const fourth = await login();
        await service.changePassword({
          userId: user.id,
          sessionId: fourth.sessionId,
          currentPassword: PASSWORD,
          newPassword: 'another horse battery',
          ip: ctx.ip,
        });
        await service.disableUser(user.id);
        await service.enableUser(user.id);
        const rotated = await service.signingKeys.rotate(clock(), 0);
        // A second signer, as another instance's rotation would leave, so the first may retire.
        await store.addSigningKey(generateSigningKey('ES256', clock()));
        await service.signingKeys.retire(rotated.key.kid, clock());
        const created = await service.clients.create({ id: 'backend', type: 'confidential' });
        await service.clients.delete(created.client.id);

        const all = (await service.listSecurityEvents({ limit: 1000 })).reverse();
        const summary = all.map((e) => [e.type, e.detail?.reason ?? null, e.detail?.by ?? null]);
        expect(summary).toEqual([
          ['login_succeeded', null, null],
          ['login_failed', 'wrong_password', null],
          ['refresh_token_reuse', null, null],
          ['login_succeeded', null, null],
          ['session_revoked', 'logout', 'user'],
          ['login_succeeded', null, null],
          ['session_revoked', 'revoked_by_user', 'user'],
          ['login_succeeded', null, null],
          ['session_revoked', 'logout_all', 'user'],
          ['login_succeeded', null, null],
          ['password_changed', null, 'user'],
          ['user_disabled', null, 'admin'],
          ['user_enabled', null, 'admin'],
          ['signing_key_rotated', null, 'admin'],
          ['signing_key_retired', null, 'admin'],
          ['client_created', null, 'admin'],
          ['client_deleted', 'client_deleted', 'admin'],
        ]);
        // Logins carry where they came from.
        for (const e of all.filter((x) => x.type.startsWith('login_'))) {
          expect(e).toMatchObject({ userId: user.id, clientId: 'app', ip: ctx.ip });
          expect(e.detail?.userAgent).toBe(ctx.userAgent);
        }
        expect(all[2]).toMatchObject({ userId: user.id, sessionId: first.sessionId, ip: ctx.ip });
        // Filters: by user, by type, since a time.
        expect((await service.listSecurityEvents({ type: 'login_succeeded' })).length).toBe(5);
        expect((await service.listSecurityEvents({ userId: user.id, type: 'login_failed' })).length).toBe(1);
        expect(await service.listSecurityEvents({ since: clock() + 1 })).toEqual([]);
        expect((await service.listSecurityEvents({ limit: 2 })).map((e) => e.type)).toEqual([
          'client_deleted',
          'client_created',
        ]);
        const text = JSON.stringify(all);
        expect(text).not.toMatch(standalone(['brt_', 'bdv_', 'argon2', 'horse']));
        for (const issued of [first, second, third, fourth]) expect(text).not.toContain(issued.refreshToken);
      });

      it('a failed login to an unknown account is on record without a user', async () => {
        await expect(
          service.login({ email: 'nobody@example.com', password: PASSWORD, ip: '198.51.100.1' }),
        ).rejects.toMatchObject({ code: 'invalid_credentials' });
        const [e] = await service.listSecurityEvents();
        expect(e).toMatchObject({ type: 'login_failed', userId: null, ip: '198.51.100.1' });
        expect(e?.detail?.reason).toBe('unknown_account');
        expect(JSON.stringify(e)).not.toContain('nobody');
      });
    });

    describe('pruning', () => {
      it('keeps the chain reuse detection needs and deletes spent tokens past the horizon', async () => {
        service = await serviceOn(store, { spentTokens: 3 * HOUR });
        await service.register({ email: 'ada@example.com', password: PASSWORD });
        const t0 = await service.login({ email: 'ada@example.com', password: PASSWORD });
        const t1 = await service.refresh({ refreshToken: t0.refreshToken });
        clock.advance(2 * HOUR);
        const t2 = await service.refresh({ refreshToken: t1.refreshToken });
        const t3 = await service.refresh({ refreshToken: t2.refreshToken });
        clock.advance(4 * HOUR);
        // t0 and t1 were used before the horizon with spent successors; t2 too, but it is the
        // current token's parent (a grace replay or a lost response derives t3 from it): kept.
        const dry = await service.prune({ dryRun: true });
        expect(dry).toMatchObject({ dryRun: true, deleted: counts({ spent_tokens: 2 }) });
        expect((await service.prune({ dryRun: true })).deleted).toEqual(dry.deleted);
        expect((await service.prune()).deleted).toEqual(counts({ spent_tokens: 2 }));
        expect((await service.prune()).deleted).toEqual(counts({}));
        // A replay older than the horizon finds nothing: refused, and the session lives on.
        await expect(service.refresh({ refreshToken: t0.refreshToken })).rejects.toMatchObject({
          code: 'invalid_grant',
        });
        expect((await store.findSession(t0.sessionId))?.revokedAt).toBeNull();
        const t4 = await service.refresh({ refreshToken: t3.refreshToken });
        // A spent token still on record is still theft when replayed: the session is revoked.
        await expect(service.refresh({ refreshToken: t2.refreshToken })).rejects.toMatchObject({
          code: 'invalid_grant',
        });
        expect((await store.findSession(t0.sessionId))?.revokedReason).toBe('reuse_detected');
        await expect(service.refresh({ refreshToken: t4.refreshToken })).rejects.toMatchObject({
          code: 'invalid_grant',
        });
      });

      it('a grace replay still gets the same successor after pruning', async () => {
        service = await serviceOn(store, { spentTokens: 10_000 });
        await service.register({ email: 'ada@example.com', password: PASSWORD });
        const t0 = await service.login({ email: 'ada@example.com', password: PASSWORD });
        const t1 = await service.refresh({ refreshToken: t0.refreshToken });
        clock.advance(9_000);
        expect((await service.prune()).deleted).toEqual(counts({}));
        const again = await service.refresh({ refreshToken: t0.refreshToken });
        expect(again).toMatchObject({ outcome: 'grace_replay', refreshToken: t1.refreshToken });
      });

      it('refuses a reuse-detection horizon shorter than the grace window', () => {
        expect(() =>
          createTokenService({
            store,
            issuer: 'https://auth.example.com',
            reuseGrace: 10_000,
            retention: { spentTokens: 9_999 },
          }),
        ).toThrow(TypeError);
      });

      it('deletes ended sessions and all their tokens after their retention, not before', async () => {
        service = await serviceOn(store, { endedSessions: DAY });
        const user = await service.register({ email: 'ada@example.com', password: PASSWORD });
        const login = () => service.login({ email: 'ada@example.com', password: PASSWORD });
        const revoked = await login();
        const idle = await login();
        let live: { refreshToken: string; sessionId: string } = await login();
        const revokedNext = await service.refresh({ refreshToken: revoked.refreshToken });
        await service.revokeRefreshToken(revokedNext.refreshToken);
        clock.advance(10 * DAY);
        live = await service.refresh({ refreshToken: live.refreshToken });
        // `idle` dies at 14 d unused, `revoked` ended at 0: one day later only `revoked` is gone.
        clock.advance(4 * DAY + 1);
        expect((await service.prune()).deleted).toEqual(counts({ session_tokens: 2, sessions: 1 }));
        expect(await store.findSession(revoked.sessionId)).toBeNull();
        expect(await store.findSession(idle.sessionId)).not.toBeNull();
        clock.advance(DAY);
        live = await service.refresh({ refreshToken: live.refreshToken });
        expect((await service.prune()).deleted).toEqual(counts({ session_tokens: 1, sessions: 1 }));
        expect(await store.findSession(idle.sessionId)).toBeNull();
        // Deleted tokens answer exactly like revoked ones: unknown, inactive, refused.
        expect(await service.refreshTokenInfo(revoked.refreshToken)).toBeNull();
        await expect(service.refresh({ refreshToken: idle.refreshToken })).rejects.toMatchObject({
          code: 'invalid_grant',
        });
        expect((await service.listSessions(user.id)).map((s) => s.id)).toEqual([live.sessionId]);
        expect((await service.refresh({ refreshToken: live.refreshToken })).outcome).toBe('rotated');
      });

      it('deletes trusted devices unused for the device lifetime, and old security events', async () => {
        service = await serviceOn(store, { securityEvents: 2 * DAY });
        await service.register({ email: 'ada@example.com', password: PASSWORD });
        await service.register({ email: 'bob@example.com', password: PASSWORD });
        const ada = await service.login({ email: 'ada@example.com', password: PASSWORD });
        clock.advance(DEVICE_TTL_MS - DAY);
        const bob = await service.login({ email: 'bob@example.com', password: PASSWORD });
        clock.advance(DAY + 1);
        const report = await service.prune();
        expect(report.deleted).toMatchObject({ trusted_devices: 1, security_events: 1 });
        expect(await service.findTrustedDevice(ada.deviceToken)).toBeNull();
        expect((await service.findTrustedDevice(bob.deviceToken))?.id).toBe(bob.deviceId);
        expect((await service.listSecurityEvents()).map((e) => e.type)).toEqual(['login_succeeded']);
      });

      it('deletes in batches until nothing is left, and two instances pruning at once delete each row once', async () => {
        service = await serviceOn(store, { spentTokens: HOUR });
        await service.register({ email: 'ada@example.com', password: PASSWORD });
        const start = await service.login({ email: 'ada@example.com', password: PASSWORD });
        // 1,002 rotations straight through the store: 1,001 spent tokens with spent successors.
        let parent = (await service.refreshTokenInfo(start.refreshToken))!.token.id;
        for (let i = 0; i < 1002; i++) {
          const id = `tok_${String(i).padStart(5, '0')}`;
          const r = await store.rotateRefreshToken({
            parentId: parent,
            successor: { id, secretHash: `h${i}` },
            now: clock(),
            idleExpiresAt: clock() + 10 * DAY,
          });
          expect(r.outcome).toBe('rotated');
          parent = id;
        }
        clock.advance(2 * HOUR);
        expect((await service.prune({ dryRun: true })).deleted.spent_tokens).toBe(1001);
        const second = await factory.openSecond(store);
        try {
          const other = await serviceOn(second, { spentTokens: HOUR });
          const [a, b] = await Promise.all([service.prune(), other.prune()]);
          expect(a.deleted.spent_tokens + b.deleted.spent_tokens).toBe(1001);
        } finally {
          await second.close();
        }
        expect((await service.prune({ dryRun: true })).deleted).toEqual(counts({}));
        expect((await store.findRefreshToken(parent))?.token.usedAt).toBeNull();
      }, 60_000);
    });
  });
}
