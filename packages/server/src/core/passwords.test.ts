import { describe, expect, it } from 'vitest';
import { HASHING_SLOTS, hashingLoad, hashPassword, verifyPassword } from './passwords.js';

describe('password hashing', () => {
  it('runs at most one Argon2 computation per usable core; the others wait their turn and all finish right', async () => {
    const stored = await hashPassword('correct horse battery');
    expect(hashingLoad()).toEqual({ running: 0, waiting: 0 });
    const asked = Array.from({ length: HASHING_SLOTS + 3 }, (_, i) =>
      verifyPassword(i % 2 === 0 ? stored : null, i % 3 === 0 ? 'wrong password!' : 'correct horse battery'),
    );
    expect(hashingLoad()).toEqual({ running: HASHING_SLOTS, waiting: 3 });
    const results = await Promise.all(asked);
    expect(results).toEqual(asked.map((_, i) => i % 2 === 0 && i % 3 !== 0));
    expect(hashingLoad()).toEqual({ running: 0, waiting: 0 });
  });

  it('a failing verification (a malformed stored hash) frees its slot', async () => {
    const results = await Promise.all(
      Array.from({ length: HASHING_SLOTS + 2 }, () =>
        verifyPassword('$argon2id$garbage', 'correct horse battery'),
      ),
    );
    expect(results.every((ok) => ok === false)).toBe(true);
    expect(hashingLoad()).toEqual({ running: 0, waiting: 0 });
  });
});
