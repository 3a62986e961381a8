import { createHmac } from 'node:crypto';
import {
  type MintedOpaqueToken,
  mintOpaqueToken,
  newOpaqueToken,
  newOpaqueTokenId,
  type ParsedOpaqueToken,
  parseOpaqueToken,
} from './opaque-token.js';

export { hashSecret, secretMatches } from './opaque-token.js';

/**
 * Refresh tokens are opaque `brt_<lookup id>.<secret>` strings (see
 * `opaque-token.ts`): a 128-bit lookup id (time-ordered, 80 of its bits
 * random) that finds the row, 256 random bits of secret stored only as a
 * SHA-256.
 */
export type ParsedRefreshToken = ParsedOpaqueToken;
/** A refresh token as minted: the string for the client, the hash for the store. */
export type MintedRefreshToken = MintedOpaqueToken;

/** Parses a presented refresh token, or returns null for anything not exactly in format. */
export function parseRefreshToken(token: unknown): ParsedRefreshToken | null {
  return parseOpaqueToken('brt', token);
}

/** A fresh refresh token with a new lookup id and a random 256-bit secret. */
export function newRefreshToken(): MintedRefreshToken {
  return newOpaqueToken('brt');
}

/** A new lookup id for a refresh token row. */
export function newRefreshTokenId(): string {
  return newOpaqueTokenId();
}

/**
 * The successor of a refresh token, derived from the parent's secret and the
 * successor's (new, stored) id. Deriving instead of storing lets a replay
 * inside the grace window get the very same successor back although only
 * hashes are stored; and since the successor id carries 80 random bits and
 * lives only in the store, holding the parent alone does not let anyone
 * compute it offline.
 */
export function deriveSuccessor(parentSecret: Buffer, successorId: string): MintedRefreshToken {
  const secret = createHmac('sha256', parentSecret).update(`baton/rt/v1/${successorId}`).digest();
  return mintOpaqueToken('brt', successorId, secret);
}
