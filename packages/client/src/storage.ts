import { assertKeyStore, type DpopKeyStore, memoryKeyStore } from './dpop-keys.js';

/**
 * Where a client keeps its session between page loads or process runs. Values
 * are strings (JSON); any method may be synchronous or return a promise, so
 * `localStorage`, React Native's AsyncStorage, a keychain wrapper or a file all
 * fit.
 *
 * In token mode the stored value contains the refresh token: store it where
 * only your app can read it.
 */
export interface TokenStorage {
  /** The value under `key`, or null. */
  get(key: string): string | null | undefined | Promise<string | null | undefined>;
  /** Replaces the value under `key`. */
  set(key: string, value: string): void | Promise<void>;
  /**
   * Optional: a lock shared by every process using this storage, used to run
   * one refresh at a time where Web Locks are missing (Node command-line
   * tools). It must release on its own if its holder dies.
   */
  lock?<T>(name: string, fn: () => Promise<T>): Promise<T>;
  /**
   * Optional: calls `listener` when another context changes `key` (the
   * `storage` event for `localStorage`); returns an unsubscribe function.
   */
  subscribe?(key: string, listener: (value: string | null) => void): () => void;
  /**
   * Optional: keeps the session's DPoP key pair (RFC 9449) next to the
   * session. Without it the key goes to IndexedDB (browsers), or, where
   * there is none, sessions are not bound.
   */
  keys?: DpopKeyStore;
}

/**
 * A storage that lives as long as the object does. Sharing one instance
 * between several clients in one process makes them share a session; the
 * client's default (no `storage`) keeps the session in the client itself.
 */
export function memoryStorage(): TokenStorage {
  const values = new Map<string, string>();
  return {
    get: (key) => values.get(key) ?? null,
    set: (key, value) => {
      values.set(key, value);
    },
    keys: memoryKeyStore(),
  };
}

/** The subset of the Web Storage API that {@link webStorage} uses. */
export interface WebStorageArea {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
}

/**
 * Adapts `localStorage` (the default) or another Web Storage area. Changes
 * made by other tabs arrive through the `storage` event, which keeps tabs in
 * step even where BroadcastChannel is missing.
 */
export function webStorage(area?: WebStorageArea): TokenStorage {
  const target = area ?? (globalThis as { localStorage?: WebStorageArea }).localStorage;
  if (target === undefined || typeof target.getItem !== 'function') {
    throw new TypeError(
      'webStorage: localStorage is not available here; pass a storage area or use another storage',
    );
  }
  return {
    get: (key) => target.getItem(key),
    set: (key, value) => target.setItem(key, value),
    subscribe(key, listener) {
      const scope = globalThis as {
        addEventListener?: (type: string, fn: (e: StorageEvent) => void) => void;
        removeEventListener?: (type: string, fn: (e: StorageEvent) => void) => void;
      };
      if (typeof scope.addEventListener !== 'function') return () => {};
      const onStorage = (event: StorageEvent) => {
        // `key === null` means the whole area was cleared.
        if (event.storageArea === target && (event.key === key || event.key === null))
          listener(event.newValue);
      };
      scope.addEventListener('storage', onStorage);
      return () => scope.removeEventListener?.('storage', onStorage);
    },
  };
}

/** The subset of React Native's AsyncStorage (and look-alikes) that {@link asyncStorage} uses. */
export interface AsyncStorageLike {
  getItem(key: string): Promise<string | null | undefined>;
  setItem(key: string, value: string): Promise<void>;
}

/** Adapts an AsyncStorage-shaped object (React Native, Capacitor Preferences wrappers, …). */
export function asyncStorage(store: AsyncStorageLike): TokenStorage {
  if (typeof store?.getItem !== 'function' || typeof store.setItem !== 'function') {
    throw new TypeError('asyncStorage: expected an object with getItem and setItem');
  }
  return {
    get: (key) => store.getItem(key),
    set: (key, value) => store.setItem(key, value),
  };
}

/** Checks a user-supplied storage at construction time. */
export function assertStorage(value: unknown): asserts value is TokenStorage {
  const s = value as Partial<TokenStorage> | null;
  if (typeof s !== 'object' || s === null || typeof s.get !== 'function' || typeof s.set !== 'function') {
    throw new TypeError(
      "createAuthClient: storage must be 'memory', 'localStorage' or an object with get and set",
    );
  }
  if (s.lock !== undefined && typeof s.lock !== 'function')
    throw new TypeError('createAuthClient: storage.lock must be a function');
  if (s.subscribe !== undefined && typeof s.subscribe !== 'function') {
    throw new TypeError('createAuthClient: storage.subscribe must be a function');
  }
  if (s.keys !== undefined) assertKeyStore(s.keys);
}
