import { describe, expect, it } from 'vitest';
import { newId, randomId128 } from './ids.js';

describe('random identifiers', () => {
  it('are 128-bit base64url strings, never repeated across pool refills', () => {
    const ids = Array.from({ length: 1000 }, () => randomId128());
    for (const id of ids) {
      expect(id).toMatch(/^[A-Za-z0-9_-]{22}$/);
      expect(Buffer.from(id, 'base64url')).toHaveLength(16);
    }
    expect(new Set(ids).size).toBe(ids.length);
  });
  it('carry their prefix', () => {
    expect(newId('ses')).toMatch(/^ses_[A-Za-z0-9_-]{22}$/);
  });
});
