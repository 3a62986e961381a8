import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { RotationResult, RotationWrite, Store } from '../src/store/store.js';
import type { ConformanceFactory } from './store-conformance.js';
import { clientRecord, openSessions } from './store-fixtures.js';

/**
 * Lookups and rotations asked for in the same event-loop turn, run by every
 * adapter on a real database next to `storeConformance`. The stores share
 * work between such calls (SQLite: one commit; PostgreSQL: one statement
 * for the lookups and one for the rotations of a turn), and each call must
 * still behave as if it ran alone: its own outcome, its own writes, all or
 * nothing, and exactly one winner among rotations of one token.
 */
export function storeTurns(name: string, factory: ConformanceFactory): void {
  describe(`Store lookups and rotations of one turn: ${name}`, () => {
    let store: Store;
    const T0 = 1_800_000_000_000;

    beforeEach(async () => {
      store = await factory.open();
      await store.createClient(clientRecord('app'));
    });
    afterEach(async () => {
      await store.close();
      await factory.cleanup?.();
    });

    const rotated = (r: RotationResult) => r.outcome === 'rotated';
    const ints = (rows: Record<string, unknown>[]) =>
      rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, Number(v)])));

    const sessions = (n: number, from = 0) => openSessions(store, n, from);

    /** Rotation `i` of `parentId`: its own successor id, hash, time and idle deadline. */
    const rotation = (parentId: string, i: number, successorId = `${parentId}_next_${i}`): RotationWrite => ({
      parentId,
      successor: { id: successorId, secretHash: `hash_${successorId}` },
      now: T0 + 100 + i,
      idleExpiresAt: T0 + 2000 + i,
    });

    it('fifty tokens looked up and rotated in one turn: each rotates with its own successor and idle deadline', async () => {
      const ids = await sessions(50);
      const results = await Promise.all(
        ids.map(async (id, i) => {
          const state = await store.findRefreshToken(id);
          expect(state).toMatchObject({
            token: { id, sessionId: `ses_${i}`, usedAt: null, secretHash: `hash_${i}` },
            session: { id: `ses_${i}`, userId: `usr_${i}`, idleExpiresAt: T0 + 1000 },
            successor: null,
          });
          return store.rotateRefreshToken(rotation(id, i));
        }),
      );
      expect(results).toEqual(ids.map(() => ({ outcome: 'rotated' })));
      for (const [i, id] of ids.entries()) {
        const after = await store.findRefreshToken(id);
        expect(after?.token).toMatchObject({ usedAt: T0 + 100 + i, successorId: `${id}_next_${i}` });
        expect(after?.successor).toEqual({
          id: `${id}_next_${i}`,
          sessionId: `ses_${i}`,
          secretHash: `hash_${id}_next_${i}`,
          parentId: id,
          successorId: null,
          createdAt: T0 + 100 + i,
          usedAt: null,
        });
        expect(after?.session).toMatchObject({ lastUsedAt: T0 + 100 + i, idleExpiresAt: T0 + 2000 + i });
      }
      expect(
        ints(
          await factory.rawSql(
            'SELECT COUNT(*) AS n, COUNT(used_at) AS used, COUNT(parent_id) AS successors FROM refresh_tokens',
          ),
        ),
      ).toEqual([{ n: 100, used: 50, successors: 50 }]);
    });

    it('ten rotations of one token among twenty of others in one turn: one of the ten wins, the nine see it', async () => {
      const others = await sessions(20);
      const [contested] = await sessions(1, 20);
      const results = await Promise.all([
        ...others.map((id, i) => store.rotateRefreshToken(rotation(id, i))),
        ...Array.from({ length: 10 }, (_, i) => store.rotateRefreshToken(rotation(contested!, i))),
      ]);
      expect(results.slice(0, 20)).toEqual(others.map(() => ({ outcome: 'rotated' })));
      const race = results.slice(20);
      expect(race.filter(rotated)).toHaveLength(1);
      const winner = race.findIndex(rotated);
      const successorId = `${contested}_next_${winner}`;
      for (const r of race.filter((r) => !rotated(r))) {
        expect(r).toMatchObject({
          outcome: 'conflict',
          state: {
            token: { id: contested, usedAt: T0 + 100 + winner, successorId },
            successor: { id: successorId, usedAt: null },
            session: { id: 'ses_20', lastUsedAt: T0 + 100 + winner, idleExpiresAt: T0 + 2000 + winner },
          },
        });
      }
      expect(
        ints(await factory.rawSql("SELECT COUNT(*) AS n FROM refresh_tokens WHERE parent_id = 'tok_20'")),
      ).toEqual([{ n: 1 }]);
    });

    it('two stores racing on twenty tokens at once: one winner per token, never two successors', async () => {
      const ids = await sessions(20);
      const other = await factory.openSecond(store);
      try {
        const attempts = ids.flatMap((id) => Array.from({ length: 6 }, (_, k) => ({ id, k })));
        const results = await Promise.all(
          attempts.map(({ id, k }) => (k % 2 ? other : store).rotateRefreshToken(rotation(id, k))),
        );
        for (const id of ids) {
          const mine = results.filter((_, j) => attempts[j]!.id === id);
          expect(mine.filter(rotated)).toHaveLength(1);
          const winner = `${id}_next_${attempts.filter((a) => a.id === id)[mine.findIndex(rotated)]!.k}`;
          expect((await store.findRefreshToken(id))?.token.successorId).toBe(winner);
          for (const lost of mine.filter((r) => !rotated(r)))
            expect(lost).toMatchObject({ outcome: 'conflict', state: { token: { successorId: winner } } });
        }
        expect(
          await factory.rawSql(
            'SELECT parent_id FROM refresh_tokens WHERE parent_id IS NOT NULL GROUP BY parent_id HAVING COUNT(*) > 1',
          ),
        ).toEqual([]);
        expect(
          ints(await factory.rawSql('SELECT COUNT(*) AS n FROM refresh_tokens WHERE parent_id IS NOT NULL')),
        ).toEqual([{ n: 20 }]);
      } finally {
        await other.close();
      }
    });

    it('one turn mixing good rotations with a spent token, a revoked session, a disabled user and an unknown id', async () => {
      // tok_0..2 good, tok_3 spent, tok_4 of a revoked session, tok_5 of a disabled (unrevoked) user.
      await sessions(6);
      expect(await store.rotateRefreshToken(rotation('tok_3', 0, 'tok_3_first'))).toEqual({
        outcome: 'rotated',
      });
      await store.revokeSession({ sessionId: 'ses_4', reason: 'logout', now: T0 + 50 });
      // Behind the store's back, as an operator's SQL might: the session stays unrevoked.
      await factory.rawSql(`UPDATE users SET disabled_at = ${T0 + 50} WHERE id = 'usr_5'`);
      const before = await factory.rawSql('SELECT * FROM sessions ORDER BY id');

      const [good0, good1, good2, spent, revoked, disabled, unknown] = await Promise.all(
        ['tok_0', 'tok_1', 'tok_2', 'tok_3', 'tok_4', 'tok_5', 'tok_nope'].map((id, i) =>
          store.rotateRefreshToken(rotation(id, i)),
        ),
      );
      expect([good0, good1, good2]).toEqual([
        { outcome: 'rotated' },
        { outcome: 'rotated' },
        { outcome: 'rotated' },
      ]);
      expect(spent).toMatchObject({
        outcome: 'conflict',
        state: {
          token: { id: 'tok_3', usedAt: T0 + 100, successorId: 'tok_3_first' },
          successor: { id: 'tok_3_first', usedAt: null },
        },
      });
      expect(revoked).toMatchObject({
        outcome: 'conflict',
        state: { token: { id: 'tok_4', usedAt: null }, session: { revokedAt: T0 + 50 }, successor: null },
      });
      expect(disabled).toMatchObject({
        outcome: 'conflict',
        state: { token: { id: 'tok_5', usedAt: null }, session: { id: 'ses_5', revokedAt: null } },
      });
      expect(unknown).toEqual({ outcome: 'conflict', state: null });

      // Nothing half-written: only the three good rotations wrote, all three of their writes.
      const after = await factory.rawSql('SELECT * FROM sessions ORDER BY id');
      expect(after.slice(3)).toEqual(before.slice(3));
      expect(
        await factory.rawSql(
          'SELECT parent_id FROM refresh_tokens WHERE parent_id IS NOT NULL ORDER BY parent_id',
        ),
      ).toEqual(['tok_0', 'tok_1', 'tok_2', 'tok_3'].map((parent_id) => ({ parent_id })));
      expect(
        await factory.rawSql(
          "SELECT id FROM refresh_tokens WHERE used_at IS NOT NULL AND id <> 'tok_3' ORDER BY id",
        ),
      ).toEqual(['tok_0', 'tok_1', 'tok_2'].map((id) => ({ id })));
      for (const i of [0, 1, 2])
        expect((await store.findRefreshToken(`tok_${i}`))?.session).toMatchObject({
          lastUsedAt: T0 + 100 + i,
          idleExpiresAt: T0 + 2000 + i,
        });
    });

    it('a rotation whose successor id collides with a token fails alone; the others of its turn rotate', async () => {
      const ids = await sessions(6);
      const results = await Promise.allSettled(
        // tok_0 is given tok_5's id as its successor: that insert must fail.
        ids
          .slice(0, 5)
          .map((id, i) => store.rotateRefreshToken(rotation(id, i, i === 0 ? 'tok_5' : undefined))),
      );
      expect(results[0]?.status).toBe('rejected');
      expect(results.slice(1)).toEqual(
        ids.slice(1, 5).map(() => ({ status: 'fulfilled', value: { outcome: 'rotated' } })),
      );
      // The failed one wrote nothing, and the token it collided with is as it was.
      expect(await store.findRefreshToken('tok_0')).toMatchObject({
        token: { usedAt: null, successorId: null },
        session: { lastUsedAt: T0, idleExpiresAt: T0 + 1000 },
      });
      expect(await store.findRefreshToken('tok_5')).toMatchObject({
        token: { sessionId: 'ses_5', parentId: null, usedAt: null, secretHash: 'hash_5' },
      });
      expect(
        ints(await factory.rawSql('SELECT COUNT(*) AS n FROM refresh_tokens WHERE parent_id IS NOT NULL')),
      ).toEqual([{ n: 4 }]);
    });

    it('looks up known, unknown and spent tokens in one turn, each with its own answer', async () => {
      await sessions(3);
      expect(await store.rotateRefreshToken(rotation('tok_2', 0))).toEqual({ outcome: 'rotated' });
      const ids = ['tok_0', 'tok_nope', 'tok_2', 'tok_1', 'tok_0', 'tok_2_next_0'];
      const found = await Promise.all(ids.map((id) => store.findRefreshToken(id)));
      expect(found.map((s) => s?.token.id ?? null)).toEqual([
        'tok_0',
        null,
        'tok_2',
        'tok_1',
        'tok_0',
        'tok_2_next_0',
      ]);
      expect(found[2]).toMatchObject({
        token: { usedAt: T0 + 100, successorId: 'tok_2_next_0' },
        successor: { id: 'tok_2_next_0', parentId: 'tok_2', usedAt: null },
        session: { id: 'ses_2' },
      });
      expect(found[0]).toEqual(found[4]);
      for (const [i, id] of ids.entries()) expect(found[i]).toEqual(await store.findRefreshToken(id));
    });
  });
}
