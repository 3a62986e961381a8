import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ISSUER, signUp, standalone, type TestClock, tempStore, testClock } from '../../test/helpers.js';
import { createServer } from '../http/app.js';
import type { Store } from '../store/store.js';
import { runClients } from './clients.js';
import { runKeys } from './keys.js';
import { runSessions } from './sessions.js';
import { runUsers } from './users.js';

/** Anything that would betray a secret: a password hash, a client secret hash, a private key. */
const SECRETS = /argon2|secret|hash|"d"|private|brt_|BEGIN/i;
/** The same in the values, where random ids may hold any four letters inside them. */
const SECRET_VALUES = standalone(['argon2', 'secret', 'hash', 'private', 'brt_', '-----BEGIN'], 'i');

/** Every key of a parsed document, at any depth. */
const keysOf = (value: unknown): string[] =>
  Array.isArray(value)
    ? value.flatMap(keysOf)
    : value && typeof value === 'object'
      ? Object.entries(value).flatMap(([k, v]) => [k, ...keysOf(v)])
      : [];

describe('--json on every listing: one document, stable names, no secrets', () => {
  let file: string;
  let dispose: () => Promise<void>;
  let clock: TestClock;
  let app: Awaited<ReturnType<typeof createServer>>;

  beforeEach(async () => {
    let store: Store;
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
  const json = async (run: typeof runUsers, ...args: string[]) => {
    const text = await cli(run, ...args, '--json');
    expect(text).not.toMatch(SECRET_VALUES);
    const parsed: unknown = JSON.parse(text);
    expect(JSON.stringify(keysOf(parsed))).not.toMatch(SECRETS);
    return parsed as Record<string, Record<string, unknown>[]> & {
      users: Record<string, unknown>[];
      sessions: Record<string, unknown>[];
      keys: Record<string, unknown>[];
    };
  };

  it('users list --json', async () => {
    await signUp(app);
    const { users } = await json(runUsers, 'list');
    expect(users).toEqual([
      { id: expect.any(String), email: 'ada@example.com', created_at: expect.any(String), disabled_at: null },
    ]);
  });

  it('sessions list --json', async () => {
    const a = await signUp(app);
    const { sessions } = await json(runSessions, 'list', 'ada@example.com');
    expect(sessions).toHaveLength(1);
    expect(sessions[0]).toMatchObject({ id: a.session_id, client_id: expect.any(String) });
    expect(Object.keys(sessions[0]!).sort()).toEqual(
      [
        'client_id',
        'created_at',
        'expires_at',
        'id',
        'idle_expires_at',
        'ip',
        'last_used_at',
        'scope',
        'user_agent',
        'user_id',
      ].sort(),
    );
  });

  it('clients list --json (a confidential client: no secret, no hash)', async () => {
    const created = await cli(runClients, 'create', '--id', 'api', '--name', 'API', '--scope', 'read');
    const secret = /client_secret: (\S+)/.exec(created)![1]!;
    const text = await cli(runClients, 'list', '--json');
    expect(text).not.toContain(secret);
    const { clients } = JSON.parse(text) as { clients: Record<string, unknown>[] };
    expect(clients.find((c) => c.id === 'api')).toEqual({
      id: 'api',
      name: 'API',
      type: 'confidential',
      allowed_scopes: ['read'],
      allowed_origins: [],
      audience: null,
      access_ttl_s: null,
      refresh_idle_ttl_s: null,
      session_max_ttl_s: null,
      created_at: expect.any(String),
    });
  });

  it('keys list --json', async () => {
    const { keys } = await json(runKeys, 'list');
    expect(keys.length).toBeGreaterThan(0);
    for (const k of keys)
      expect(Object.keys(k).sort()).toEqual(['activates_at', 'alg', 'kid', 'retired_at', 'state']);
    expect(keys.some((k) => k.state === 'signing')).toBe(true);
  });
});
