import { importJWK, type JWK } from 'jose';
import { VerifyError } from './errors.js';
import { IssuerHttpError, requestJson } from './http-json.js';
import { batonDefaultUrl, isAllowedEndpoint, metadataUrl, type ResolvedOptions } from './options.js';

/** A public key as jose imports it (a WebCrypto `CryptoKey`). */
export type PublicKey = Exclude<Awaited<ReturnType<typeof importJWK>>, Uint8Array>;

/** A verification key from the issuer's JWKS, pinned to one algorithm. */
export interface PinnedKey {
  readonly kid: string;
  readonly alg: string;
  readonly key: PublicKey;
}

/** The endpoints a verifier needs from the issuer (RFC 8414 §2). */
export interface IssuerEndpoints {
  readonly jwksUri: string;
  readonly introspectionEndpoint: string | undefined;
}

const MAX_METADATA_BYTES = 64 * 1024;
const MAX_JWKS_BYTES = 256 * 1024;

// When a key carries no `alg`, only curves that admit exactly one algorithm are usable.
// An RSA key without `alg` could be RS256 or PS256: guessing would unpin it, so it is skipped.
const ALG_BY_CURVE: ReadonlyMap<unknown, string> = new Map([
  ['P-256', 'ES256'],
  ['P-384', 'ES384'],
  ['P-521', 'ES512'],
  ['Ed25519', 'EdDSA'],
]);

/** The public members of a JWK; anything else (notably a private `d`) is dropped. */
function publicMembers(jwk: Record<string, unknown>): JWK | undefined {
  const str = (v: unknown) => (typeof v === 'string' && v.length > 0 ? v : undefined);
  switch (jwk.kty) {
    case 'EC': {
      const crv = str(jwk.crv);
      const x = str(jwk.x);
      const y = str(jwk.y);
      return crv && x && y ? { kty: 'EC', crv, x, y } : undefined;
    }
    case 'OKP': {
      const crv = str(jwk.crv);
      const x = str(jwk.x);
      return crv && x ? { kty: 'OKP', crv, x } : undefined;
    }
    case 'RSA': {
      const n = str(jwk.n);
      const e = str(jwk.e);
      return n && e ? { kty: 'RSA', n, e } : undefined;
    }
    default:
      // "oct" (a shared secret) has no business in a JWKS a resource server trusts.
      return undefined;
  }
}

async function importKey(jwk: unknown, algorithms: ReadonlySet<string>): Promise<PinnedKey | undefined> {
  if (typeof jwk !== 'object' || jwk === null || Array.isArray(jwk)) return undefined;
  const raw = jwk as Record<string, unknown>;
  if (typeof raw.kid !== 'string' || raw.kid === '') return undefined;
  if (raw.use !== undefined && raw.use !== 'sig') return undefined;
  if (raw.key_ops !== undefined && !(Array.isArray(raw.key_ops) && raw.key_ops.includes('verify'))) {
    return undefined;
  }
  const pub = publicMembers(raw);
  if (!pub) return undefined;
  const alg = typeof raw.alg === 'string' ? raw.alg : ALG_BY_CURVE.get(raw.crv);
  if (alg === undefined || !algorithms.has(alg)) return undefined;
  try {
    // importJWK also checks that the key fits the algorithm (e.g. ES256 needs P-256).
    const key = await importJWK(pub, alg);
    if (key instanceof Uint8Array) return undefined;
    return { kid: raw.kid, alg, key };
  } catch {
    return undefined;
  }
}

/**
 * The issuer's JWKS (RFC 7517 §5), cached, with its location found through RFC 8414
 * metadata unless configured.
 *
 * At most one request to the issuer per `jwksCooldown`, whatever happens: an
 * unknown `kid` triggers a re-fetch only after the cooldown, so a flood of tokens
 * with random `kid`s costs the issuer one request, not one each. Concurrent
 * callers share one in-flight request. When a re-fetch fails, the last good keys
 * stay in use.
 *
 * Keys come only from here. A token's own `jwk`, `jku`, `x5u` or `x5c` header is
 * never read: following it would let the token choose the key that verifies it
 * (RFC 8725 §3.10).
 */
export class KeySet {
  #keys: Map<string, PinnedKey> | undefined;
  #fetchedAt = Number.NEGATIVE_INFINITY;
  #attemptedAt = Number.NEGATIVE_INFINITY;
  #inflight: Promise<void> | undefined;
  #endpoints: IssuerEndpoints | undefined;
  #metadataAttemptedAt = Number.NEGATIVE_INFINITY;
  #metadataInflight: Promise<IssuerEndpoints> | undefined;

  constructor(private readonly options: ResolvedOptions) {}

