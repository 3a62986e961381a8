import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTokenService, type TokenService } from '../src/core/token-service.js';
import type { Store } from '../src/store/store.js';
import { type TestClock, testClock } from './helpers.js';
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

    beforeEach(async () => {
      store = await factory.open();
      clock = testClock();
      service = createTokenService({ store, issuer: 'https://auth.example.com', now: clock });
      await service.init();
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
    });
  });
}
