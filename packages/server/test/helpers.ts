import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { createServer } from '../src/http/app.js';
import type { ServerOptions } from '../src/http/options.js';
import { createSqliteStore } from '../src/store/sqlite/sqlite-store.js';
import type { Store } from '../src/store/store.js';

/** A clock a test moves by hand. */
export interface TestClock {
  (): number;
  advance(ms: number): void;
  set(ms: number): void;
}

/** A clock starting at a fixed instant. */
export function testClock(start = Date.UTC(2026, 10, 26, 12, 0, 0)): TestClock {
  let t = start;
  const clock = (() => t) as TestClock;
  clock.advance = (ms) => {
    t += ms;
  };
  clock.set = (ms) => {
    t = ms;
  };
  return clock;
}

/** A migrated SQLite store on a fresh file, with its cleanup. */
export async function tempStore(): Promise<{ store: Store; file: string; dispose(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'baton-test-'));
  const file = join(dir, 'baton.db');
  const store = createSqliteStore({ filename: file });
  await store.migrate();
  return {
    store,
    file,
    async dispose() {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A pattern for words that must not appear in output (token prefixes, a hash's marker, a password),
 * matched only where no base64url character comes just before: ids and key ids are random
 * base64url and now and then hold four such letters inside them (a key id `…dF_bdv_6y…` once
 * failed a run that looked for `bdv_` anywhere).
 */
export function standalone(words: string[], flags = ''): RegExp {
  const escaped = words.map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  return new RegExp(`(?<![A-Za-z0-9_-])(?:${escaped.join('|')})`, flags);
}

/** The issuer the in-process test apps use. */
export const ISSUER = 'http://localhost:3000';

/** An in-process app on a real SQLite file with a movable clock. */
export interface TestApp {
  app: FastifyInstance;
  store: Store;
  clock: TestClock;
  close(): Promise<void>;
}

/** Builds an app for `inject` tests. */
export async function testApp(options: Partial<ServerOptions> = {}): Promise<TestApp> {
  const { store, dispose } = await tempStore();
  const clock = testClock();
  const app = await createServer({ store, issuer: ISSUER, now: clock, ...options });
  await app.ready();
  return {
    app,
    store,
    clock,
    async close() {
      await app.close();
      await dispose();
    },
  };
}

/** Registers and logs in a user through the HTTP API; returns the token response. */
export async function signUp(
  app: FastifyInstance,
  email = 'ada@example.com',
  password = 'correct horse battery',
): Promise<{ access_token: string; refresh_token: string; session_id: string; expires_in: number }> {
  const reg = await app.inject({ method: 'POST', url: '/auth/register', payload: { email, password } });
  if (reg.statusCode !== 201 && reg.statusCode !== 409)
    throw new Error(`register failed: ${reg.statusCode} ${reg.body}`);
  const res = await app.inject({ method: 'POST', url: '/auth/login', payload: { email, password } });
  if (res.statusCode !== 200) throw new Error(`login failed: ${res.statusCode} ${res.body}`);
  return res.json();
}

/** POST /auth/refresh with a body token. */
export function refresh(app: FastifyInstance, refreshToken: string) {
  return app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: refreshToken } });
}