  /**
   * The key for `kid`, fetching the JWKS when none is cached, when it is older than
   * `jwksCacheMaxAge`, or when `kid` is unknown; each only outside the cooldown.
   * Resolves `undefined` for a `kid` the issuer does not publish.
   */
  async get(kid: string): Promise<PinnedKey | undefined> {
    const now = this.options.now();
    if (this.#keys === undefined || now - this.#fetchedAt >= this.options.jwksCacheMaxAgeMs) {
      await this.#refresh();
    }
    if (this.#keys === undefined) {
      throw new VerifyError('jwks_unavailable', 'The issuer key set could not be fetched');
    }
    const known = this.#keys.get(kid);
    if (known) return known;
    await this.#refresh();
    return this.#keys.get(kid);
  }

  /** The introspection endpoint: configured, or from the issuer's metadata. */
  async introspectionEndpoint(): Promise<string | undefined> {
    const configured = this.options.introspection?.endpoint;
    if (configured) return configured;
    return (await this.#discover()).introspectionEndpoint;
  }

  async #refresh(): Promise<void> {
    if (this.#inflight) return this.#inflight;
    if (this.options.now() - this.#attemptedAt < this.options.jwksCooldownMs) return;
    this.#attemptedAt = this.options.now();
    this.#inflight = this.#fetchKeys().finally(() => {
      this.#inflight = undefined;
    });
    return this.#inflight;
  }

  async #fetchKeys(): Promise<void> {
    let body: Record<string, unknown>;
    try {
      const jwksUri = this.options.jwksUri ?? (await this.#discover()).jwksUri;
      body = await requestJson({
        url: jwksUri,
        timeoutMs: this.options.httpTimeoutMs,
        maxBytes: MAX_JWKS_BYTES,
      });
    } catch {
      // Forget discovered endpoints: if the issuer moved its JWKS, the next attempt finds it.
      this.#endpoints = undefined;
      return;
    }
    if (!Array.isArray(body.keys)) return;
    const imported = await Promise.all(body.keys.map((jwk) => importKey(jwk, this.options.algorithms)));
    const keys = new Map<string, PinnedKey>();
    const duplicated = new Set<string>();
    for (const key of imported) {
      if (!key) continue;
      if (keys.has(key.kid)) duplicated.add(key.kid);
      keys.set(key.kid, key);
    }
    // Two keys under one kid is ambiguous: use neither rather than guess (no try-every-key).
    for (const kid of duplicated) keys.delete(kid);
    this.#keys = keys;
    this.#fetchedAt = this.options.now();
  }

  async #discover(): Promise<IssuerEndpoints> {
    if (this.#endpoints) return this.#endpoints;
    if (this.#metadataInflight) return this.#metadataInflight;
    if (this.options.now() - this.#metadataAttemptedAt < this.options.jwksCooldownMs) {
      throw new IssuerHttpError('issuer metadata unavailable (cooling down)');
    }
    this.#metadataAttemptedAt = this.options.now();
    this.#metadataInflight = this.#fetchMetadata().finally(() => {
      this.#metadataInflight = undefined;
    });
    return this.#metadataInflight;
  }

  async #fetchMetadata(): Promise<IssuerEndpoints> {
    const { issuer, allowInsecureHttp } = this.options;
    let metadata: Record<string, unknown>;
    try {
      metadata = await requestJson({
        url: metadataUrl(issuer),
        timeoutMs: this.options.httpTimeoutMs,
        maxBytes: MAX_METADATA_BYTES,
      });
    } catch (error) {
      if (error instanceof IssuerHttpError && error.status === 404) {
        // No RFC 8414 metadata published: fall back to Baton's documented paths.
        this.#endpoints = {
          jwksUri: batonDefaultUrl(issuer, '/.well-known/jwks.json'),
          introspectionEndpoint: batonDefaultUrl(issuer, '/oauth/introspect'),
        };
        return this.#endpoints;
      }
      throw error;
    }
    // RFC 8414 §3.3: metadata for another issuer is a mix-up (or a substituted document).
    if (metadata.issuer !== issuer) throw new IssuerHttpError('metadata issuer does not match');
    const { jwks_uri: jwksUri, introspection_endpoint: introspection } = metadata;
    if (typeof jwksUri !== 'string' || !isAllowedEndpoint(jwksUri, allowInsecureHttp)) {
      throw new IssuerHttpError('metadata jwks_uri missing or not allowed');
    }
    const introspectionEndpoint =
      typeof introspection === 'string' && isAllowedEndpoint(introspection, allowInsecureHttp)
        ? introspection
        : undefined;
    this.#endpoints = { jwksUri, introspectionEndpoint };
    return this.#endpoints;
  }
}
