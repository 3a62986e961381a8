import type { SigningKeyRecord, Store } from '../store/store.js';
import {
  describeSigningKeys,
  maxAccessTokenLifetime,
  pruneSigningKeys,
  retireSigningKey,
  rotateSigningKey,
  type SigningAlgorithm,
  type SigningKeyStatus,
} from './signing-keys.js';

/**
 * The operator's view of the signing keys (`baton keys`): the rotation
 * rules of `signing-keys.ts` over this service's store, algorithm and
 * access-token lifetime. Times are passed in so one command works at one
 * instant throughout.
 * @see RFC 7517 §5, RFC 8725 §3.5
 */
export interface SigningKeyAdmin {
  /** The longest access-token lifetime of the server and every client (ms): how long a retired key stays published. */
  maxTokenLifetime(): Promise<number>;
  /** Every key and its state at `t`. */
  list(t: number, maxTokenLifetime: number): Promise<SigningKeyStatus[]>;
  /** Whether any key exists (the first one may sign at once). */
  hasKeys(): Promise<boolean>;
  /** Adds a key signing `activateIn` ms after `t`; older keys retire then. */
  rotate(t: number, activateIn: number): Promise<{ key: SigningKeyRecord; retiring: string[] }>;
  /** Retires one key at `t`; refused unless another active key takes over. */
  retire(kid: string, t: number): Promise<SigningKeyRecord>;
  /** Deletes keys whose publication has ended at `t`. Returns how many. */
  prune(t: number, maxTokenLifetime: number): Promise<number>;
}

/** Creates the key administration of a service. */
export function createSigningKeyAdmin(
  store: Store,
  opts: { alg: SigningAlgorithm; accessTtl: number },
): SigningKeyAdmin {
  return {
    maxTokenLifetime: () => maxAccessTokenLifetime(store, opts.accessTtl),
    list: async (t, lifetime) => describeSigningKeys(await store.listSigningKeys(), t, lifetime),
    hasKeys: async () => (await store.listSigningKeys()).length > 0,
    async rotate(t, activateIn) {
      const rotated = await rotateSigningKey(store, { alg: opts.alg, now: t, activateIn });
      await store.recordSecurityEvent({
        type: 'signing_key_rotated',
        at: t,
        detail: {
          by: 'admin',
          kid: rotated.key.kid,
          activatesAt: rotated.key.activatesAt,
          retiring: rotated.retiring.join(' '),
        },
      });
      return rotated;
    },
    async retire(kid, t) {
      const retired = await retireSigningKey(store, kid, t);
      await store.recordSecurityEvent({ type: 'signing_key_retired', at: t, detail: { by: 'admin', kid } });
      return retired;
    },
    prune: (t, lifetime) => pruneSigningKeys(store, t, lifetime),
  };
}
