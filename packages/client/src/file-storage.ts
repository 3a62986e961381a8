/**
 * `@baton/client/file-storage`: a {@link TokenStorage} in a JSON file, for
 * Node command-line tools. Its own entry point, so browser bundles of
 * `@baton/client` never reach `node:fs`.
 */
import { sleep } from './coordination.js';
import type { DpopKeyStore } from './dpop-keys.js';
import { BatonClientError } from './errors.js';
import type { TokenStorage } from './storage.js';

/** Options of {@link fileStorage}. */
export interface FileStorageOptions {
  /** A lock older than this is presumed abandoned by a crashed process and taken over. Default 30 s. */
  staleLockMs?: number;
  /** Give up waiting for the lock after this long (retryable `timeout`). Default 30 s. */
  lockWaitMs?: number;
}

// The client is built without Node's type definitions (it ships to browsers),
// so the few fs calls used here are typed locally.
interface Fs {
  readFile(path: string, encoding: 'utf8'): Promise<string>;
  writeFile(path: string, data: string, options: { mode: number; flag: string }): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  mkdir(path: string, options?: { recursive?: boolean; mode?: number }): Promise<string | undefined>;
  rm(path: string, options: { recursive?: boolean; force?: boolean }): Promise<void>;
  stat(path: string): Promise<{ mtimeMs: number }>;
}

let fsPromise: Promise<Fs> | undefined;
function fs(): Promise<Fs> {
  // A non-literal specifier keeps type-checking free of @types/node; loaded on first use only.
  const specifier = 'node:fs/promises';
  fsPromise ??= import(specifier) as Promise<Fs>;
  return fsPromise;
}

function errorCode(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null ? (error as { code?: string }).code : undefined;
}

function dirname(path: string): string {
  const cut = Math.max(path.lastIndexOf('/'), path.lastIndexOf('\\'));
  return cut <= 0 ? (cut === 0 ? path.slice(0, 1) : '.') : path.slice(0, cut);
}

/**
 * Stores sessions in one JSON file (`{ "<key>": "<state>" }`), written
 * atomically (temp file + rename) with mode 0600, because in token mode it
 * holds the refresh token. Its `lock` (a lock directory next to the file)
 * makes concurrent processes refresh one at a time; a process that dies
 * holding it blocks others for at most `staleLockMs`.
 *
 * @example
 * import { fileStorage } from '@baton/client/file-storage';
 * const client = createAuthClient({ baseUrl, mode: 'token', storage: fileStorage(`${homedir()}/.config/mytool/session.json`) });
 */
