import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { serviceAvailable } from '../../../../../test/e2e/support/services.js';
import { type ConformanceFactory, storeConformance } from '../../../test/store-conformance.js';
import { clientRecord, openSessions, readUserSessions } from '../../../test/store-fixtures.js';
import { storeLifecycle } from '../../../test/store-lifecycle.js';
import { storeTurns } from '../../../test/store-turns.js';
import { openStore } from '../open-store.js';
import type { Store } from '../store.js';
import { postgresMigrations } from './postgres-migrations.js';
import { createPostgresStore } from './postgres-store.js';

/** The CI service: trust auth, database `test`. Every test works in a schema of its own. */
const DB_URL = 'postgres://postgres@127.0.0.1:5432/test';
const T0 = 1_800_000_000_000;
const freshSchema = () => `baton_test_${randomBytes(6).toString('hex')}`;

const available = await serviceAvailable('PostgreSQL', 5432);

describe.runIf(available)('PostgreSQL store', () => {
  const admin = new pg.Pool({ connectionString: DB_URL, max: 2 });
  const created = new Set<string>();
  const drop = async (schema: string) => {
    await admin.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(schema)} CASCADE`);
    created.delete(schema);
  };
  afterAll(async () => {
    for (const schema of [...created]) await drop(schema);
    await admin.end();
  });

  let schema: string | undefined;
  const factory: ConformanceFactory = {
    async open() {
      schema = freshSchema();
      created.add(schema);
      const store = createPostgresStore({ connectionString: DB_URL, schema, max: 5 });
      await store.migrate();
      return store;
    },
    // A second pool on the same schema stands in for a second server instance.
    async openSecond() {
      return createPostgresStore({ connectionString: DB_URL, schema: schema!, max: 5 });
    },
    async cleanup() {
      if (schema) await drop(schema);
      schema = undefined;
    },
    async rawSql(text) {
      const c = await admin.connect();
      try {
        await c.query(`SET search_path TO ${pg.escapeIdentifier(schema!)}`);
        return (await c.query(text)).rows;
      } finally {
        await c.query('RESET search_path').catch(() => {});
        c.release();
      }
    },
    duplicateKeyCode: '23505',
  };
  storeConformance('PostgreSQL', factory);
  storeLifecycle('PostgreSQL', factory);
  storeTurns('PostgreSQL', factory);

  describe('PostgreSQL adapter', () => {
    /** Opens stores on one fresh schema and always closes them and drops it. */
    async function withSchema(fn: (schema: string) => Promise<void>, opened: Store[] = []) {
      const name = freshSchema();
      created.add(name);
      try {
        await fn(name);
      } finally {
        await Promise.all(opened.map((s) => s.close()));
        await drop(name);
      }
    }

    it('says it is postgres and answers ping', async () => {
      const opened: Store[] = [];
      await withSchema(async (name) => {
        const store = createPostgresStore({ connectionString: DB_URL, schema: name });
        opened.push(store);
        expect(store.dialect).toBe('postgres');
        await expect(store.ping()).resolves.toBeUndefined();
      }, opened);
    });

    it('a rotation changes no indexed column and finds room on its page, so its updates stay heap-only (HOT)', async () => {
      const opened: Store[] = [];
      await withSchema(async (name) => {
        const store = createPostgresStore({ connectionString: DB_URL, schema: name });
        opened.push(store);
        await store.migrate();
        // The columns the rotation statement updates (sql-store.ts, rotateInOneStatement).
        const rotated: Record<string, string[]> = {
          sessions: ['last_used_at', 'idle_expires_at'],
          refresh_tokens: ['used_at', 'successor_id'],
        };
        const { rows: indexes } = await admin.query<{ tablename: string; indexdef: string }>(
          'SELECT tablename, indexdef FROM pg_indexes WHERE schemaname = $1',
          [name],
        );
        for (const [table, columns] of Object.entries(rotated)) {
          const defs = indexes.filter((i) => i.tablename === table).map((i) => i.indexdef);
          expect(defs.length).toBeGreaterThan(0);
          for (const column of columns)
            expect(defs.filter((d) => new RegExp(`\\b${column}\\b`).test(d))).toEqual([]);
        }
        const { rows: options } = await admin.query<{ relname: string; reloptions: string[] | null }>(
          `SELECT c.relname, c.reloptions FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = $1 AND c.relname IN ('sessions', 'refresh_tokens') ORDER BY c.relname`,
          [name],
        );
        expect(options).toEqual([
          { relname: 'refresh_tokens', reloptions: ['fillfactor=90'] },
          { relname: 'sessions', reloptions: ['fillfactor=80'] },
        ]);
      }, opened);
    });

    it('the session cap, the listing and revoking a user’s sessions read the live-sessions index, not every session the user had', async () => {
      // The statements are the store's own, with their values, recorded as it sends them.
      const sent: { text: string; values: unknown[] }[] = [];
      const query = pg.Client.prototype.query;
      const spy = vi.spyOn(pg.Client.prototype, 'query').mockImplementation(function (
        this: pg.Client,
        ...args: unknown[]
      ) {
        const [first, second] = args as [
          string | { text: string; values?: unknown[] },
          unknown[] | undefined,
        ];
        const text = typeof first === 'string' ? first : first.text;
        const values = typeof first === 'string' ? (second ?? []) : (first.values ?? []);
        if (/(FROM|UPDATE)\s+\S*sessions"?\s[^;]*WHERE\s+user_id\s*=/.test(text)) sent.push({ text, values });
        return (query as (...a: unknown[]) => unknown).apply(this, args);
      } as typeof query);
      const opened: Store[] = [];
      try {
        await withSchema(async (name) => {
          const store = createPostgresStore({ connectionString: DB_URL, schema: name });
          opened.push(store);
          await store.migrate();
          await store.createClient(clientRecord('app'));
          await openSessions(store, 1);
          // Two logins over a cap of one (the count runs, and the eviction), the listing, the revocation.
          expect(await readUserSessions(store)).toEqual(['ses_b']);
          spy.mockRestore();
          const statements = [...new Map(sent.map((s) => [s.text, s])).values()];
          expect(statements.length).toBeGreaterThanOrEqual(4); // count, eviction, listing, revocation
          // A table this small is read whole whatever its indexes; which index is the question.
          const c = await admin.connect();
          try {
            await c.query('SET enable_seqscan = off');
            for (const { text, values } of statements) {
              const plan = (await c.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${text}`, values)).rows
                .map((r) => r['QUERY PLAN'])
                .join('\n');
              expect({ text, plan }).toEqual({ text, plan: expect.stringContaining('sessions_user_live') });
              expect(plan).not.toContain('sessions_user_id');
            }
          } finally {
            c.release();
          }
        }, opened);
      } finally {
        spy.mockRestore();
      }
    });

    it('ping rejects when the database cannot be reached', async () => {
      const store = createPostgresStore({ connectionString: 'postgres://postgres@127.0.0.1:1/test' });
      try {
        await expect(store.ping()).rejects.toThrow();
      } finally {
        await store.close();
      }
    });

    it('ping gives up on a database that accepts but never answers', async () => {
      const silent = {
        connect: () => new Promise(() => {}),
        query: () => new Promise(() => {}),
        on: () => silent,
        end: async () => {},
      };
      const store = createPostgresStore({ pool: silent as unknown as pg.Pool });
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
      try {
        const pinged = store.ping().then(
          () => 'answered',
          (e: unknown) => e,
        );
        await vi.advanceTimersByTimeAsync(5000);
        expect(await pinged).toBeInstanceOf(Error);
      } finally {
        vi.useRealTimers();
        await store.close();
      }
    });

    it('six processes migrating one fresh schema at once apply each step exactly once', async () => {
      const opened: Store[] = [];
      await withSchema(async (name) => {
        for (let i = 0; i < 6; i++)
          opened.push(createPostgresStore({ connectionString: DB_URL, schema: name, max: 1 }));
        const applied = await Promise.all(opened.map((s) => s.migrate()));
        expect([...applied].sort()).toEqual([0, 0, 0, 0, 0, postgresMigrations.length]);
        const recorded = await admin.query(
          `SELECT version FROM ${pg.escapeIdentifier(name)}.baton_migrations ORDER BY version`,
        );
        expect(recorded.rows.map((r: { version: number }) => r.version)).toEqual(
          postgresMigrations.map((m) => m.version),
        );
        expect(await opened[0]!.migrate()).toBe(0);
      }, opened);
    });

    it('keeps its tables in its schema, apart from another schema in the same database', async () => {
      const opened: Store[] = [];
      await withSchema(async (one) => {
        await withSchema(async (two) => {
          const a = createPostgresStore({ connectionString: DB_URL, schema: one });
          const b = createPostgresStore({ connectionString: DB_URL, schema: two });
          opened.push(a, b);
          await Promise.all([a.migrate(), b.migrate()]);
          await a.createUser({ id: 'usr_1', email: 'same@example.com', passwordHash: 'h', createdAt: T0 });
          await b.createUser({ id: 'usr_1', email: 'same@example.com', passwordHash: 'h', createdAt: T0 });
          expect(await a.listUsers()).toHaveLength(1);
          expect(await b.listUsers()).toHaveLength(1);
          const tables = await admin.query(
            `SELECT table_schema FROM information_schema.tables WHERE table_name = 'users' AND table_schema = ANY($1)`,
            [[one, two]],
          );
          expect(tables.rows.map((r: { table_schema: string }) => r.table_schema).sort()).toEqual(
            [one, two].sort(),
          );
        });
      }, opened);
    });

    it('openStore selects the schema with ?schema= and passes other parameters to pg', async () => {
      const opened: Store[] = [];
      await withSchema(async (name) => {
        const store = await openStore(`${DB_URL}?application_name=baton-test&schema=${name}`);
        opened.push(store);
        expect(store.dialect).toBe('postgres');
        expect(await store.migrate()).toBe(postgresMigrations.length);
        const found = await admin.query('SELECT 1 FROM information_schema.tables WHERE table_schema = $1', [
          name,
        ]);
        expect(found.rowCount).toBeGreaterThan(0);
      }, opened);
    });

    it('refuses bad URLs and options without repeating the DB_URL', async () => {
      const secret = 'hunter2-not-for-logs';
      const bad = [
        `postgres://u:${secret}@127.0.0.1/test?schema=Bad-Name`,
        `postgres://u:${secret}@127.0.0.1/test?schema=a&schema=b`,
        `postgres://u:${secret}@127.0.0.1/test?options=-c%20search_path%3Dx`,
        `postgres://u:${secret}@127.0.0.1/test?schema=%zz`,
      ];
      for (const url of bad) {
        const err = await openStore(url).then(
          () => null,
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(TypeError);
        expect((err as Error).message).not.toContain(secret);
      }
      const pool = new pg.Pool({ connectionString: DB_URL });
      try {
        expect(() => createPostgresStore({})).toThrow(TypeError);
        expect(() => createPostgresStore({ connectionString: DB_URL, pool })).toThrow(TypeError);
        expect(() => createPostgresStore({ pool, max: 3 })).toThrow(TypeError);
        expect(() => createPostgresStore({ connectionString: DB_URL, max: 0 })).toThrow(TypeError);
        expect(() => createPostgresStore({ connectionString: DB_URL, schema: 'x; DROP' })).toThrow(TypeError);
        expect(() => createPostgresStore({ connectionString: 'mysql://x' })).toThrow(TypeError);
        expect(() =>
          createPostgresStore({ connectionString: DB_URL, ssl: true } as unknown as {
            connectionString: string;
          }),
        ).toThrow(/unknown option "ssl"/);
      } finally {
        await pool.end();
      }
    });

    describe('the refreshes of one turn share their statements', () => {
      /**
       * A caller-owned pool that records the text of every `query` it is asked
       * for and passes the call on unchanged: counting statements, not mocking.
       * (Units in a transaction go through `connect()`, and are not counted.)
       */
      function countingPool() {
        const pool = new pg.Pool({ connectionString: DB_URL, max: 5 });
        const texts: string[] = [];
        const query = pool.query.bind(pool) as (...args: unknown[]) => unknown;
        pool.query = ((...args: unknown[]) => {
          const q = args[0];
          texts.push(typeof q === 'string' ? q : (q as { text: string }).text);
          return query(...args);
        }) as typeof pool.query;
        return { pool, texts };
      }

      /** Client `app` and `n` sessions: user `usr_<i>`, session `ses_<i>`, token `tok_<i>`. */
      async function sessions(store: Store, n: number) {
        await store.createClient(clientRecord('app'));
        return openSessions(store, n);
      }
      const rotation = (parentId: string, i: number, successorId = `${parentId}_next`) => ({
        parentId,
        successor: { id: successorId, secretHash: `hash_${successorId}` },
        now: T0 + 100 + i,
        idleExpiresAt: T0 + 2000 + i,
      });

      /** Runs `fn` on a migrated store over a counting pool, then closes both and drops the schema. */
      async function counted(fn: (store: Store, texts: string[]) => Promise<void>) {
        const { pool, texts } = countingPool();
        try {
          await withSchema(async (name) => {
            const store = createPostgresStore({ pool, schema: name });
            try {
              await store.migrate();
              await fn(store, texts);
            } finally {
              await store.close();
            }
          });
        } finally {
          await pool.end();
        }
      }

      it('fifty refreshes in one turn: one statement for their lookups, one for their rotations', async () => {
        await counted(async (store, texts) => {
          const ids = await sessions(store, 50);
          texts.length = 0;
          const results = await Promise.all(
            ids.map(async (id, i) => {
              expect((await store.findRefreshToken(id))?.token.id).toBe(id);
              return store.rotateRefreshToken(rotation(id, i));
            }),
          );
          expect(results).toEqual(ids.map(() => ({ outcome: 'rotated' })));
          expect(texts).toHaveLength(2);
        });
      });

      it('a lone lookup and a lone rotation are one statement each', async () => {
        await counted(async (store, texts) => {
          await sessions(store, 1);
          texts.length = 0;
          expect((await store.findRefreshToken('tok_0'))?.token.usedAt).toBeNull();
          expect(texts).toHaveLength(1);
          expect(await store.rotateRefreshToken(rotation('tok_0', 0))).toEqual({ outcome: 'rotated' });
          expect(texts).toHaveLength(2);
        });
      });

      it('more lookups in one turn than one statement carries go as a few statements', async () => {
        await counted(async (store, texts) => {
          texts.length = 0;
          const found = await Promise.all(
            Array.from({ length: 70 }, (_, i) => store.findRefreshToken(`tok_${i}`)),
          );
          expect(found).toEqual(found.map(() => null));
          expect(texts.length).toBeGreaterThanOrEqual(2);
          expect(texts.length).toBeLessThanOrEqual(3);
        });
      });

      it('a shared rotation statement that fails is run again one rotation at a time', async () => {
        await counted(async (store, texts) => {
          const ids = await sessions(store, 6);
          texts.length = 0;
          // The first one's successor id is tok_5's: its INSERT fails, and with it the shared statement.
          const results = await Promise.allSettled(
            ids
              .slice(0, 5)
              .map((id, i) => store.rotateRefreshToken(rotation(id, i, i === 0 ? 'tok_5' : undefined))),
          );
          expect(results[0]).toMatchObject({ status: 'rejected', reason: { code: '23505' } });
          expect(results.slice(1)).toEqual(
            ids.slice(1, 5).map(() => ({ status: 'fulfilled', value: { outcome: 'rotated' } })),
          );
          // The shared statement, then each of the five alone.
          expect(texts).toHaveLength(6);
          expect(new Set(texts.slice(1))).toEqual(new Set([texts[1]]));
          expect(texts[0]).not.toBe(texts[1]);
        });
      });

      it('the shared statements keep a generic plan on a connection, not one plan per batch', async () => {
        // One connection, so pg_prepared_statements (per connection) shows every execution.
        const pool = new pg.Pool({ connectionString: DB_URL, max: 1 });
        try {
          await withSchema(async (name) => {
            const store = createPostgresStore({ pool, schema: name });
            try {
              await store.migrate();
              const ids = await sessions(store, 3);
              // Enough rows that PostgreSQL would rather plan each small batch than use a generic plan.
              const q = pg.escapeIdentifier(name);
              await pool.query(`INSERT INTO ${q}.users (id, email, password_hash, created_at)
                SELECT 'bulk_' || g, 'bulk_' || g || '@example.com', 'h', 0 FROM generate_series(1, 5000) g`);
              await pool.query(`INSERT INTO ${q}.sessions (id, user_id, client_id, created_at, last_used_at,
                  idle_expires_at, expires_at)
                SELECT 'bulk_' || g, 'bulk_' || g, 'app', 0, 0, 1, 1 FROM generate_series(1, 5000) g`);
              await pool.query(`INSERT INTO ${q}.refresh_tokens (id, session_id, secret_hash, created_at)
                SELECT 'bulk_' || g, 'bulk_' || (g % 5000 + 1), 'h', 0 FROM generate_series(1, 50000) g`);
              await pool.query(`ANALYZE ${q}.users, ${q}.sessions, ${q}.refresh_tokens`);
              let current = ids;
              for (let round = 1; round <= 10; round++) {
                current = await Promise.all(
                  current.map(async (id, i) => {
                    expect((await store.findRefreshToken(id))?.token.usedAt).toBeNull();
                    const next = `tok_${i}_${round}`;
                    expect(await store.rotateRefreshToken(rotation(id, round, next))).toEqual({
                      outcome: 'rotated',
                    });
                    return next;
                  }),
                );
              }
              const { rows } = await pool.query<{ generic_plans: string; custom_plans: string }>(
                "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement LIKE '%unnest%'",
              );
              // The lookup and the rotation; PostgreSQL makes 5 custom plans before it compares.
              expect(rows).toHaveLength(2);
              for (const r of rows)
                expect({ generic: Number(r.generic_plans), custom: Number(r.custom_plans) }).toEqual({
                  generic: 5,
                  custom: 5,
                });
            } finally {
              await store.close();
            }
          });
        } finally {
          await pool.end();
        }
      });

      it('an outage fails every lookup and rotation of the turn with temporarily_unavailable', async () => {
        const store = createPostgresStore({ connectionString: 'postgres://postgres@127.0.0.1:1/test' });
        try {
          const calls = [
            ...Array.from({ length: 5 }, (_, i) => store.findRefreshToken(`tok_${i}`)),
            ...Array.from({ length: 5 }, (_, i) => store.rotateRefreshToken(rotation(`tok_${i}`, i))),
          ];
          const settled = await Promise.allSettled(calls);
          expect(settled).toEqual(
            calls.map(() => ({
              status: 'rejected',
              reason: expect.objectContaining({ code: 'temporarily_unavailable' }),
            })),
          );
        } finally {
          await store.close();
        }
      });
    });

    it('borrows a caller-owned pool and leaves it open on close', async () => {
      const pool = new pg.Pool({ connectionString: DB_URL, max: 2 });
      try {
        await withSchema(async (name) => {
          const store = createPostgresStore({ pool, schema: name });
          await store.migrate();
          await store.createUser({ id: 'usr_1', email: 'p@example.com', passwordHash: 'h', createdAt: T0 });
          await store.close();
          const r = await pool.query(`SELECT count(*)::int AS n FROM ${pg.escapeIdentifier(name)}.users`);
          expect(r.rows[0]).toEqual({ n: 1 });
        });
      } finally {
        await pool.end();
      }
    });
  });
});
