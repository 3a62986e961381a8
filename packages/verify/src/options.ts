/**
 * Asymmetric JWS algorithms a verifier may accept (RFC 7518 §3.1, RFC 8037, RFC 9864).
 * HMAC (`HS*`) and `none` are deliberately absent: a resource server holds only
 * public keys, and an HMAC "verified" with a public key is a forgery anyone can make (RFC 8725 §2.1).
 */
export type VerifyAlgorithm =
  | 'ES256'
  | 'ES384'
  | 'ES512'
  | 'EdDSA'
  | 'Ed25519'
  | 'RS256'
  | 'RS384'
  | 'RS512'
  | 'PS256'
  | 'PS384'
  | 'PS512';

const ALGORITHMS: ReadonlySet<string> = new Set<VerifyAlgorithm>([
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
]);

/** How `checkSession` reaches the issuer's RFC 7662 introspection endpoint. */
export interface IntrospectionOptions {
  /** This resource server's client id at Baton (sent with client_secret_basic, RFC 6749 §2.3.1). */
  clientId: string;
  /** Its client secret. */
  clientSecret: string;
  /** Introspection endpoint; default: `introspection_endpoint` from the issuer's RFC 8414 metadata. */
  endpoint?: string;
  /** Seconds an "active" answer is reused for the same token; default 10, 0 turns the cache off. */
  cacheTtl?: number;
}

/**
 * Options of {@link createVerifier}. Durations are in seconds, like JWT NumericDates.
 * Unknown keys and wrong types throw `TypeError` at construction.
 * @see RFC 9068 §4, RFC 8725 §3, RFC 8414 §3
 */
export interface VerifierOptions {
  /** The issuer, compared byte for byte with `iss` (no trailing-slash or case leniency). */
  issuer: string;
  /** The audience(s) this resource server answers to; a token must name at least one in `aud`. */
  audience: string | readonly string[];
  /** JWKS location; default: `jwks_uri` from `<issuer>/.well-known/oauth-authorization-server` (RFC 8414). */
  jwksUri?: string;
  /** Accepted algorithms; default `['ES256', 'EdDSA']`. Each key is further pinned to its own `alg`. */
  algorithms?: readonly VerifyAlgorithm[];
  /** Leeway for `exp`, `nbf` and `iat`, in seconds; default 30, at most 300. */
  clockTolerance?: number;
  /** Longest token accepted, in bytes; default 8192. Longer ones are refused before parsing. */
  maxTokenBytes?: number;
  /** Seconds a fetched JWKS is used before it is fetched again; default 300 (what Baton's JWKS response allows). */
  jwksCacheMaxAge?: number;
  /** Least seconds between two JWKS fetches triggered by unknown `kid`s or failures; default 30. */
  jwksCooldown?: number;
  /** Timeout for each request to the issuer, in seconds; default 5. */
  httpTimeout?: number;
  /** Also ask the issuer's introspection endpoint whether the session is still alive; default false. */
  checkSession?: boolean;
  /** Client credentials (and optionally endpoint and cache) for `checkSession`. */
  introspection?: IntrospectionOptions;
  /** Allow plain `http:` to hosts other than loopback (issuer, JWKS, introspection); default false. */
  allowInsecureHttp?: boolean;
  /** Clock in milliseconds since the epoch; default `Date.now`. Tests move it instead of sleeping. */
  now?: () => number;
}

/** Validated, defaulted, frozen options. */
export interface ResolvedOptions {
  readonly issuer: string;
  readonly audiences: readonly string[];
  readonly jwksUri: string | undefined;
  readonly algorithms: ReadonlySet<string>;
  readonly clockTolerance: number;
  readonly maxTokenBytes: number;
  readonly jwksCacheMaxAgeMs: number;
  readonly jwksCooldownMs: number;
  readonly httpTimeoutMs: number;
  readonly checkSession: boolean;
  readonly introspection:
    | {
        readonly clientId: string;
        readonly clientSecret: string;
        readonly endpoint: string | undefined;
        readonly cacheTtlMs: number;
      }
    | undefined;
  readonly allowInsecureHttp: boolean;
  readonly now: () => number;
}

