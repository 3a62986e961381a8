import { describe, expect, it } from 'vitest';
import type { RefreshTokenState } from '../store.js';
import { createRecentTokens } from './recent-tokens.js';

const T0 = 1_800_000_000_000;

function state(tokenId: string, sessionId: string, over: { usedAt?: number; revokedAt?: number } = {}) {
  return {
    token: {
      id: tokenId,
      sessionId,
      secretHash: `hash_${tokenId}`,
      parentId: null,
      successorId: over.usedAt ? 'next' : null,
      createdAt: T0,
      usedAt: over.usedAt ?? null,
    },
    session: {
      id: sessionId,
      userId: 'usr_a',
      clientId: 'app',
      scope: null,
      createdAt: T0,
      lastUsedAt: T0,
      idleExpiresAt: T0 + 1000,
      expiresAt: T0 + 5000,
      userAgent: null,
      ip: null,
      revokedAt: over.revokedAt ?? null,
      revokedReason: over.revokedAt ? ('logout' as const) : null,
    },
    successor: null,
  } satisfies RefreshTokenState;
}

const rotation = (parentId: string, successorId: string) => ({
  parentId,
  successor: { id: successorId, secretHash: `hash_${successorId}` },
  now: T0 + 10,
  idleExpiresAt: T0 + 1010,
});

describe('recent tokens', () => {
  it('keep only unused tokens of unrevoked sessions', () => {
    const recent = createRecentTokens();
    recent.remember(state('tok_used', 'ses_1', { usedAt: T0 + 1 }));
    recent.remember(state('tok_revoked', 'ses_2', { revokedAt: T0 + 1 }));
    recent.remember(state('tok_live', 'ses_3'));
    expect(recent.get('tok_used')).toBeUndefined();
    expect(recent.get('tok_revoked')).toBeUndefined();
    expect(recent.get('tok_live')?.token.id).toBe('tok_live');
    expect(recent.size).toBe(1);
  });

  it('a rotation takes the parent out and puts in the successor as the store wrote it', () => {
    const recent = createRecentTokens();
    recent.remember(state('tok_a', 'ses_1'));
    const parent = recent.take('tok_a');
    expect(parent?.token.id).toBe('tok_a');
    expect(recent.get('tok_a')).toBeUndefined();
    recent.rotated(parent!, rotation('tok_a', 'tok_b'));
    expect(recent.get('tok_b')).toEqual({
      token: {
        id: 'tok_b',
        sessionId: 'ses_1',
        secretHash: 'hash_tok_b',
        parentId: 'tok_a',
        successorId: null,
        createdAt: T0 + 10,
        usedAt: null,
      },
      session: { ...state('tok_a', 'ses_1').session, lastUsedAt: T0 + 10, idleExpiresAt: T0 + 1010 },
      successor: null,
    });
    // Callers cannot change what the next refresh will read.
    expect(Object.isFrozen(recent.get('tok_b')?.session)).toBe(true);
  });

  it('hold one token per session, and forget a session or all of them', () => {
    const recent = createRecentTokens();
    recent.remember(state('tok_a', 'ses_1'));
    recent.remember(state('tok_b', 'ses_1'));
    expect(recent.get('tok_a')).toBeUndefined();
    expect(recent.size).toBe(1);
    recent.remember(state('tok_c', 'ses_2'));
    recent.forgetSession('ses_1');
    expect(recent.get('tok_b')).toBeUndefined();
    expect(recent.get('tok_c')).toBeDefined();
    recent.forgetSession('ses_unknown');
    recent.forgetAll();
    expect(recent.size).toBe(0);
  });

  it('hold at most their maximum, dropping the oldest first', () => {
    const recent = createRecentTokens(3);
    for (let i = 1; i <= 5; i++) recent.remember(state(`tok_${i}`, `ses_${i}`));
    expect(recent.size).toBe(3);
    expect(['tok_1', 'tok_2', 'tok_3', 'tok_4', 'tok_5'].map((id) => recent.get(id) !== undefined)).toEqual([
      false,
      false,
      true,
      true,
      true,
    ]);
    // The dropped entries' sessions are forgotten with them.
    recent.remember(state('tok_6', 'ses_1'));
    expect(recent.size).toBe(3);
    expect(recent.get('tok_3')).toBeUndefined();
    const none = createRecentTokens(0);
    none.remember(state('tok_a', 'ses_1'));
    expect(none.size).toBe(0);
  });
});
