import {
  type MintedOpaqueToken,
  newOpaqueToken,
  type ParsedOpaqueToken,
  parseOpaqueToken,
} from './opaque-token.js';

/**
 * Device tokens are opaque: `bdv_<lookup id>.<secret>`, built like refresh
 * tokens (`opaque-token.ts`): a 128-bit random id that finds the row, a
 * 256-bit random secret stored only as its SHA-256. One proves that this
 * device logged in to one account successfully before, so a login from it
 * is exempt from that account's shared failure lockout (OWASP "Slow Down
 * Online Guessing Attacks with Device Cookies").
 */

/** How long a device stays trusted after its last successful login (and the cookie's Max-Age). */
export const DEVICE_TTL_MS = 180 * 86_400_000;

/** The two halves of a well-formed device token. */
export type ParsedDeviceToken = ParsedOpaqueToken;
/** A device token as minted: the string for the client, the hash for the store. */
export type MintedDeviceToken = MintedOpaqueToken;

/** Parses a presented device token; a hostile or foreign value is treated as no token at all (null). */
export function parseDeviceToken(token: unknown): ParsedDeviceToken | null {
  return parseOpaqueToken('bdv', token);
}

/** A fresh device token with a random lookup id and a random 256-bit secret. */
export function newDeviceToken(): MintedDeviceToken {
  return newOpaqueToken('bdv');
}
