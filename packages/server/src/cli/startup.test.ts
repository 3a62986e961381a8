import { describe, expect, it } from 'vitest';
import { redactUrl } from './startup.js';

describe('redactUrl', () => {
  it('masks the password of any URL and leaves the rest as written', () => {
    expect(redactUrl('postgres://user:SECRET@host/db')).toBe('postgres://user:***@host/db');
    expect(redactUrl('postgresql://u:p%40ss@h:5432/db?schema=x')).toBe(
      'postgresql://u:***@h:5432/db?schema=x',
    );
    expect(redactUrl('redis://:SECRET@cache:6379/0')).toBe('redis://:***@cache:6379/0');
    expect(redactUrl('postgres://user@host/db')).toBe('postgres://user@host/db');
    expect(redactUrl('postgres://u:pa@ss/w@host/db?x=a@b')).toBe('postgres://u:***@host/db?x=a@b');
    expect(redactUrl('sqlite:./data/baton.db')).toBe('sqlite:./data/baton.db');
  });
});
