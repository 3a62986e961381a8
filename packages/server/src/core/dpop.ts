import { createHash, randomBytes } from 'node:crypto';
import type { Store } from '../store/store.js';
import type { Clock } from './clock.js';
import { DPOP_NONCE_TIMES, dpopNonceIssuedAt, INSTANCE_SKEW_MS, makeDpopNonce } from './dpop-nonce.js';
import { DPOP_ALGS, invalidProof, normalizeHtu, verifyDpopProof } from './dpop-proof.js';
import { BatonError } from './errors.js';

/**
 * How far a proof's `iat` may be from the server's clock when it carries
 * no nonce, in ms: a minute behind (the request's trip and a modest
 * skew), a few seconds ahead. A client outside it gets `use_dpop_nonce`
 * and, with the nonce, is fresh whatever its clock says.
 * @see RFC 9449 §4.3 (check 11), §8
 */
export const DPOP_IAT_WINDOW = Object.freeze({ past: 60_000, future: 5_000 });

/**
 * How long a proof's replay record is kept: longer than any proof
 * accepted now can stay acceptable (a nonce's lifetime, the `iat`
 * window), plus the skew between instances.
 */
const REPLAY_TTL =
  Math.max(DPOP_NONCE_TIMES.lifetime, DPOP_IAT_WINDOW.past + DPOP_IAT_WINDOW.future) + 2 * INSTANCE_SKEW_MS;

/** A `DPoP` header as a request carried it, with where it was sent. */
export interface DpopInput {
  /** The header's value. */
  proof: string;
  /** The request's method. */
  method: string;
  /** The route's path (`/auth/refresh`); the URI is the issuer's, never the Host header's. */
  path: string;
}

/**
 * A proof that passed every check, freshness and replay included. Core
 * verifies the raw header itself (routes hand it a {@link DpopInput}), so
 * no caller can just claim a key.
 */
export interface VerifiedDpop {
  /** The RFC 7638 thumbprint of the key that signed it. */
  readonly jkt: string;
}

/** DPoP proofs and server nonces, shared by every instance through the store. @see RFC 9449 */
export interface Dpop {
  /** Algorithms accepted for proofs (the metadata's `dpop_signing_alg_values_supported`). */
  readonly algs: readonly string[];
  /** Loads (or, on the first start, creates) the nonce secret every instance shares. */
  init(): Promise<void>;
  /** The nonce to send in `DPoP-Nonce`: renewed once it is a minute old. Needs {@link Dpop.init}. */
  nonce(): string;
  /**
   * Verifies a proof (RFC 9449 §4.3) for the given method and route, checks
   * its freshness and records its `jti` so it is accepted once, on any
   * instance. A proof is fresh when it carries a valid nonce (whatever its
   * `iat`), or carries none and its `iat` is within
   * {@link DPOP_IAT_WINDOW}; otherwise `use_dpop_nonce` (with the nonce in
   * the response header). Any other failure, a replay included, is
   * `invalid_dpop_proof`.
   * @see RFC 9449 §4.3, §8, §11.1
   */
  verify(input: DpopInput): Promise<VerifiedDpop>;
}

/** Creates the DPoP verifier of a token service. */
export function createDpop(opts: { store: Store; now: Clock; issuer: string }): Dpop {
  const { store, now } = opts;
  // The URI a proof must name: the issuer's (as the metadata advertises it) plus the route.
  const base = opts.issuer.replace(/\/+$/, '');
  const targets = new Map<string, string>();
  const htuOf = (path: string) => {
    let htu = targets.get(path);
    if (htu === undefined) {
      const normal = normalizeHtu(`${base}${path}`);
      if (normal === null) throw new TypeError('The issuer is not an absolute http(s) URI');
      htu = normal;
      targets.set(path, htu);
    }
    return htu;
  };
  let secret: Buffer | undefined;
  let current: { value: string; issuedAt: number } | undefined;

  async function loadSecret(): Promise<Buffer> {
    if (!secret) {
      const stored = await store.serverSecret({
        name: 'dpop_nonce',
        candidate: randomBytes(32).toString('base64url'),
        now: now(),
      });
      secret = Buffer.from(stored, 'base64url');
    }
    return secret;
  }

  const useNonce = (description: string) => new BatonError('use_dpop_nonce', description);

  return {
    algs: DPOP_ALGS,

    async init() {
      await loadSecret();
    },

    nonce() {
      if (!secret) throw new Error('createDpop: init() was not called');
      const t = now();
      if (!current || t - current.issuedAt >= DPOP_NONCE_TIMES.renewAfter || current.issuedAt > t)
        current = { value: makeDpopNonce(secret, t), issuedAt: t };
      return current.value;
    },

    async verify(input) {
      const claims = verifyDpopProof(input.proof, { htm: input.method, htu: htuOf(input.path) });
      const key = await loadSecret();
      const t = now();
      if (claims.nonce !== undefined) {
        if (dpopNonceIssuedAt(key, claims.nonce, t) === null)
          throw useNonce('The DPoP nonce is invalid or expired: use the one in the DPoP-Nonce header');
      } else {
        const iat = claims.iat * 1000;
        if (iat < t - DPOP_IAT_WINDOW.past || iat > t + DPOP_IAT_WINDOW.future)
          throw useNonce(
            'The DPoP proof is not fresh: send it again with the nonce in the DPoP-Nonce header',
          );
      }
      // Keyed by the key and the jti: one client cannot spend another's jti, and the hash bounds the row.
      const jtiHash = createHash('sha256').update(`${claims.jkt}.${claims.jti}`).digest('base64url');
      const first = await store.recordDpopProof({ jtiHash, expiresAt: t + REPLAY_TTL, now: t });
      if (!first) throw invalidProof('The DPoP proof was already used');
      return { jkt: claims.jkt };
    },
  };
}
