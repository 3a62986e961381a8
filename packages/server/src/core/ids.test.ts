import { describe, expect, it } from 'vitest';
import { newId, randomId128, timeOrderedId128 } from './ids.js';

describe('random identifiers', () => {
  it('are 128-bit base64url strings, never repeated across pool refills', () => {
    const ids = Array.from({ length: 1000 }, () => randomId128());
    for (const id of ids) {
      expect(id).toMatch(/^[A-Za-z0-9_-]{22}$/);
      expect(Buffer.from(id, 'base64url')).toHaveLength(16);
    }
    expect(new Set(ids).size).toBe(ids.length);
  });
  it('time-ordered ones start with the time in milliseconds and keep 80 random bits', () => {
    const at = Date.UTC(2026, 11, 3, 9, 0, 0, 123);
    const ids = Array.from({ length: 1000 }, () => timeOrderedId128(at));
    for (const id of ids) {
      expect(id).toMatch(/^[A-Za-z0-9_-]{22}$/);
      const bytes = Buffer.from(id, 'base64url');
      expect(bytes).toHaveLength(16);
      expect(bytes.readUIntBE(0, 6)).toBe(at);
    }
    expect(new Set(ids).size).toBe(ids.length);
    // The random part differs in every byte position across the ids.
    for (let byte = 6; byte < 16; byte++)
      expect(new Set(ids.map((id) => Buffer.from(id, 'base64url')[byte])).size).toBeGreaterThan(100);
    // A later millisecond gives a later prefix, so later ids sort after earlier ones by their bytes.
    const later = Buffer.from(timeOrderedId128(at + 1), 'base64url');
    expect(Buffer.compare(later.subarray(0, 6), Buffer.from(ids[0]!, 'base64url').subarray(0, 6))).toBe(1);
  });
  it('carry their prefix', () => {
    expect(newId('ses')).toMatch(/^ses_[A-Za-z0-9_-]{22}$/);
  });
});