export function fileStorage(path: string, options: FileStorageOptions = {}): TokenStorage {
  if (typeof path !== 'string' || path === '')
    throw new TypeError('fileStorage: path must be a non-empty string');
  const staleLockMs = options.staleLockMs ?? 30_000;
  const lockWaitMs = options.lockWaitMs ?? 30_000;
  if (!(staleLockMs > 0) || !(lockWaitMs > 0))
    throw new TypeError('fileStorage: staleLockMs and lockWaitMs must be positive');

  async function readAll(): Promise<Record<string, string>> {
    let text: string;
    try {
      text = await (await fs()).readFile(path, 'utf8');
    } catch (error) {
      if (errorCode(error) === 'ENOENT') return {};
      throw error;
    }
    try {
      const data: unknown = JSON.parse(text);
      return typeof data === 'object' && data !== null && !Array.isArray(data)
        ? (data as Record<string, string>)
        : {};
    } catch {
      return {};
    }
  }

  /** Read-modify-write; write-then-rename: a reader never sees half a file, and a crash mid-write leaves the old one. */
  async function update(change: (all: Record<string, string>) => void): Promise<void> {
    const f = await fs();
    await f.mkdir(dirname(path), { recursive: true, mode: 0o700 });
    const all = await readAll();
    change(all);
    const temp = `${path}.${Date.now().toString(36)}${Math.random().toString(36).slice(2)}.tmp`;
    await f.writeFile(temp, `${JSON.stringify(all, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
    try {
      await f.rename(temp, path);
    } catch (error) {
      await f.rm(temp, { force: true });
      throw error;
    }
  }

  return {
    async get(key) {
      const value = (await readAll())[key];
      return typeof value === 'string' ? value : null;
    },

    async set(key, value) {
      await update((all) => {
        all[key] = value;
      });
    },

    keys: fileKeyStore(readAll, update),

    async lock<T>(_name: string, fn: () => Promise<T>): Promise<T> {
      const f = await fs();
      const lockDir = `${path}.lock`;
      await f.mkdir(dirname(path), { recursive: true, mode: 0o700 });
      const deadline = Date.now() + lockWaitMs;
      // mkdir is atomic on every platform and file system Node runs on: exactly one process creates it.
      for (let attempt = 0; ; attempt++) {
        try {
          await f.mkdir(lockDir);
          break;
        } catch (error) {
          if (errorCode(error) !== 'EEXIST') throw error;
        }
        try {
          const { mtimeMs } = await f.stat(lockDir);
          if (Date.now() - mtimeMs > staleLockMs) {
            // Its holder died (a live holder finishes well within staleLockMs: the client bounds its refresh).
            await f.rm(lockDir, { recursive: true, force: true });
            continue;
          }
        } catch (error) {
          if (errorCode(error) !== 'ENOENT') throw error;
          continue; // released between our mkdir and stat
        }
        if (Date.now() > deadline) {
          throw new BatonClientError(
            'timeout',
            'Timed out waiting for another process to finish refreshing',
            {
              retryable: true,
            },
          );
        }
        await sleep(Math.min(200, 10 * 2 ** Math.min(attempt, 4)) + Math.random() * 10);
      }
      try {
        return await fn();
      } finally {
        await f.rm(lockDir, { recursive: true, force: true });
      }
    },
  };
}

/** Where a session's key goes in the file: beside its state, under a name no state key uses. */
const keyEntry = (name: string) => `dpop-key:${name}`;

const ES256 = { name: 'ECDSA', namedCurve: 'P-256' } as const;

/**
 * DPoP keys in the same file (RFC 9449). Node's CryptoKeys cannot be
 * written out unless extractable, so the client makes extractable keys for
 * this store and it keeps the private JWK. The file already holds the
 * refresh token, with mode 0600: whoever can read it has both, as with any
 * key file on disk; what binding adds here is that a copy of the token
 * alone (a log, a backup of one value, a proxy) is useless.
 */
function fileKeyStore(
  readAll: () => Promise<Record<string, string>>,
  update: (change: (all: Record<string, string>) => void) => Promise<void>,
): DpopKeyStore {
  return {
    extractable: true,
    async get(name) {
      const raw = (await readAll())[keyEntry(name)];
      if (typeof raw !== 'string') return null;
      let stored: { privateJwk?: JsonWebKey; publicJwk?: JsonWebKey };
      try {
        stored = JSON.parse(raw) as typeof stored;
      } catch {
        return null;
      }
      if (stored.privateJwk === undefined || stored.publicJwk === undefined) return null;
      const subtle = globalThis.crypto.subtle;
      return {
        // Not extractable once loaded: nothing in this process needs to export it again.
        privateKey: await subtle.importKey('jwk', stored.privateJwk, ES256, false, ['sign']),
        publicKey: await subtle.importKey('jwk', stored.publicJwk, ES256, true, ['verify']),
      };
    },
    async set(name, pair) {
      const subtle = globalThis.crypto.subtle;
      const privateJwk = await subtle.exportKey('jwk', pair.privateKey as CryptoKey);
      const publicJwk = await subtle.exportKey('jwk', pair.publicKey as CryptoKey);
      await update((all) => {
        all[keyEntry(name)] = JSON.stringify({ privateJwk, publicJwk });
      });
    },
    async delete(name) {
      await update((all) => {
        delete all[keyEntry(name)];
      });
    },
  };
}
