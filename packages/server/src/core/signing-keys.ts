import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type JsonWebKey,
  type KeyObject,
} from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { SigningKeyRecord, Store } from '../store/store.js';
import type { Clock } from './clock.js';
import { BatonError } from './errors.js';

/** JWS algorithms Baton signs with. Never HS256 with a shared secret. */
export type SigningAlgorithm = 'ES256' | 'EdDSA';

/**
 * How long verifiers may cache the JWKS (its `Cache-Control: max-age`, in
 * seconds). A rotated key is published at least this long (plus the poll
 * interval) before it signs, so no verifier meets a kid it has not cached.
 * @see RFC 7517 §5, RFC 9111 §5.2.2.1
 */
export const JWKS_MAX_AGE_SECONDS = 300;

/**
 * How long a retired key stays published beyond the longest access-token
 * lifetime: covers verifiers' clock leeway and skew.
 */
export const RETIRED_KEY_GRACE_MS = 60_000;

/** Reloads triggered by unknown kids are at most this frequent: a flood of forged kids must not become a flood of queries. */
const UNKNOWN_KID_RELOAD_GAP_MS = 1000;

/**
 * How often a polling instance re-reads the signing keys alone (ms),
 * whatever its full poll interval: the bound within which a key retired
 * anywhere (`baton keys rotate --now`, `baton keys retire`) stops signing on
 * every running instance, and a new key is published by all of them. It
 * costs one read of the small signing-key table per second per instance,
 * made by a timer: signing a token never reads the store.
 */
export const KEY_CHECK_INTERVAL_MS = 1000;

/** Until when a key is published in the JWKS: forever while not retired, else until its last token has expired. */
export function publishedUntil(record: SigningKeyRecord, maxTokenLifetime: number): number {
  return record.retiredAt === null
    ? Number.POSITIVE_INFINITY
    : record.retiredAt + maxTokenLifetime + RETIRED_KEY_GRACE_MS;
}

/** True when a key may sign at `now`: activated and not (yet) retired. */
export function canSign(record: SigningKeyRecord, now: number): boolean {
  return record.activatesAt <= now && (record.retiredAt === null || record.retiredAt > now);
}

/**
 * Whether `a` is newer than `b`: created later, ties broken by kid. The
 * newest key that may sign does sign, so the latest rotation always wins,
 * whatever activation delays earlier rotations asked for.
 */
function newer(a: SigningKeyRecord, b: SigningKeyRecord): boolean {
  return a.createdAt > b.createdAt || (a.createdAt === b.createdAt && a.kid > b.kid);
}

/** The key that signs at `now`: the newest (last created) one that {@link canSign}. Every instance picks the same. */
export function pickSigningKey<T extends { record: SigningKeyRecord }>(
  keys: Iterable<T>,
  now: number,
): T | undefined {
  let best: T | undefined;
  for (const k of keys) {
    if (canSign(k.record, now) && (!best || newer(k.record, best.record))) best = k;
  }
  return best;
}

/** A public key as published in the JWKS (RFC 7517). */
export interface PublicJwk {
  kty: string;
  crv: string;
  x: string;
  y?: string;
  kid: string;
  alg: SigningAlgorithm;
  use: 'sig';
}

/** A signing key ready for use: crypto objects built once, not per token. */
export interface LoadedKey {
  kid: string;
  alg: SigningAlgorithm;
  privateKey: KeyObject;
  publicKey: KeyObject;
  publicJwk: PublicJwk;
  record: SigningKeyRecord;
  /** The encoded JWS header for this key, reused for every token it signs. */
  encodedHeader: string;
}

/**
 * The RFC 7638 thumbprint of a public key, used as its `kid`: derived from
 * the key itself, so two instances can never publish one kid for two keys.
 */
export function jwkThumbprint(jwk: JsonWebKey): string {
  const members =
    jwk.kty === 'EC'
      ? { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y }
      : { crv: jwk.crv, kty: jwk.kty, x: jwk.x };
  return createHash('sha256').update(JSON.stringify(members)).digest('base64url');
}

