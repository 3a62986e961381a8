/** Encodes bytes or UTF-8 text as unpadded base64url (RFC 4648 §5). */
export function b64url(input: Buffer | string): string {
  return (typeof input === 'string' ? Buffer.from(input, 'utf8') : input).toString('base64url');
}

const ALPHABET = /^[A-Za-z0-9_-]*$/;

/**
 * Decodes canonical unpadded base64url, or returns null. Node's decoder is
 * lenient (it skips padding, `+`, `/` and spaces); a verifier that accepts
 * several spellings of one token invites signature-malleability bugs, so
 * anything that does not re-encode to the same text is refused.
 */
export function decodeCanonical(text: string): Buffer | null {
  if (!ALPHABET.test(text) || text.length % 4 === 1) return null;
  const bytes = Buffer.from(text, 'base64url');
  return bytes.toString('base64url') === text ? bytes : null;
}
