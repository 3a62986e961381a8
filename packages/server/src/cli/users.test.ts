import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  ISSUER,
  refresh,
  signUp,
  standalone,
  type TestClock,
  tempStore,
  testClock,
} from '../../test/helpers.js';
import { isBatonError } from '../core/errors.js';
import type { TokenServiceEvent } from '../core/token-service.js';
import { createServer } from '../http/app.js';
import type { Store } from '../store/store.js';
import { runSessions } from './sessions.js';
import { runUsers } from './users.js';

describe('baton users and baton sessions (in-process server on the same database)', () => {
  let store: Store;
  let file: string;
  let dispose: () => Promise<void>;
  let clock: TestClock;
  let app: Awaited<ReturnType<typeof createServer>>;

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

  const cli = async (run: typeof runUsers, ...args: string[]) => {
    let text = '';
    await run([...args, '--database-url', `sqlite:${file}`], {}, (s) => (text += s), clock);
    return text;
  };
  const code = (p: Promise<unknown>) =>
    p.then(
      () => 'ok',
      (e: unknown) => (isBatonError(e) ? e.code : (e as Error).name),
    );
  const login = (password = 'correct horse battery') =>
    app.inject({ method: 'POST', url: '/auth/login', payload: { email: 'ada@example.com', password } });

  it('users list shows accounts without any hash', async () => {
    await signUp(app);
    const text = await cli(runUsers, 'list');
    expect(text).toContain('ada@example.com');
    expect(text).not.toContain('argon2');
  });

  it('disable revokes every session at once and login fails exactly like a wrong password; enable restores login', async () => {
    const a = await signUp(app);
    const b = await signUp(app);
    expect(await cli(runUsers, 'disable', 'ADA@example.com')).toMatch(/Disabled ada@example.com/);
    expect((await refresh(app, a.refresh_token)).statusCode).toBe(401);
    expect((await refresh(app, b.refresh_token)).statusCode).toBe(401);
    const me = await app.inject({ url: '/auth/me', headers: { authorization: `Bearer ${b.access_token}` } });
    expect(me.statusCode).toBe(401);
    const disabled = await login();
    const wrong = await login('wrong password');
    expect(disabled.statusCode).toBe(401);
    expect(disabled.body).toBe(wrong.body);

    const user = (await store.findUserByEmail('ada@example.com'))!;
    expect(await cli(runUsers, 'enable', user.id)).toMatch(/Enabled/);
    expect((await login()).statusCode).toBe(200);
    // Re-enabling does not bring old sessions back.
    expect((await refresh(app, a.refresh_token)).statusCode).toBe(401);
  });

  it('sessions list / revoke / revoke-all', async () => {
    const a = await signUp(app);
    const b = await signUp(app);
    const listed = await cli(runSessions, 'list', 'ada@example.com');
    expect(listed).toContain(a.session_id);
    expect(listed).toContain(b.session_id);
    expect(listed).not.toMatch(standalone(['brt_']));

    expect(await cli(runSessions, 'revoke', a.session_id)).toMatch(/Revoked session/);
    expect((await refresh(app, a.refresh_token)).statusCode).toBe(401);
    expect((await refresh(app, b.refresh_token)).statusCode).toBe(200);

    const c = await signUp(app);
    expect(await cli(runSessions, 'revoke-all', 'ada@example.com')).toMatch(/Revoked 2 session\(s\)/);
    expect((await refresh(app, c.refresh_token)).statusCode).toBe(401);
  });

  it('admin revocations and disabling go through core: each reports session_revoked', async () => {
    const a = await signUp(app);
    await signUp(app);
    const events: TokenServiceEvent[] = [];
    const run = async (command: typeof runUsers, ...args: string[]) =>
      command(
        [...args, '--database-url', `sqlite:${file}`],
        {},
        () => {},
        clock,
        (e) => events.push(e),
      );
    await run(runSessions, 'revoke', a.session_id);
    await run(runSessions, 'revoke-all', 'ada@example.com');
    await signUp(app);
    await run(runUsers, 'disable', 'ada@example.com');
    expect(events.filter((e) => e.kind === 'session_revoked')).toEqual([
      { kind: 'session_revoked', reason: 'admin', sessionId: a.session_id, count: 1 },
      expect.objectContaining({ kind: 'session_revoked', reason: 'admin', count: 1 }),
      expect.objectContaining({ kind: 'session_revoked', reason: 'user_disabled', count: 1 }),
    ]);
  });

  it('unknown users and sessions are not_found; missing arguments are usage errors', async () => {
    expect(await code(cli(runUsers, 'disable', 'nobody@example.com'))).toBe('not_found');
    expect(await code(cli(runUsers, 'disable', 'usr_nope'))).toBe('not_found');
    expect(await code(cli(runSessions, 'revoke', 'ses_nope'))).toBe('not_found');
    expect(await code(cli(runSessions, 'list'))).toBe('ConfigError');
    expect(await code(cli(runUsers, 'frobnicate'))).toBe('ConfigError');
    expect(await cli(runUsers)).toMatch(/Usage: baton users/);
  });

  it('sessions list reads every page: all of 230 live sessions, each once', async () => {
    const { session_id } = await signUp(app);
    const seed = (await store.findSession(session_id))!;
    // Written directly (no cap): more than two pages of the CLI's 100, many sharing their last use.
    for (let i = 0; i < 229; i++)
      await store.createSession({
        session: {
          ...seed,
          id: `ses_many${String(i).padStart(3, '0')}`,
          lastUsedAt: seed.lastUsedAt + (i % 7),
        },
        firstToken: { id: `tok_many${i}`, secretHash: 'x' },
      });
    const ids = [...(await cli(runSessions, 'list', 'ada@example.com')).matchAll(/^(ses_\S+)/gm)].map(
      (m) => m[1],
    );
    expect(ids).toHaveLength(230);
    expect(new Set(ids).size).toBe(230);
  });
});
