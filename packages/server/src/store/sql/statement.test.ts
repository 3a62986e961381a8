import { describe, expect, it } from 'vitest';
import { SqlFragment, script, sqlTag } from './statement.js';

describe('sqlTag', () => {
  const question = sqlTag({ placeholder: () => '?' });
  const dollar = sqlTag({ placeholder: (i) => `$${i + 1}` });
  const hostile = "x'; DROP TABLE users; --";

  it('sends every value as a parameter, never as SQL text', () => {
    const s = question`SELECT * FROM users WHERE email = ${hostile} AND id = ${'usr_1'}`;
    expect(s).toEqual({ text: 'SELECT * FROM users WHERE email = ? AND id = ?', params: [hostile, 'usr_1'] });
  });

  it('numbers PostgreSQL placeholders in order, each value its own', () => {
    const s = dollar`UPDATE t SET a = ${1}, b = ${2} WHERE c = ${3} OR d = ${3}`;
    expect(s.text).toBe('UPDATE t SET a = $1, b = $2 WHERE c = $3 OR d = $4');
    expect(s.params).toEqual([1, 2, 3, 3]);
  });

  it('splices only fragments, and sends undefined as NULL', () => {
    const table = new SqlFragment('"baton".users');
    const s = dollar`SELECT * FROM ${table} WHERE disabled_at = ${undefined}`;
    expect(s).toEqual({ text: 'SELECT * FROM "baton".users WHERE disabled_at = $1', params: [null] });
  });

  it('compiles one call site once, and again when its fragments differ', () => {
    const at = (table: string, id: unknown) =>
      dollar`SELECT * FROM ${new SqlFragment(table)} WHERE id = ${id}`;
    const a = at('"a".users', 1);
    const b = at('"a".users', 2);
    expect(b.text).toBe(a.text);
    expect(b.params).toEqual([2]);
    expect(at('"b".users', 3)).toEqual({ text: 'SELECT * FROM "b".users WHERE id = $1', params: [3] });
    expect(at('"a".users', 4)).toEqual({ text: 'SELECT * FROM "a".users WHERE id = $1', params: [4] });
  });

  it('marks scripts, which carry no parameters', () => {
    expect(script('CREATE TABLE a (x INTEGER); CREATE TABLE b (y INTEGER);')).toEqual({
      text: 'CREATE TABLE a (x INTEGER); CREATE TABLE b (y INTEGER);',
      params: [],
      script: true,
    });
  });
});