const KNOWN_KEYS: ReadonlySet<string> = new Set([
  'issuer',
  'audience',
  'jwksUri',
  'algorithms',
  'clockTolerance',
  'maxTokenBytes',
  'jwksCacheMaxAge',
  'jwksCooldown',
  'httpTimeout',
  'checkSession',
  'introspection',
  'allowInsecureHttp',
  'now',
]);
const INTROSPECTION_KEYS: ReadonlySet<string> = new Set(['clientId', 'clientSecret', 'endpoint', 'cacheTtl']);

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function rejectUnknownKeys(value: Record<string, unknown>, known: ReadonlySet<string>, where: string): void {
  for (const key of Object.keys(value)) {
    if (!known.has(key)) throw new TypeError(`${where}: unknown option "${key}"`);
  }
}

function nonEmptyString(value: unknown, name: string): string {
  if (typeof value !== 'string' || value.length === 0) {
    throw new TypeError(`createVerifier: ${name} must be a non-empty string`);
  }
  return value;
}

function seconds(value: unknown, name: string, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    throw new TypeError(`createVerifier: ${name} must be a number of seconds from ${min} to ${max}`);
  }
  return value;
}

const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/i;

/**
 * Parse `value` as an absolute https URL (or http to a loopback host, or any http
 * when `allowInsecureHttp`): keys fetched over plain http on a network can be
 * replaced by anyone on the path, which makes every signature check worthless.
 */
function endpointUrl(value: unknown, name: string, allowInsecureHttp: boolean): string {
  const text = nonEmptyString(value, name);
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new TypeError(`createVerifier: ${name} must be an absolute URL`);
  }
  if (url.protocol === 'https:') return text;
  if (url.protocol === 'http:' && (allowInsecureHttp || LOOPBACK.test(url.hostname))) return text;
  throw new TypeError(
    `createVerifier: ${name} must use https (http only for loopback hosts or with allowInsecureHttp)`,
  );
}

