import { randomFillSync } from 'node:crypto';

const ID_BYTES = 16;
const POOLED_IDS = 256;
const pool = Buffer.alloc(ID_BYTES * POOLED_IDS);
let nextId = POOLED_IDS;

/**
 * 128 random bits as base64url (22 characters), for identifiers: lookup
 * ids, `jti`s, row ids. They come from a pooled buffer refilled from the
 * CSPRNG every 256 ids, one call instead of one per id on the refresh path.
 * Each slice is handed out once. Not for secrets: those are drawn fresh.
 */
export function randomId128(): string {
  if (nextId === POOLED_IDS) {
    randomFillSync(pool);
    nextId = 0;
  }
  const at = nextId++ * ID_BYTES;
  return pool.toString('base64url', at, at + ID_BYTES);
}

/** A random identifier with a readable prefix (`usr_`, `ses_`, …) and 128 bits of randomness. */
export function newId(prefix: 'usr' | 'ses' | 'evt' | 'key' | 'cli'): string {
  return `${prefix}_${randomId128()}`;
}
