import { describe, expect, it } from 'vitest';
import { normalizeEmail } from './accounts.js';
import { isBatonError } from './errors.js';

/** Issue 9 item 10: one address, one spelling; invisible and look-alike spellings refused or folded. */
describe('normalizeEmail', () => {
  it.each([
    ['Ada@Example.com', 'ada@example.com'],
    ['  ada@example.com  ', 'ada@example.com'],
    // Combining acute accent → precomposed é (NFC).
    ['rene\u0301@example.com', 'ren\u00e9@example.com'],
    ['REN\u00c9@example.com', 'ren\u00e9@example.com'],
    // Fullwidth domain → ASCII (NFKC on the domain), then lower case.
    ['ada@\uff25\uff58\uff41\uff4d\uff50\uff4c\uff45.com', 'ada@example.com'],
    ['ada@b\u00fccher.example', 'ada@b\u00fccher.example'],
  ])('%j → %j', (input, expected) => {
    expect(normalizeEmail(input)).toBe(expected);
  });

  it.each([
    ['NUL', 'ada\u0000@example.com'],
    ['BEL', 'ada\u0007@example.com'],
    ['DEL', 'ada\u007f@example.com'],
    ['C1 (NEL)', 'ada\u0085@example.com'],
    ['zero-width space', 'ada\u200b@example.com'],
    ['zero-width joiner', 'ad\u200da@example.com'],
    ['word joiner', 'ada@exam\u2060ple.com'],
    ['BOM', '\ufeffada@example.com'],
    ['right-to-left override', 'ada\u202e@example.com'],
    ['left-to-right mark', 'ada\u200e@example.com'],
    ['first strong isolate', 'ada\u2068@example.com'],
    ['soft hyphen (Cf)', 'ad\u00ada@example.com'],
    ['a trailing dot in the domain', 'ada@example.com.'],
    ['an empty domain label', 'ada@example..com'],
    ['no @', 'ada.example.com'],
    ['a space inside', 'a da@example.com'],
  ])('refuses %s', (_name, input) => {
    let error: unknown;
    try {
      normalizeEmail(input);
    } catch (err) {
      error = err;
    }
    expect(isBatonError(error, 'invalid_request')).toBe(true);
  });
});