/** Validate and default {@link VerifierOptions}; throws `TypeError` on misuse. */
export function resolveOptions(input: unknown): ResolvedOptions {
  if (!isPlainObject(input)) throw new TypeError('createVerifier: options must be an object');
  rejectUnknownKeys(input, KNOWN_KEYS, 'createVerifier');

  if (input.allowInsecureHttp !== undefined && typeof input.allowInsecureHttp !== 'boolean') {
    throw new TypeError('createVerifier: allowInsecureHttp must be a boolean');
  }
  const allowInsecureHttp = input.allowInsecureHttp === true;

  const issuer = endpointUrl(input.issuer, 'issuer', allowInsecureHttp);
  // RFC 8414 §2: an issuer identifier has no query or fragment.
  if (issuer.includes('?') || issuer.includes('#')) {
    throw new TypeError('createVerifier: issuer must not have a query or fragment');
  }

  const audienceInput = input.audience;
  const audiences =
    typeof audienceInput === 'string'
      ? [audienceInput]
      : Array.isArray(audienceInput)
        ? [...(audienceInput as unknown[])]
        : undefined;
  if (!audiences || audiences.length === 0 || audiences.some((a) => typeof a !== 'string' || a === '')) {
    throw new TypeError('createVerifier: audience must be a non-empty string or array of non-empty strings');
  }

  const jwksUri =
    input.jwksUri === undefined ? undefined : endpointUrl(input.jwksUri, 'jwksUri', allowInsecureHttp);

  let algorithms: ReadonlySet<string> = new Set(['ES256', 'EdDSA']);
  if (input.algorithms !== undefined) {
    const list = input.algorithms;
    if (!Array.isArray(list) || list.length === 0) {
      throw new TypeError('createVerifier: algorithms must be a non-empty array');
    }
    for (const alg of list as unknown[]) {
      if (typeof alg !== 'string' || !ALGORITHMS.has(alg)) {
        // HS*, none and typos all land here, at construction rather than at the first request.
        throw new TypeError(
          `createVerifier: algorithms may hold only asymmetric JWS algorithms (${[...ALGORITHMS].join(', ')})`,
        );
      }
    }
    algorithms = new Set(list as string[]);
  }

  const clockTolerance = seconds(input.clockTolerance, 'clockTolerance', 30, 0, 300);
  let maxTokenBytes = 8192;
  if (input.maxTokenBytes !== undefined) {
    const n = input.maxTokenBytes;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 256 || n > 65_536) {
      throw new TypeError('createVerifier: maxTokenBytes must be an integer from 256 to 65536');
    }
    maxTokenBytes = n;
  }
  const jwksCacheMaxAge = seconds(input.jwksCacheMaxAge, 'jwksCacheMaxAge', 300, 1, 86_400);
  const jwksCooldown = seconds(input.jwksCooldown, 'jwksCooldown', 30, 1, 3_600);
  const httpTimeout = seconds(input.httpTimeout, 'httpTimeout', 5, 0.001, 60);

  if (input.checkSession !== undefined && typeof input.checkSession !== 'boolean') {
    throw new TypeError('createVerifier: checkSession must be a boolean');
  }
  const checkSession = input.checkSession === true;

  let introspection: ResolvedOptions['introspection'];
  if (input.introspection !== undefined) {
    const i = input.introspection;
    if (!isPlainObject(i)) throw new TypeError('createVerifier: introspection must be an object');
    rejectUnknownKeys(i, INTROSPECTION_KEYS, 'createVerifier: introspection');
    introspection = Object.freeze({
      clientId: nonEmptyString(i.clientId, 'introspection.clientId'),
      clientSecret: nonEmptyString(i.clientSecret, 'introspection.clientSecret'),
      endpoint:
        i.endpoint === undefined
          ? undefined
          : endpointUrl(i.endpoint, 'introspection.endpoint', allowInsecureHttp),
      cacheTtlMs: seconds(i.cacheTtl, 'introspection.cacheTtl', 10, 0, 300) * 1000,
    });
  }
  if (checkSession && !introspection) {
    throw new TypeError('createVerifier: checkSession needs introspection: { clientId, clientSecret }');
  }

  if (input.now !== undefined && typeof input.now !== 'function') {
    throw new TypeError('createVerifier: now must be a function returning milliseconds');
  }
  const now = (input.now as (() => number) | undefined) ?? Date.now;

  return Object.freeze({
    issuer,
    audiences: Object.freeze(audiences as string[]),
    jwksUri,
    algorithms,
    clockTolerance,
    maxTokenBytes,
    jwksCacheMaxAgeMs: jwksCacheMaxAge * 1000,
    jwksCooldownMs: jwksCooldown * 1000,
    httpTimeoutMs: httpTimeout * 1000,
    checkSession,
    introspection,
    allowInsecureHttp,
    now,
  });
}

/** RFC 8414 §3.1: the well-known segment goes between the host and the issuer's path. */
export function metadataUrl(issuer: string): string {
  const url = new URL(issuer);
  const path = url.pathname === '/' ? '' : url.pathname.replace(/\/$/, '');
  return `${url.origin}/.well-known/oauth-authorization-server${path}`;
}

/** Baton's documented paths, used when the issuer publishes no RFC 8414 metadata (404). */
export function batonDefaultUrl(issuer: string, path: string): string {
  return issuer.replace(/\/$/, '') + path;
}

/** Whether `url` passes the same transport rule as the configured URLs. */
export function isAllowedEndpoint(url: string, allowInsecureHttp: boolean): boolean {
  try {
    endpointUrl(url, 'url', allowInsecureHttp);
    return true;
  } catch {
    return false;
  }
}