/** Generates a new key pair as a store record (not yet stored). */
export function generateSigningKey(alg: SigningAlgorithm, now: number, activatesAt = now): SigningKeyRecord {
  const { privateKey, publicKey } =
    alg === 'ES256' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('ed25519');
  const publicJwk = publicKey.export({ format: 'jwk' });
  const kid = jwkThumbprint(publicJwk);
  return {
    kid,
    alg,
    privateJwk: JSON.stringify(privateKey.export({ format: 'jwk' })),
    publicJwk: JSON.stringify({ ...publicJwk, kid, alg, use: 'sig' }),
    createdAt: now,
    activatesAt,
    retiredAt: null,
  };
}

function load(record: SigningKeyRecord): LoadedKey {
  const publicJwk = JSON.parse(record.publicJwk) as PublicJwk;
  const header = Buffer.from(JSON.stringify({ alg: record.alg, typ: 'at+jwt', kid: record.kid })).toString(
    'base64url',
  );
  return {
    kid: record.kid,
    alg: record.alg,
    privateKey: createPrivateKey({ key: JSON.parse(record.privateJwk) as JsonWebKey, format: 'jwk' }),
    publicKey: createPublicKey({ key: publicJwk as unknown as JsonWebKey, format: 'jwk' }),
    publicJwk,
    record,
    encodedHeader: header,
  };
}

/** Options of {@link KeyRing}. */
export interface KeyRingOptions {
  store: Store;
  now: Clock;
  /** Algorithm of keys this instance creates. */
  alg: SigningAlgorithm;
  /** The longest access-token lifetime in use (ms): a retired key stays published this long (plus leeway). */
  maxTokenLifetime: number;
}

/**
 * The signing keys, shared by every instance through the store. Keys are
 * loaded into `KeyObject`s once when they first appear or change, never per
 * token: signing and verifying on the refresh hot path touch no store and no
 * parsing. Freshness comes from timers instead ({@link KeyRing.startPolling}).
 */
export class KeyRing {
  readonly #opts: KeyRingOptions;
  #keys = new Map<string, LoadedKey>();
  #reloading: Promise<void> | undefined;
  /** Whether the read under way also reads the clients. */
  #reloadingAll = false;
  /** The longest access-token lifetime of the server and every client (ms), refreshed on reload. */
  #maxLifetime: number;
  /** `performance.now()` of the last reload start: a rate, not token time, so not the injected clock. */
  #lastReloadAt = Number.NEGATIVE_INFINITY;

  constructor(opts: KeyRingOptions) {
    this.#opts = opts;
    this.#maxLifetime = opts.maxTokenLifetime;
  }

  /** Loads the keys and creates the first one when the store has none usable. */
  async init(): Promise<void> {
    await this.reload();
    if (!this.#signingKeyOrUndefined(this.#opts.now())) {
      const now = this.#opts.now();
      // The very first key may sign at once: no verifier can have cached a JWKS without it.
      await this.#opts.store.addSigningKey(generateSigningKey(this.#opts.alg, now, now));
      await this.reload();
    }
  }

