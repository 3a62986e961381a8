import { describe, expect, it } from 'vitest';
import { isCanonicalBase64url } from './jws.js';

describe('isCanonicalBase64url (RFC 4648 §5, §3.5)', () => {
  it('accepts what Node encodes, for every length mod 3', () => {
    for (let n = 0; n < 70; n++) {
      const bytes = Buffer.from(Array.from({ length: n }, (_, i) => (i * 37 + n) & 0xff));
      expect(isCanonicalBase64url(bytes.toString('base64url'))).toBe(true);
    }
  });
  it.each([
    ['padding', 'YQ=='],
    ['a single padding char', 'YWI='],
    ['"+"', 'a+b_'],
    ['"/"', 'a/b-'],
    ['a space', 'YW Jj'],
    ['a newline', 'YWJj\nZA'],
    ['one leftover character', 'YWJjZ'],
    ['non-zero unused bits after 2 chars', 'YR'],
    ['non-zero unused bits after 3 chars', 'YWJ'],
    ['non-ASCII', 'YWJjé'],
  ])('refuses %s', (_name, segment) => {
    expect(isCanonicalBase64url(segment)).toBe(false);
  });
  it('refuses exactly the spellings a lenient decoder maps to the same bytes', () => {
    // "YR" and "YQ" both decode to "a" in Node; only "YQ" is canonical.
    expect(Buffer.from('YR', 'base64url').toString()).toBe('a');
    expect(isCanonicalBase64url('YQ')).toBe(true);
    expect(isCanonicalBase64url('YR')).toBe(false);
  });
});
