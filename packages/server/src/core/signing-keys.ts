import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type JsonWebKey,
  type KeyObject,
} from 'node:crypto';
import type { SigningKeyRecord, Store } from '../store/store.js';
import type { Clock } from './clock.js';

/** JWS algorithms Baton signs with. Never HS256 with a shared secret. */
export type SigningAlgorithm = 'ES256' | 'EdDSA';

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
 * loaded into `KeyObject`s once per reload, never per token: signing and
 * verifying on the refresh hot path touch no store and no parsing.
 */
export class KeyRing {
  readonly #opts: KeyRingOptions;
  #keys = new Map<string, LoadedKey>();
  #reloading: Promise<void> | undefined;

  constructor(opts: KeyRingOptions) {
    this.#opts = opts;
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

  /** Re-reads the keys from the store; concurrent callers share one read. */
  reload(): Promise<void> {
    this.#reloading ??= (async () => {
      try {
        const records = await this.#opts.store.listSigningKeys();
        const next = new Map<string, LoadedKey>();
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

  #signingKeyOrUndefined(now: number): LoadedKey | undefined {
    let best: LoadedKey | undefined;
    for (const k of this.#keys.values()) {
      const r = k.record;
      if (r.activatesAt > now || (r.retiredAt !== null && r.retiredAt <= now)) continue;
      if (
        !best ||
        r.activatesAt > best.record.activatesAt ||
        (r.activatesAt === best.record.activatesAt && r.kid > best.kid)
      )
        best = k;
    }
    return best;
  }

  /** The key that signs at `now`: the newest active one. */
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
    return r.retiredAt === null || r.retiredAt + this.#opts.maxTokenLifetime + 60_000 > now;
  }

  /** The public keys to publish at `now` (RFC 7517): active, upcoming, and retired ones whose tokens may still be alive. */
  jwks(now: number): { keys: PublicJwk[] } {
    return {
      keys: [...this.#keys.values()].filter((k) => this.#isPublished(k.record, now)).map((k) => k.publicJwk),
    };
  }
}
