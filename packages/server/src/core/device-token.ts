import { randomBytes } from 'node:crypto';
import { hashSecret } from './refresh-token.js';

/**
 * Device tokens are opaque: `bdv_<lookup id>.<secret>`, built like refresh
 * tokens (`refresh-token.ts`): a 128-bit random id that finds the row, a
 * 256-bit random secret stored only as its SHA-256. One proves that this
 * device logged in to one account successfully before, so a login from it
 * is exempt from that account's shared failure lockout (OWASP "Slow Down
 * Online Guessing Attacks with Device Cookies").
 */
const FORMAT = /^bdv_([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{43})$/;
const ID_BYTES = 16;
const SECRET_BYTES = 32;
/** Longest string worth matching: anything longer is not ours and is not even scanned. */
const MAX_LENGTH = 100;

/** How long a device stays trusted after its last successful login (and the cookie's Max-Age). */
export const DEVICE_TTL_MS = 180 * 86_400_000;

/** The two halves of a well-formed device token. */
export interface ParsedDeviceToken {
  /** The lookup id: the row's primary key. */
  id: string;
  /** The 32 secret bytes. */
  secret: Buffer;
}

/** A device token as minted: the string for the client, the hash for the store. */
export interface MintedDeviceToken extends ParsedDeviceToken {
  token: string;
  /** base64url SHA-256 of the secret: the only form that is stored. */
  hash: string;
}

/**
 * Parses a presented device token, or returns null for anything that is not
 * exactly our format (wrong type, too long, non-canonical base64url): a
 * hostile value is treated as no token at all.
 */
export function parseDeviceToken(token: unknown): ParsedDeviceToken | null {
  if (typeof token !== 'string' || token.length > MAX_LENGTH) return null;
  const match = FORMAT.exec(token);
  if (!match) return null;
  const [, id, secretText] = match as unknown as [string, string, string];
  const secret = Buffer.from(secretText, 'base64url');
  if (secret.length !== SECRET_BYTES || secret.toString('base64url') !== secretText) return null;
  const idBytes = Buffer.from(id, 'base64url');
  if (idBytes.length !== ID_BYTES || idBytes.toString('base64url') !== id) return null;
  return { id, secret };
}

/** A fresh device token with a random lookup id and a random 256-bit secret. */
export function newDeviceToken(): MintedDeviceToken {
  const id = randomBytes(ID_BYTES).toString('base64url');
  const secret = randomBytes(SECRET_BYTES);
  return { id, secret, token: `bdv_${id}.${secret.toString('base64url')}`, hash: hashSecret(secret) };
}
