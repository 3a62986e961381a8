/**
 * Where a session's DPoP key pair lives between requests, page loads and
 * tabs. A key store holds at most one pair per storage key: the key of the
 * session stored under that key.
 */

/**
 * A WebCrypto `CryptoKey`, described by its members: the package's type
 * declarations then need no DOM lib, so a Node app type-checks against them.
 * Every real CryptoKey is one.
 */
export interface DpopCryptoKey {
  readonly type: string;
  readonly extractable: boolean;
  readonly algorithm: object;
  readonly usages: readonly string[];
}

/** A DPoP key pair (a WebCrypto `CryptoKeyPair`, described the same way). */
export interface DpopKeyPair {
  readonly publicKey: DpopCryptoKey;
  readonly privateKey: DpopCryptoKey;
}

/**
 * A place that keeps DPoP key pairs (a `TokenStorage` may offer one as its
 * `keys` member). Any method may be synchronous or return a promise.
 */
export interface DpopKeyStore {
  /**
   * True when the store serialises keys (a file): the client then creates
   * extractable keys, because a non-extractable CryptoKey cannot be written
   * out. Stores that keep CryptoKey objects (memory, IndexedDB) say false,
   * and their keys stay non-extractable.
   */
  readonly extractable: boolean;
  /** The pair under `name`, or null. */
  get(name: string): DpopKeyPair | null | undefined | Promise<DpopKeyPair | null | undefined>;
  /** Replaces the pair under `name`. */
  set(name: string, pair: DpopKeyPair): void | Promise<void>;
  /** Forgets the pair under `name` (at sign-out). */
  delete(name: string): void | Promise<void>;
}

/** A key store in memory: keys live as long as the store object (and stay non-extractable). */
export function memoryKeyStore(): DpopKeyStore {
  const pairs = new Map<string, DpopKeyPair>();
  return {
    extractable: false,
    get: (name) => pairs.get(name) ?? null,
    set: (name, pair) => {
      pairs.set(name, pair);
    },
    delete: (name) => {
      pairs.delete(name);
    },
  };
}

/**
 * The key store of clients without a storage (the default in Node): one per
 * realm, on a global symbol like the realm's in-flight refreshes, because
 * every client on one storage key in the realm shares that session over
 * BroadcastChannel and must find its key too.
 */
export function realmKeyStore(): DpopKeyStore {
  const slot = Symbol.for('baton.dpopKeys.v1');
  const scope = globalThis as { [slot]?: DpopKeyStore };
  scope[slot] ??= memoryKeyStore();
  return scope[slot];
}

const DB_NAME = 'baton-dpop';
const STORE = 'keys';

/** Whether this realm has IndexedDB (browsers and workers; not Node). */
export function hasIndexedDb(): boolean {
  return typeof (globalThis as { indexedDB?: IDBFactory }).indexedDB?.open === 'function';
}

/**
 * Keys in IndexedDB, shared by every tab and worker of the origin. The
 * structured clone keeps a CryptoKey as it is, so a non-extractable key
 * stays non-extractable in the database: a script on the page can use it
 * while the page is open, but cannot read its private part.
 */
export function indexedDbKeyStore(): DpopKeyStore {
  let opened: Promise<IDBDatabase> | undefined;
  const db = (): Promise<IDBDatabase> => {
    opened ??= new Promise<IDBDatabase>((resolve, reject) => {
      const request = indexedDB.open(DB_NAME, 1);
      request.onupgradeneeded = () => {
        if (!request.result.objectStoreNames.contains(STORE)) request.result.createObjectStore(STORE);
      };
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error ?? new Error('IndexedDB could not be opened'));
      request.onblocked = () => reject(new Error('IndexedDB is blocked'));
    }).catch((error: unknown) => {
      // A later call may find it working (a blocked upgrade that cleared).
      opened = undefined;
      throw error;
    });
    return opened;
  };
  const run = async <T>(
    mode: IDBTransactionMode,
    op: (store: IDBObjectStore) => IDBRequest<T>,
  ): Promise<T> => {
    const tx = (await db()).transaction(STORE, mode);
    const request = op(tx.objectStore(STORE));
    return new Promise<T>((resolve, reject) => {
      // Resolve on commit, not on the request's success: a write is durable
      // (and visible to other tabs) only once its transaction completes.
      tx.oncomplete = () => resolve(request.result);
      tx.onerror = () => reject(tx.error ?? new Error('IndexedDB transaction failed'));
      tx.onabort = () => reject(tx.error ?? new Error('IndexedDB transaction aborted'));
    });
  };
  return {
    extractable: false,
    async get(name) {
      const value = (await run('readonly', (store) => store.get(name))) as Partial<DpopKeyPair> | undefined;
      return value?.privateKey !== undefined && value.publicKey !== undefined ? (value as DpopKeyPair) : null;
    },
    async set(name, pair) {
      await run('readwrite', (store) =>
        store.put({ privateKey: pair.privateKey, publicKey: pair.publicKey }, name),
      );
    },
    async delete(name) {
      await run('readwrite', (store) => store.delete(name));
    },
  };
}

/** Checks a storage's `keys` member at construction time. */
export function assertKeyStore(value: unknown): asserts value is DpopKeyStore {
  const k = value as Partial<DpopKeyStore> | null;
  if (
    typeof k !== 'object' ||
    k === null ||
    typeof k.extractable !== 'boolean' ||
    typeof k.get !== 'function' ||
    typeof k.set !== 'function' ||
    typeof k.delete !== 'function'
  ) {
    throw new TypeError('createAuthClient: storage.keys must be { extractable, get, set, delete }');
  }
}