  /** Re-reads the keys and the clients' lifetimes from the store; concurrent callers share one read. */
  async reload(): Promise<void> {
    // A keys-only check under way does not read the clients: let it land, then read everything.
    while (this.#reloading && !this.#reloadingAll) await this.#reloading.catch(() => {});
    return this.#read(true);
  }

  /**
   * Re-reads the signing keys alone (not the clients' lifetimes): what the
   * signing decision needs. A read under way is shared instead.
   */
  reloadKeys(): Promise<void> {
    return this.#read(false);
  }

  #read(all: boolean): Promise<void> {
    if (this.#reloading) return this.#reloading;
    this.#reloadingAll = all;
    this.#reloading = (async () => {
      this.#lastReloadAt = performance.now();
      try {
        const [records, clients] = await Promise.all([
          this.#opts.store.listSigningKeys(),
          all ? this.#opts.store.listClients() : undefined,
        ]);
        // A client may issue longer-lived tokens than the server default; retired keys must outlive those too.
        if (clients)
          this.#maxLifetime = Math.max(this.#opts.maxTokenLifetime, ...clients.map((c) => c.accessTtl ?? 0));
        const next = new Map<string, LoadedKey>();
        // Unchanged keys keep their crypto objects: a check every second parses nothing new.
        for (const r of records)
          next.set(
            r.kid,
            this.#keys.get(r.kid)?.record.retiredAt === r.retiredAt ? this.#keys.get(r.kid)! : load(r),
          );
        this.#keys = next;
      } finally {
        this.#reloading = undefined;
      }
    })();
    return this.#reloading;
  }

  /**
   * Reloads because a token named a kid this instance does not know (another
   * instance may have just started signing with a new key), at most once a
   * second; a reload already under way is awaited instead.
   */
  async reloadForUnknownKid(): Promise<void> {
    if (this.#reloading) return this.#reloading;
    if (performance.now() - this.#lastReloadAt < UNKNOWN_KID_RELOAD_GAP_MS) return;
    return this.reloadKeys();
  }

  /**
   * Keeps this instance in step with rotations made by the CLI or another
   * instance, without a restart: re-reads the keys and the clients'
   * lifetimes every `intervalMs`, and the keys alone every
   * {@link KEY_CHECK_INTERVAL_MS}, so a retired key stops signing here
   * within about a second even with a long `intervalMs`. Returns a stop
   * function; the timers never keep the process alive.
   */
  startPolling(intervalMs: number, onError: (err: unknown) => void): () => void {
    if (!Number.isFinite(intervalMs) || intervalMs <= 0)
      throw new TypeError('key poll interval must be a positive number of milliseconds');
    const timers = [
      setInterval(() => {
        this.reload().catch(onError);
      }, intervalMs),
    ];
    if (intervalMs > KEY_CHECK_INTERVAL_MS) {
      // While the store is down this fails every second: report the first failure, not each one.
      let failing = false;
      timers.push(
        setInterval(() => {
          this.reloadKeys().then(
            () => {
              failing = false;
            },
            (err: unknown) => {
              if (!failing) onError(err);
              failing = true;
            },
          );
        }, KEY_CHECK_INTERVAL_MS),
      );
    }
    for (const timer of timers) timer.unref();
    return () => {
      for (const timer of timers) clearInterval(timer);
    };
  }

  /** The longest access-token lifetime in use (ms): the server's or any client's. */
  get maxTokenLifetime(): number {
    return this.#maxLifetime;
  }

  #signingKeyOrUndefined(now: number): LoadedKey | undefined {
    return pickSigningKey(this.#keys.values(), now);
  }

  /**
   * The key that signs at `now`: the newest active one, as of the last read
   * (at most {@link KEY_CHECK_INTERVAL_MS} old while polling). No store read.
   */
  signingKey(now: number): LoadedKey {
    const key = this.#signingKeyOrUndefined(now);
    if (!key) throw new Error('No active signing key: run `baton keys rotate`');
    return key;
  }

  /** A key by `kid`, as long as it is still published. */
  find(kid: string, now: number): LoadedKey | undefined {
    const k = this.#keys.get(kid);
    return k && this.#isPublished(k.record, now) ? k : undefined;
  }

  #isPublished(r: SigningKeyRecord, now: number): boolean {
    return publishedUntil(r, this.#maxLifetime) > now;
  }

  /** The public keys to publish at `now` (RFC 7517): active, upcoming, and retired ones whose tokens may still be alive. */
  jwks(now: number): { keys: PublicJwk[] } {
    return {
      keys: [...this.#keys.values()].filter((k) => this.#isPublished(k.record, now)).map((k) => k.publicJwk),
    };
  }
}

/** The longest access-token lifetime in use (ms): the server default or any client's override. */
export async function maxAccessTokenLifetime(store: Store, serverAccessTtl: number): Promise<number> {
  const clients = await store.listClients();
  return Math.max(serverAccessTtl, ...clients.map((c) => c.accessTtl ?? 0));
}

/** Where a key is in its life, as `baton keys list` shows it. */
export type SigningKeyState =
  /** Published, signs from `activatesAt` on. */
  | 'pending'
  /** Signs new tokens now. */
  | 'signing'
  /** Could sign but a newer key does. */
  | 'standby'
  /** Signs no more; published until its tokens have expired. */
  | 'retired'
  /** No longer published: every token it signed has expired. May be deleted. */
  | 'expired';

/** One key with its state at a given time. */
export interface SigningKeyStatus {
  kid: string;
  alg: SigningAlgorithm;
  state: SigningKeyState;
  createdAt: number;
  activatesAt: number;
  retiredAt: number | null;
  /** When it leaves the JWKS; null while not retired. */
  publishedUntil: number | null;
}

/** The state of every key at `now`, oldest first. */
export function describeSigningKeys(
  records: readonly SigningKeyRecord[],
  now: number,
  maxTokenLifetime: number,
): SigningKeyStatus[] {
  const signer = pickSigningKey(
    records.map((record) => ({ record })),
    now,
  )?.record.kid;
  return records.map((r) => {
    const until = publishedUntil(r, maxTokenLifetime);
    const state: SigningKeyState =
      until <= now
        ? 'expired'
        : r.retiredAt !== null && r.retiredAt <= now
          ? 'retired'
          : r.activatesAt > now
            ? 'pending'
            : r.kid === signer
              ? 'signing'
              : 'standby';
    return {
      kid: r.kid,
      alg: r.alg,
      state,
      createdAt: r.createdAt,
      activatesAt: r.activatesAt,
      retiredAt: r.retiredAt,
      publishedUntil: Number.isFinite(until) ? until : null,
    };
  });
}

/** Options of {@link rotateSigningKey}. */
export interface RotateSigningKeyOptions {
  alg: SigningAlgorithm;
  now: number;
  /**
   * How long the new key is published before it signs (ms). It must cover
   * the JWKS cache lifetime plus the instances' poll interval, or a verifier
   * may meet the new kid before its cached JWKS has it. 0 = sign at once
   * (emergencies, tests).
   */
  activateIn: number;
}

/**
 * Rotates the signing key without downtime: adds a new key that activates
 * after `activateIn`, and schedules every older key's retirement for that
 * same instant. The new key is stored before anything is retired, so an
 * instance reloading in between never finds itself without a signer; and
 * only keys older than the new one are retired, so two rotations racing
 * each other cannot retire each other's keys.
 * @see RFC 7517 §5 (JWK Set), RFC 8725 §3.5
 */
export async function rotateSigningKey(
  store: Store,
  opts: RotateSigningKeyOptions,
): Promise<{ key: SigningKeyRecord; retiring: string[] }> {
  if (!Number.isFinite(opts.activateIn) || opts.activateIn < 0)
    throw new TypeError('activateIn must be a non-negative number of milliseconds');
  // Created strictly after every existing key, even on a coarse or frozen clock, so it is the newest.
  const createdAt = Math.max(opts.now, ...(await store.listSigningKeys()).map((r) => r.createdAt + 1));
  const key = { ...generateSigningKey(opts.alg, opts.now, opts.now + opts.activateIn), createdAt };
  await store.addSigningKey(key);
  const retiring: string[] = [];
  for (const r of await store.listSigningKeys()) {
    if (r.kid === key.kid || !newer(key, r)) continue;
    if (r.retiredAt !== null && r.retiredAt <= key.activatesAt) continue;
    if (await store.retireSigningKey(r.kid, key.activatesAt)) retiring.push(r.kid);
  }
  return { key, retiring };
}

/**
 * Retires one key now: it signs no more and stays published until every
 * token it signed has expired. Refused when no other key could sign from now
 * on (one that is active and not itself scheduled to retire): retiring the
 * last signer would stop all logins and refreshes.
 */
export async function retireSigningKey(store: Store, kid: string, now: number): Promise<SigningKeyRecord> {
  const records = await store.listSigningKeys();
  const key = records.find((r) => r.kid === kid);
  if (!key) throw new BatonError('not_found', 'No signing key with this kid');
  if (key.retiredAt !== null && key.retiredAt <= now)
    throw new BatonError('invalid_request', 'This key is already retired');
  const successor = records.find((r) => r.kid !== kid && r.activatesAt <= now && r.retiredAt === null);
  if (!successor)
    throw new BatonError(
      'invalid_request',
      'No other key is active to take over: run `baton keys rotate` and wait until the new key is active, or rotate with --now',
    );
  await store.retireSigningKey(kid, now);
  return { ...key, retiredAt: now };
}

/** Deletes keys whose publication has ended (every token they signed has expired). Returns how many. */
export function pruneSigningKeys(store: Store, now: number, maxTokenLifetime: number): Promise<number> {
  // Exactly the keys whose publishedUntil ≤ now (retiredAt + lifetime + grace ≤ now).
  return store.deleteSigningKeysRetiredBefore(now - maxTokenLifetime - RETIRED_KEY_GRACE_MS + 1);
}
