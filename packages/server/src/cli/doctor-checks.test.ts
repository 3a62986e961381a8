import { describe, expect, it } from 'vitest';
import { AUTOVACUUM_OFF, checkAutovacuum } from './doctor-checks.js';

describe('checkAutovacuum', () => {
  it('warns with the advice when PostgreSQL runs without autovacuum', () => {
    expect(checkAutovacuum(false)).toEqual({ check: 'autovacuum', status: 'warn', message: AUTOVACUUM_OFF });
    expect(AUTOVACUUM_OFF).toMatch(/statistics/);
    expect(AUTOVACUUM_OFF).toMatch(/ANALYZE and VACUUM/);
  });

  it('is ok when it runs, and not applicable on SQLite', () => {
    expect(checkAutovacuum(true)).toEqual({ check: 'autovacuum', status: 'ok', message: 'on' });
    expect(checkAutovacuum(null)).toEqual({
      check: 'autovacuum',
      status: 'ok',
      message: 'not applicable: SQLite',
    });
  });
});
