import { BatonError } from './errors.js';

const EMAIL = /^[^\s@]+@[^\s@]+$/;
// Cc: C0, DEL, C1. Cf: format characters, which render as nothing or reorder
// what is shown: bidi controls (U+200E/F, U+202A-202E, U+2066-2069), zero
// width (U+200B-200D), word joiner U+2060, BOM U+FEFF, soft hyphen U+00AD.
const INVISIBLE = /[\p{Cc}\p{Cf}]/u;
const FORMAT = /\p{Cf}/u;

const invalid = () => new BatonError('invalid_request', 'email must be a valid email address');

/**
 * The one spelling of an email address as an identity, so two addresses a
 * person cannot tell apart are one account:
 *
 * 1. trimmed; any control or format character (Unicode Cc, Cf) is refused;
 * 2. the local part NFC-normalised (a combining accent and its precomposed
 *    letter are one), the domain NFKC-normalised (fullwidth letters become
 *    ASCII), both lower-cased;
 * 3. the domain must not have an empty label (so no trailing dot);
 * 4. at most 254 characters, one `@`, no white space.
 *
 * ASCII addresses come out trimmed and lower-cased, as they were stored
 * before this rule, so existing accounts keep their spelling.
 * @see RFC 8265 §3.3 (UsernameCaseMapped, the model for this profile), RFC 5321 §4.5.3.1.3
 */
export function normalizeEmail(email: string): string {
  // Before trimming: trim() drops a BOM (U+FEFF) silently, and a pasted one is a sign of a spoof.
  if (FORMAT.test(email)) throw invalid();
  const trimmed = email.trim();
  if (INVISIBLE.test(trimmed)) throw invalid();
  const at = trimmed.lastIndexOf('@');
  if (at <= 0) throw invalid();
  const local = trimmed.slice(0, at).normalize('NFC').toLowerCase().normalize('NFC');
  const domain = trimmed
    .slice(at + 1)
    .normalize('NFKC')
    .toLowerCase()
    .normalize('NFKC');
  const e = `${local}@${domain}`;
  if (e.length > 254 || !EMAIL.test(e) || INVISIBLE.test(e)) throw invalid();
  if (domain.split('.').some((label) => label === '')) throw invalid();
  return e;
}
