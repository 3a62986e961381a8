import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type TestClock, tempStore, testClock } from '../../test/helpers.js';
import type { Store } from '../store/store.js';
import { isBatonError } from './errors.js';
import { rotateSigningKey } from './signing-keys.js';
import { createTokenService, type TokenService, type TokenServiceEvent } from './token-service.js';

const SEC = 1000;
const DAY = 86_400_000;

describe('token service', () => {
  let store: Store;
  let dispose: () => Promise<void>;
  let clock: TestClock;
  let service: TokenService;
  let events: TokenServiceEvent[];

  beforeEach(async () => {
    ({ store, dispose } = await tempStore());
    clock = testClock();
    events = [];
    service = createTokenService({
      store,
      issuer: 'https://auth.example.com',
      now: clock,
      accessTtl: 15 * 60 * SEC,
      refreshIdleTtl: 14 * DAY,
      sessionMaxTtl: 30 * DAY,
      reuseGrace: 10 * SEC,
      onEvent: (e) => events.push(e),
    });
    await service.init();
    await service.register({ email: 'Ada@Example.com ', password: 'correct horse battery' });
  });
  afterEach(() => dispose());

  const login = () => service.login({ email: 'ada@example.com', password: 'correct horse battery' });
  const code = async (p: Promise<unknown>) =>
    p.then(
      () => 'ok',
      (e: unknown) => (isBatonError(e) ? e.code : `unexpected: ${String(e)}`),
    );

  it('rotates: RT1 gives RT2 ≠ RT1, and RT2 works', async () => {
    const first = await login();
    const second = await service.refresh({ refreshToken: first.refreshToken });
    expect(second.outcome).toBe('rotated');
    expect(second.refreshToken).not.toBe(first.refreshToken);
    expect(second.sessionId).toBe(first.sessionId);
    const third = await service.refresh({ refreshToken: second.refreshToken });
    expect(third.outcome).toBe('rotated');
  });

  it('replaying RT1 inside the grace window returns the same successor', async () => {
    const first = await login();
    const second = await service.refresh({ refreshToken: first.refreshToken });
    clock.advance(9 * SEC);
    const again = await service.refresh({ refreshToken: first.refreshToken });
    expect(again.outcome).toBe('grace_replay');
    expect(again.refreshToken).toBe(second.refreshToken);
    // And the successor still works afterwards: nobody was signed out.
    expect((await service.refresh({ refreshToken: second.refreshToken })).outcome).toBe('rotated');
  });

  it('replaying RT1 after the grace window revokes the session: the newest token fails too', async () => {
    const first = await login();
    const second = await service.refresh({ refreshToken: first.refreshToken });
    clock.advance(10 * SEC + 1);
    expect(await code(service.refresh({ refreshToken: first.refreshToken }))).toBe('invalid_grant');
    expect(await code(service.refresh({ refreshToken: second.refreshToken }))).toBe('invalid_grant');
    expect((await store.findSession(first.sessionId))?.revokedReason).toBe('reuse_detected');
    const [event] = await store.listSecurityEvents();
    expect(event).toMatchObject({ type: 'refresh_token_reuse', sessionId: first.sessionId });
    expect(events.some((e) => e.kind === 'refresh' && e.outcome === 'reuse_detected')).toBe(true);
  });

  it('replaying RT1 after its successor was used revokes the session, even inside the window', async () => {
    const first = await login();
    const second = await service.refresh({ refreshToken: first.refreshToken });
    const third = await service.refresh({ refreshToken: second.refreshToken });
    expect(await code(service.refresh({ refreshToken: first.refreshToken }))).toBe('invalid_grant');
    expect(await code(service.refresh({ refreshToken: third.refreshToken }))).toBe('invalid_grant');
  });

  it('attacker rotates first, victim replays: both lose the session', async () => {
    const stolen = await login();
    const attackers = await service.refresh({ refreshToken: stolen.refreshToken });
    clock.advance(60 * SEC);
    expect(await code(service.refresh({ refreshToken: stolen.refreshToken }))).toBe('invalid_grant');
    expect(await code(service.refresh({ refreshToken: attackers.refreshToken }))).toBe('invalid_grant');
  });

  it('20 concurrent refreshes of one token all succeed with one and the same successor', async () => {
    const first = await login();
    const results = await Promise.all(
      Array.from({ length: 20 }, () => service.refresh({ refreshToken: first.refreshToken })),
    );
    expect(new Set(results.map((r) => r.refreshToken)).size).toBe(1);
    expect(results.filter((r) => r.outcome === 'rotated')).toHaveLength(1);
  });

  it('unknown, malformed and tampered tokens are invalid_grant and revoke nothing', async () => {
    const first = await login();
    const rt = first.refreshToken;
    const last = rt.at(-1) === 'A' ? 'B' : 'A';
    for (const bad of [
      '',
      'nope',
      `${rt.slice(0, -1)}${last}`,
      rt.replace('brt_', 'brt_x'),
      `brt_${'A'.repeat(22)}.${'A'.repeat(43)}`,
    ]) {
      expect(await code(service.refresh({ refreshToken: bad }))).toBe('invalid_grant');
    }
    expect((await service.refresh({ refreshToken: rt })).outcome).toBe('rotated');
  });

  it('a session idles out; using it in time slides the idle deadline', async () => {
    const first = await login();
    clock.advance(13 * DAY);
    const second = await service.refresh({ refreshToken: first.refreshToken });
    clock.advance(13 * DAY);
    const third = await service.refresh({ refreshToken: second.refreshToken });
    clock.advance(14 * DAY);
    expect(await code(service.refresh({ refreshToken: third.refreshToken }))).toBe('invalid_grant');
  });

  it('sliding refresh never extends past the absolute lifetime', async () => {
    let tokens = await login();
    for (let day = 0; day < 29; day++) {
      clock.advance(DAY);
      tokens = { ...tokens, ...(await service.refresh({ refreshToken: tokens.refreshToken })) };
    }
    // Access tokens are capped at the session's end too.
    clock.advance(DAY - 60 * SEC);
    const last = await service.refresh({ refreshToken: tokens.refreshToken });
    expect(last.expiresIn).toBeLessThanOrEqual(60);
    clock.advance(60 * SEC);
    expect(await code(service.refresh({ refreshToken: last.refreshToken }))).toBe('invalid_grant');
  });

  it('a fresh login creates a new session and leaves the old one alone', async () => {
    const a = await login();
    const b = await login();
    expect(b.sessionId).not.toBe(a.sessionId);
    expect((await service.refresh({ refreshToken: a.refreshToken })).sessionId).toBe(a.sessionId);
  });

  it('logout-all and password change end every other session', async () => {
    const a = await login();
    const b = await login();
    const c = await login();
    const user = (await store.findUserByEmail('ada@example.com'))!;
    await service.changePassword({
      userId: user.id,
      sessionId: c.sessionId,
      currentPassword: 'correct horse battery',
      newPassword: 'new password 123',
    });
    expect(await code(service.refresh({ refreshToken: a.refreshToken }))).toBe('invalid_grant');
    expect(await code(service.refresh({ refreshToken: b.refreshToken }))).toBe('invalid_grant');
    const c2 = await service.refresh({ refreshToken: c.refreshToken });
    expect(await code(login())).toBe('invalid_credentials');
    await service.logoutAll(user.id);
    expect(await code(service.refresh({ refreshToken: c2.refreshToken }))).toBe('invalid_grant');
  });

  it('disabling an account ends its sessions and fails its logins like a wrong password', async () => {
    const a = await login();
    const user = (await store.findUserByEmail('ada@example.com'))!;
    await store.setUserDisabled({ userId: user.id, disabled: true, now: clock() });
    expect(await code(service.refresh({ refreshToken: a.refreshToken }))).toBe('invalid_grant');
    expect(await code(login())).toBe('invalid_credentials');
  });

  it('authenticate accepts a live access token and refuses it once its session is revoked', async () => {
    const a = await login();
    const auth = await service.authenticate(a.accessToken);
    expect(auth.claims).toMatchObject({
      iss: 'https://auth.example.com',
      aud: 'https://auth.example.com',
      sid: a.sessionId,
      client_id: 'app',
    });
    await service.revokeSession(a.sessionId, 'logout');
    expect(await code(service.authenticate(a.accessToken))).toBe('invalid_token');
  });

  it('access tokens expire after their lifetime (with a small leeway)', async () => {
    const a = await login();
    clock.advance(15 * 60 * SEC + 4 * SEC);
    expect(await code(service.authenticate(a.accessToken))).toBe('ok');
    clock.advance(2 * SEC);
    expect(await code(service.authenticate(a.accessToken))).toBe('invalid_token');
  });

  it('refuses a password shorter than 8, accepts 1024 and distinguishes character 73', async () => {
    expect(await code(service.register({ email: 'b@example.com', password: 'short' }))).toBe(
      'invalid_request',
    );
    const long = 'x'.repeat(72);
    await service.register({ email: 'c@example.com', password: `${long}A` });
    expect(await code(service.login({ email: 'c@example.com', password: `${long}B` }))).toBe(
      'invalid_credentials',
    );
    expect(await code(service.login({ email: 'c@example.com', password: `${long}A` }))).toBe('ok');
    expect(await code(service.register({ email: 'd@example.com', password: 'y'.repeat(1024) }))).toBe('ok');
    expect(await code(service.register({ email: 'e@example.com', password: 'y'.repeat(1025) }))).toBe(
      'invalid_request',
    );
  });

  it('stores Argon2id hashes with at least OWASP parameters', async () => {
    const user = (await store.findUserByEmail('ada@example.com'))!;
    expect(user.passwordHash).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
  });

  it('accepts a token signed by a key another instance created a moment ago (reload on unknown kid)', async () => {
    const other = createTokenService({ store, issuer: 'https://auth.example.com', now: clock });
    await rotateSigningKey(store, { alg: 'ES256', now: clock(), activateIn: 0 });
    await other.init();
    const tokens = await other.login({ email: 'ada@example.com', password: 'correct horse battery' });
    const kid = JSON.parse(Buffer.from(tokens.accessToken.split('.')[0]!, 'base64url').toString()).kid;
    expect(service.jwks().keys.map((k) => k.kid)).not.toContain(kid);
    // Unknown-kid reloads are rate-limited to one a second of real time since the last reload (init's).
    await new Promise((r) => setTimeout(r, 1100));
    expect((await service.authenticate(tokens.accessToken)).claims.sid).toBe(tokens.sessionId);
    expect(service.jwks().keys.map((k) => k.kid)).toContain(kid);
  });

  it('options are checked at construction', () => {
    expect(() => createTokenService({ store, issuer: '' })).toThrow(TypeError);
    expect(() => createTokenService({ store, issuer: 'https://x', accessTtl: -1 })).toThrow(TypeError);
  });
});
