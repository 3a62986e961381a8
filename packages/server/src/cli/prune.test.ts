import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ISSUER, signUp, standalone, type TestClock, tempStore, testClock } from '../../test/helpers.js';
import { createServer } from '../http/app.js';
import type { Store } from '../store/store.js';
import { loadServeConfig } from './config.js';
import { runEvents } from './events.js';
import { runPrune } from './prune.js';

const DAY = 86_400_000;

describe('baton prune and baton events (in-process server on the same database)', () => {
  let store: Store;
  let file: string;
  let dispose: () => Promise<void>;
  let clock: TestClock;
  let app: Awaited<ReturnType<typeof createServer>>;

  beforeEach(async () => {
    ({ store, file, dispose } = await tempStore());
    clock = testClock();
    app = await createServer({ store, issuer: ISSUER, now: clock, pruneInterval: null });
    await app.ready();
  });
  afterEach(async () => {
    await app.close();
    await dispose();
  });

  const cli = async (run: typeof runPrune, args: string[], env: Record<string, string> = {}) => {
    let text = '';
    await run([...args, '--database-url', `sqlite:${file}`], env, (s) => (text += s), clock);
    return text;
  };

  it('prune --dry-run counts, prune deletes, per kind; --json is machine-readable', async () => {
    const { refresh_token } = await signUp(app);
    await app.inject({ method: 'POST', url: '/auth/logout', payload: { refresh_token } });
    clock.advance(2 * DAY);
    const env = { BATON_RETENTION_ENDED_SESSIONS: '1d' };
    const dry = JSON.parse(await cli(runPrune, ['--dry-run', '--json'], env));
    expect(dry).toMatchObject({ dryRun: true, deleted: { sessions: 1, session_tokens: 1 } });
    // A dry run deletes nothing.
    expect(await cli(runPrune, ['--dry-run', '--json'], env)).toContain('"sessions":1');
    const text = await cli(runPrune, [], env);
    expect(text).toMatch(/Pruning deleted:/);
    expect(text).toMatch(/sessions\s+1\n/);
    const again = JSON.parse(await cli(runPrune, ['--json'], env));
    expect(again.deleted).toEqual({
      session_tokens: 0,
      sessions: 0,
      spent_tokens: 0,
      trusted_devices: 0,
      security_events: 0,
    });
  });

  it('prune refuses a reuse-detection horizon below the grace window', async () => {
    await expect(cli(runPrune, [], { BATON_RETENTION_SPENT_TOKENS: '5s' })).rejects.toThrow(
      /BATON_RETENTION_SPENT_TOKENS/,
    );
  });

  it('events lists what happened, filtered by user, type and time, as a table or JSON', async () => {
    await signUp(app, 'ada@example.com');
    await app.inject({
      method: 'POST',
      url: '/auth/login',
      payload: { email: 'ada@example.com', password: 'wrong password!' },
    });
    clock.advance(60 * 60_000);
    await signUp(app, 'bob@example.com');
    const all = (await cli(runEvents, ['--json']))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(all.map((e) => e.type)).toEqual(['login_succeeded', 'login_failed', 'login_succeeded']);
    const ada = (await cli(runEvents, ['--user', 'ADA@example.com', '--json'])).trim().split('\n');
    expect(ada).toHaveLength(2);
    expect(await cli(runEvents, ['--type', 'login_failed'])).toMatch(/login_failed .*wrong_password/);
    const recent = (await cli(runEvents, ['--since', '30m', '--json'])).trim().split('\n');
    expect(recent).toHaveLength(1);
    const iso = new Date(clock() - 2 * 60 * 60_000).toISOString();
    expect(
      (await cli(runEvents, ['--since', iso, '--limit', '1', '--json'])).trim().split('\n'),
    ).toHaveLength(1);
    await expect(cli(runEvents, ['--type', 'nope'])).rejects.toThrow(/--type/);
    await expect(cli(runEvents, ['--limit', '0'])).rejects.toThrow(/--limit/);
    const text = await cli(runEvents, []);
    expect(text).not.toMatch(standalone(['brt_', 'bdv_', 'argon2', 'password!']));
  });
});

describe('lifecycle settings', () => {
  it('reads retention, the prune interval and the shutdown timeout, with defaults', () => {
    const defaults = loadServeConfig({});
    expect(defaults.server.retention).toEqual({
      endedSessions: 30 * DAY,
      spentTokens: 30 * DAY,
      securityEvents: 90 * DAY,
    });
    expect(defaults.server.pruneInterval).toBe(600_000);
    expect(defaults.shutdownTimeout).toBe(10_000);
    const set = loadServeConfig({
      BATON_RETENTION_ENDED_SESSIONS: '7d',
      BATON_RETENTION_SPENT_TOKENS: '1h',
      BATON_RETENTION_EVENTS: '365d',
      BATON_PRUNE_INTERVAL: 'off',
      BATON_SHUTDOWN_TIMEOUT: '3s',
    });
    expect(set.server.retention).toEqual({
      endedSessions: 7 * DAY,
      spentTokens: 3_600_000,
      securityEvents: 365 * DAY,
    });
    expect(set.server.pruneInterval).toBeNull();
    expect(set.shutdownTimeout).toBe(3000);
    expect(() => loadServeConfig({ BATON_PRUNE_INTERVAL: 'soon' })).toThrow(/BATON_PRUNE_INTERVAL/);
    expect(() => loadServeConfig({ BATON_SHUTDOWN_TIMEOUT: '0' })).toThrow(/BATON_SHUTDOWN_TIMEOUT/);
  });
});
