import { hash, randomBytes, timingSafeEqual } from 'node:crypto';
import { timeOrderedId128 } from './ids.js';

/**
 * Baton's opaque secrets (refresh tokens `brt_`, device tokens `bdv_`) share
 * one shape: `<prefix>_<lookup id>.<secret>`. The prefix lets secret
 * scanners spot a leak; the lookup id (128 bits: the time in milliseconds,
 * then 80 random bits) finds the row without a secret-dependent query; the
 * secret (256 random bits) is stored only as its SHA-256. A fast hash is right here: the secret is
 * full-entropy random, so there is nothing for a slow hash to protect.
 */
export type OpaqueTokenPrefix = 'brt' | 'bdv';

const SECRET_BYTES = 32;
/** Longest string worth matching: anything longer is not ours and is not even scanned. */
const MAX_LENGTH = 100;
/**
 * The formats, canonical spelling included: 22 base64url characters carry
 * 132 bits for the id's 128, 43 carry 258 for the secret's 256. The unused
 * low bits sit in the last character and must be zero, so it is one of the
 * characters whose value is a multiple of 16 (id) or of 4 (secret). A token
 * that matches decodes to exactly its bytes, and those bytes have no other
 * spelling that matches.
 */
const ID = '[A-Za-z0-9_-]{21}[AQgw]';
const SECRET = '[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]';
const FORMATS: Record<OpaqueTokenPrefix, RegExp> = {
  brt: new RegExp(`^brt_(${ID})\\.(${SECRET})$`),
  bdv: new RegExp(`^bdv_(${ID})\\.(${SECRET})$`),
};

/** The two halves of a well-formed opaque token. */
export interface ParsedOpaqueToken {
  /** The lookup id: the row's primary key. */
  id: string;
  /** The 32 secret bytes. */
  secret: Buffer;
}

/** An opaque token as minted: the string for the client, the hash for the store. */
export interface MintedOpaqueToken extends ParsedOpaqueToken {
  token: string;
  /** base64url SHA-256 of the secret: the only form that is stored. */
  hash: string;
}

/**
 * Parses a presented token of one kind, or returns null for anything that is
 * not exactly that format. Non-canonical base64url (a flipped unused bit that
 * decodes to the same bytes) is refused, so one token has one spelling.
 */
export function parseOpaqueToken(prefix: OpaqueTokenPrefix, token: unknown): ParsedOpaqueToken | null {
  if (typeof token !== 'string' || token.length > MAX_LENGTH) return null;
  const match = FORMATS[prefix].exec(token);
  if (!match) return null;
  const [, id, secretText] = match as unknown as [string, string, string];
  // Canonical by the format: no decoding and re-encoding to find out (every refresh parses one).
  return { id, secret: Buffer.from(secretText, 'base64url') };
}

/** Assembles a token from its id and secret. */
export function mintOpaqueToken(prefix: OpaqueTokenPrefix, id: string, secret: Buffer): MintedOpaqueToken {
  return { id, secret, token: `${prefix}_${id}.${secret.toString('base64url')}`, hash: hashSecret(secret) };
}

/** A lookup id: time-ordered, with 80 random bits (see `timeOrderedId128`). */
export function newOpaqueTokenId(): string {
  return timeOrderedId128();
}

/** A fresh token with a new lookup id and a random 256-bit secret. */
export function newOpaqueToken(prefix: OpaqueTokenPrefix): MintedOpaqueToken {
  return mintOpaqueToken(prefix, newOpaqueTokenId(), randomBytes(SECRET_BYTES));
}

/** base64url SHA-256 of a secret. */
export function hashSecret(secret: Buffer): string {
  // One-shot: a third of createHash's cost, on every refresh.
  return hash('sha256', secret, 'base64url');
}

/** Constant-time check of a presented secret against a stored hash. */
export function secretMatches(secret: Buffer, storedHash: string): boolean {
  const expected = Buffer.from(storedHash, 'base64url');
  const actual = hash('sha256', secret, 'buffer');
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}
