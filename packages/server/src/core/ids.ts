import { randomBytes } from 'node:crypto';

/** A random identifier with a readable prefix (`usr_`, `ses_`, …) and 128 bits of randomness. */
export function newId(prefix: 'usr' | 'ses' | 'evt' | 'key' | 'cli'): string {
  return `${prefix}_${randomBytes(16).toString('base64url')}`;
}
