import type { AccessTokenClaims } from './claims.js';
import { VerifyError } from './errors.js';
import { requestJson } from './http-json.js';
import type { KeySet } from './key-set.js';
import type { ResolvedOptions } from './options.js';

const MAX_ENTRIES = 10_000;
const MAX_RESPONSE_BYTES = 64 * 1024;

interface Entry {
  readonly active: boolean;
  readonly until: number;
}

/** RFC 6749 §2.3.1: client_secret_basic form-encodes id and secret before base64. */
function basicAuth(clientId: string, clientSecret: string): string {
  // URLSearchParams serialises exactly application/x-www-form-urlencoded (space as "+").
  const enc = (s: string) => new URLSearchParams([['', s]]).toString().slice(1);
  return 'Basic ' + Buffer.from(`${enc(clientId)}:${enc(clientSecret)}`).toString('base64');
}

/**
 * `checkSession`: ask the issuer whether an (already verified) access token is still
 * active, per RFC 7662 §2, so a revoked session stops working before the token's `exp`.
 *
 * "Active" answers are cached per `jti` for `cacheTtl` seconds, so a burst of calls
 * with one token costs one introspection. "Inactive" answers are kept until the token
 * expires: a revoked session never comes back. The cache is bounded; the oldest
 * entries are dropped first. Concurrent checks of one token share one request.
 */
export class SessionChecker {
  readonly #cache = new Map<string, Entry>();
  readonly #inflight = new Map<string, Promise<boolean>>();

  constructor(
    private readonly options: ResolvedOptions,
    private readonly keySet: KeySet,
  ) {}

  /** Resolves when the session is active; rejects with `token_inactive` or `introspection_unavailable`. */
  async check(token: string, claims: AccessTokenClaims): Promise<void> {
    const now = this.options.now();
    const cached = this.#cache.get(claims.jti);
    let active: boolean;
    if (cached && cached.until > now) {
      active = cached.active;
    } else {
      let pending = this.#inflight.get(claims.jti);
      if (!pending) {
        pending = this.#introspect(token).finally(() => this.#inflight.delete(claims.jti));
        this.#inflight.set(claims.jti, pending);
      }
      active = await pending;
      this.#remember(claims, active);
    }
    if (!active) throw new VerifyError('token_inactive', 'The session behind the access token has ended');
  }

  #remember(claims: AccessTokenClaims, active: boolean): void {
    const now = this.options.now();
    const ttl = this.options.introspection?.cacheTtlMs ?? 0;
    const until = active ? Math.min(now + ttl, claims.exp * 1000) : claims.exp * 1000;
    if (until <= now) return;
    this.#cache.delete(claims.jti);
    if (this.#cache.size >= MAX_ENTRIES) {
      // Map iterates in insertion order: the first key is the oldest entry.
      const oldest = this.#cache.keys().next();
      if (!oldest.done) this.#cache.delete(oldest.value);
    }
    this.#cache.set(claims.jti, { active, until });
  }

  async #introspect(token: string): Promise<boolean> {
    const creds = this.options.introspection;
    if (!creds) throw new TypeError('checkSession needs introspection: { clientId, clientSecret }');
    let endpoint: string | undefined;
    let body: Record<string, unknown>;
    try {
      endpoint = await this.keySet.introspectionEndpoint();
      if (!endpoint) throw new Error('the issuer metadata lists no introspection_endpoint');
      body = await requestJson({
        url: endpoint,
        method: 'POST',
        headers: {
          authorization: basicAuth(creds.clientId, creds.clientSecret),
          'content-type': 'application/x-www-form-urlencoded',
        },
        body: new URLSearchParams({ token, token_type_hint: 'access_token' }).toString(),
        timeoutMs: this.options.httpTimeoutMs,
        maxBytes: MAX_RESPONSE_BYTES,
      });
    } catch (cause) {
      // Fail closed: the API asked for revocation to bite, so "unknown" must not mean "allowed".
      throw new VerifyError(
        'introspection_unavailable',
        'The issuer introspection endpoint could not be used',
        {
          cause,
        },
      );
    }
    if (typeof body.active !== 'boolean') {
      throw new VerifyError('introspection_unavailable', 'The introspection response has no boolean active');
    }
    return body.active;
  }
}
