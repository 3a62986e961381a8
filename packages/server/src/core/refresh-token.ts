import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Refresh tokens are opaque: `brt_<lookup id>.<secret>`. The prefix lets
 * secret scanners spot a leaked token; the lookup id (128 random bits) finds
 * the row without a secret-dependent query; the secret (256 random bits) is
 * stored only as its SHA-256. A fast hash is right here: the secret is
 * full-entropy random, so there is nothing for a slow hash to protect.
 */
const FORMAT = /^brt_([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{43})$/;
const ID_BYTES = 16;
const SECRET_BYTES = 32;

/** The two halves of a well-formed refresh token. */
export interface ParsedRefreshToken {
  /** The lookup id: the row's primary key. */
  id: string;
  /** The 32 secret bytes. */
  secret: Buffer;
}

/** A refresh token as minted: the string for the client, the hash for the store. */
export interface MintedRefreshToken extends ParsedRefreshToken {
  token: string;
  /** base64url SHA-256 of the secret: the only form that is stored. */
  hash: string;
}

/**
 * Parses a presented refresh token, or returns null for anything that is not
 * exactly our format. Non-canonical base64url (a flipped trailing bit that
 * decodes to the same bytes) is rejected, so one token has one spelling.
 */
export function parseRefreshToken(token: unknown): ParsedRefreshToken | null {
  if (typeof token !== 'string' || token.length > 100) return null;
  const match = FORMAT.exec(token);
  if (!match) return null;
  const [, id, secretText] = match as unknown as [string, string, string];
  const secret = Buffer.from(secretText, 'base64url');
  if (secret.length !== SECRET_BYTES || secret.toString('base64url') !== secretText) return null;
  const idBytes = Buffer.from(id, 'base64url');
  if (idBytes.length !== ID_BYTES || idBytes.toString('base64url') !== id) return null;
  return { id, secret };
}

function mint(id: string, secret: Buffer): MintedRefreshToken {
  return { id, secret, token: `brt_${id}.${secret.toString('base64url')}`, hash: hashSecret(secret) };
}

/** A fresh refresh token with a random lookup id and a random 256-bit secret. */
export function newRefreshToken(): MintedRefreshToken {
  return mint(newRefreshTokenId(), randomBytes(SECRET_BYTES));
}

/** A random lookup id for a refresh token row. */
export function newRefreshTokenId(): string {
  return randomBytes(ID_BYTES).toString('base64url');
}

/**
 * The successor of a refresh token, derived from the parent's secret and the
 * successor's (random, stored) id. Deriving instead of storing lets a replay
 * inside the grace window get the very same successor back although only
 * hashes are stored; and since the successor id is random and lives only in
 * the store, holding the parent alone does not let anyone compute it offline.
 */
export function deriveSuccessor(parentSecret: Buffer, successorId: string): MintedRefreshToken {
  const secret = createHmac('sha256', parentSecret).update(`baton/rt/v1/${successorId}`).digest();
  return mint(successorId, secret);
}

/** base64url SHA-256 of a refresh-token secret. */
export function hashSecret(secret: Buffer): string {
  return createHash('sha256').update(secret).digest('base64url');
}

/** Constant-time check of a presented secret against a stored hash. */
export function secretMatches(secret: Buffer, storedHash: string): boolean {
  const expected = Buffer.from(storedHash, 'base64url');
  const actual = createHash('sha256').update(secret).digest();
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}
