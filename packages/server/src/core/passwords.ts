import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { hash, verify } from '@node-rs/argon2';
import { BatonError } from './errors.js';

/**
 * Argon2id at OWASP's recommended minimum (m=19 MiB, t=2, p=1).
 * @see https://cheatsheetseries.owasp.org/cheatsheets/Password_Storage_Cheat_Sheet.html
 */
export const ARGON2_OPTIONS = {
  // `Algorithm.Argon2id` is an ambient const enum (2), which isolated modules cannot read.
  algorithm: 2,
  memoryCost: 19_456,
  timeCost: 2,
  parallelism: 1,
} as const;

/** Shortest password accepted (NIST SP 800-63B §5.1.1.2). */
export const MIN_PASSWORD_LENGTH = 8;
/** Longest password accepted, in characters; generous, but bounded so hashing cost is bounded. */
export const MAX_PASSWORD_LENGTH = 1024;

/**
 * Checks a new password against the only rules worth having: a minimum and a
 * generous maximum length. No composition rules, no truncation (unlike bcrypt
 * at 72 bytes, Argon2 hashes every byte).
 */
export function assertAcceptablePassword(password: string, field = 'password'): string {
  // Any Unicode is a fine password, but NUL is where C strings and some drivers cut a secret short.
  if (password.includes('\u0000')) throw new BatonError('invalid_request', `${field} must not contain NUL`);
  const normalized = password.normalize('NFC');
  const length = [...normalized].length;
  if (length < MIN_PASSWORD_LENGTH) {
    throw new BatonError('invalid_request', `${field} must be at least ${MIN_PASSWORD_LENGTH} characters`);
  }
  if (length > MAX_PASSWORD_LENGTH) {
    throw new BatonError('invalid_request', `${field} must be at most ${MAX_PASSWORD_LENGTH} characters`);
  }
  return normalized;
}

/**
 * How many Argon2 computations run at once: one per core this process may
 * use (its CPU affinity counts). Each needs 19 MiB that it sweeps through
 * twice; more of them than cores only take turns on a core and evict each
 * other's memory from its caches, so every one gets slower and fewer finish
 * per second. The rest wait their turn here, in order.
 */
export const HASHING_SLOTS = Math.max(1, availableParallelism());

let running = 0;
const waiting: (() => void)[] = [];

/** Runs `work` when a hashing slot is free, in the order asked. */
async function inHashingSlot<T>(work: () => Promise<T>): Promise<T> {
  if (running >= HASHING_SLOTS) await new Promise<void>((resolve) => waiting.push(resolve));
  else running++;
  try {
    return await work();
  } finally {
    // The slot passes straight to the next in line (running stays the same), or is freed.
    const next = waiting.shift();
    if (next) next();
    else running--;
  }
}

/** Argon2 computations now running and waiting for a slot (for tests and diagnostics). */
export function hashingLoad(): { running: number; waiting: number } {
  return { running, waiting: waiting.length };
}

/** Argon2id hash of a password (PHC string). */
export function hashPassword(password: string): Promise<string> {
  const normalized = password.normalize('NFC');
  return inHashingSlot(() => hash(normalized, ARGON2_OPTIONS));
}

const phcBase64 = (bytes: number) => randomBytes(bytes).toString('base64').replace(/=+$/, '');

/**
 * What an unknown user's password is checked against: a PHC string with the
 * parameters of real hashes, a random salt and a random digest. Verifying
 * against it costs exactly what verifying a real hash costs and never
 * succeeds; and as nothing has to be hashed first, not even the first
 * unknown-user login of a process takes longer than a known user's.
 */
const DUMMY_HASH = `$argon2id$v=19$m=${ARGON2_OPTIONS.memoryCost},t=${ARGON2_OPTIONS.timeCost},p=${ARGON2_OPTIONS.parallelism}$${phcBase64(16)}$${phcBase64(32)}`;

/**
 * Verifies a password. With `storedHash` null (unknown user, or no password)
 * it still runs one Argon2 verification, against {@link DUMMY_HASH}, so a
 * login for an unknown account costs the same time as for a known one.
 */
export async function verifyPassword(storedHash: string | null, password: string): Promise<boolean> {
  const candidate = password.normalize('NFC');
  if (storedHash === null) {
    await inHashingSlot(() => verify(DUMMY_HASH, candidate)).catch(() => false);
    return false;
  }
  try {
    return await inHashingSlot(() => verify(storedHash, candidate));
  } catch {
    return false;
  }
}
