import type { Redis } from 'ioredis';
import type { Clock } from '../core/clock.js';
import type { RetentionSettings } from '../core/pruning.js';
import type { SigningAlgorithm } from '../core/signing-keys.js';
import type { Store } from '../store/store.js';
import type { LimitSettings } from './rate-limits.js';

/** Options of {@link createServer}. Durations are milliseconds. */
export interface ServerOptions {
  store: Store;
  /** `iss` of tokens and base of metadata URLs, e.g. `https://auth.example.com`. */
  issuer: string;
  accessTtl?: number;
  refreshIdleTtl?: number;
  sessionMaxTtl?: number;
  reuseGrace?: number;
  signingAlg?: SigningAlgorithm;
  /** Browser origins allowed to use cookie mode (default: the issuer's origin). */
  allowedOrigins?: string[];
  /** Which proxies may set `X-Forwarded-For` (Fastify `trustProxy`; default none). */
  trustProxy?: boolean | number | string | string[];
  /** Rate limits (defaults: 10 login failures per account per 15 min, 600 requests per IP per minute). */
  limits?: Partial<LimitSettings>;
  /** A Redis client for limits shared across instances. */
  redis?: Redis;
  /** Largest accepted request body, bytes (default 64 KiB). */
  bodyLimit?: number;
  /** Logging: false (default), true, or a pino level. */
  logger?: boolean | 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';
  /**
   * How often the signing keys and the clients' access-token lifetimes are
   * re-read from the store (ms, default 60 000). The keys alone are also
   * re-read every second (`KEY_CHECK_INTERVAL_MS`), so a `baton keys rotate`
   * or `retire` reaches running instances within about a second, without a
   * restart. A token with an unknown kid also triggers a reload.
   */
  keyPollInterval?: number;
  /**
   * Longest a whole request, headers and body, may take to arrive (ms,
   * default 30 000); a slower one gets a 408 and its connection is closed.
   */
  requestTimeout?: number;
  /** Longest the request headers may take to arrive (ms, default 10 000; at most `requestTimeout`). */
  headersTimeout?: number;
  /** How long an idle keep-alive connection stays open between requests (ms, default 5 000). */
  keepAliveTimeout?: number;
  /** Most connections open at once; more are dropped unanswered (default 1000). */
  maxConnections?: number;
  /** Most live sessions per user; a login beyond it revokes the least recently used (default 100). */
  maxSessionsPerUser?: number;
  /**
   * When set, `GET /metrics` answers only `Authorization: Bearer <metricsToken>`
   * (at least 16 characters). Unset, `/metrics` is open: keep it internal by
   * binding or proxying. @see RFC 6750 §2.1
   */
  metricsToken?: string;
  /** How long ended sessions, spent refresh tokens and security events are kept (defaults 30 d, 30 d, 90 d). */
  retention?: Partial<RetentionSettings>;
  /**
   * How often this instance prunes (ms, default 10 min, jittered; the first
   * run a minute after start), or null for never (`baton prune` from cron).
   */
  pruneInterval?: number | null;
  now?: Clock;
}

const KNOWN = new Set([
  'store',
  'issuer',
  'accessTtl',
  'refreshIdleTtl',
  'sessionMaxTtl',
  'reuseGrace',
  'signingAlg',
  'allowedOrigins',
  'trustProxy',
  'limits',
  'redis',
  'bodyLimit',
  'logger',
  'keyPollInterval',
  'requestTimeout',
  'headersTimeout',
  'keepAliveTimeout',
  'maxConnections',
  'maxSessionsPerUser',
  'metricsToken',
  'retention',
  'pruneInterval',
  'now',
]);

/** Validated, defaulted, frozen options. */
export type ResolvedServerOptions = Readonly<
  Required<
    Omit<
      ServerOptions,
      | 'redis'
      | 'now'
      | 'accessTtl'
      | 'refreshIdleTtl'
      | 'sessionMaxTtl'
      | 'reuseGrace'
      | 'limits'
      | 'maxSessionsPerUser'
      | 'metricsToken'
      | 'retention'
      | 'pruneInterval'
    >
  > & {
    retention: Partial<RetentionSettings> | undefined;
    pruneInterval: number | null;
    metricsToken: string | undefined;
    limits: LimitSettings;
    redis: Redis | undefined;
    now: Clock | undefined;
    accessTtl: number | undefined;
    refreshIdleTtl: number | undefined;
    sessionMaxTtl: number | undefined;
    reuseGrace: number | undefined;
    maxSessionsPerUser: number;
  }
>;

/** The origin of a URL, or throws TypeError naming the option. */
export function originOf(url: string, option: string): string {
  try {
    const u = new URL(url);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error();
    return u.origin;
  } catch {
    throw new TypeError(`${option} must be an http(s) URL`);
  }
}

const LOOPBACK = ['localhost', '127.0.0.1', '[::1]'];

/**
 * The origins allowed by default: the issuer's; and when the issuer is on
 * a loopback name, the same port under the other loopback names too, so the
 * demo page works whether it is opened as localhost or 127.0.0.1.
 */
function defaultOrigins(issuerOrigin: string): string[] {
  const u = new URL(issuerOrigin);
  if (!LOOPBACK.includes(u.hostname)) return [issuerOrigin];
  return LOOPBACK.map((host) => `${u.protocol}//${host}${u.port ? `:${u.port}` : ''}`);
}

/**
 * Checks options once, at construction: a programmer's mistake is a
 * TypeError now, not a 500 at the first request.
 */
export function resolveServerOptions(opts: ServerOptions): ResolvedServerOptions {
  if (typeof opts !== 'object' || opts === null) throw new TypeError('createServer needs an options object');
  for (const key of Object.keys(opts)) if (!KNOWN.has(key)) throw new TypeError(`Unknown option: ${key}`);
  if (!opts.store || typeof opts.store.rotateRefreshToken !== 'function')
    throw new TypeError('store must be a Store');
  const issuerOrigin = originOf(opts.issuer, 'issuer');
  const allowedOrigins = (opts.allowedOrigins ?? defaultOrigins(issuerOrigin)).map((o) =>
    originOf(o, 'allowedOrigins'),
  );
  const bodyLimit = opts.bodyLimit ?? 64 * 1024;
  if (!Number.isInteger(bodyLimit) || bodyLimit < 1024)
    throw new TypeError('bodyLimit must be an integer ≥ 1024');
  const limits: LimitSettings = {
    loginFailuresPerAccount:
      opts.limits?.loginFailuresPerAccount === undefined ? 10 : opts.limits.loginFailuresPerAccount,
    requestsPerIpPerMinute:
      opts.limits?.requestsPerIpPerMinute === undefined ? 600 : opts.limits.requestsPerIpPerMinute,
  };
  for (const [k, v] of Object.entries(limits)) {
    if (v !== null && (!Number.isInteger(v) || v < 1))
      throw new TypeError(`limits.${k} must be a positive integer or null`);
  }
  const keyPollInterval = opts.keyPollInterval ?? 60_000;
  if (!Number.isInteger(keyPollInterval) || keyPollInterval < 1)
    throw new TypeError('keyPollInterval must be a positive integer (ms)');
  // Tighter than a general-purpose proxy (nginx: 60 s headers and body, 75 s keep-alive): every
  // Baton request is a small form or JSON body, so a slow one is a stuck client or an attack.
  const timeouts = {
    requestTimeout: opts.requestTimeout ?? 30_000,
    headersTimeout: opts.headersTimeout ?? 10_000,
    keepAliveTimeout: opts.keepAliveTimeout ?? 5_000,
    maxConnections: opts.maxConnections ?? 1000,
  };
  for (const [k, v] of Object.entries(timeouts)) {
    if (!Number.isInteger(v) || v < 1) throw new TypeError(`${k} must be a positive integer`);
  }
  if (timeouts.headersTimeout > timeouts.requestTimeout)
    throw new TypeError('headersTimeout must not exceed requestTimeout');
  const maxSessionsPerUser = opts.maxSessionsPerUser ?? 100;
  if (!Number.isSafeInteger(maxSessionsPerUser) || maxSessionsPerUser < 1)
    throw new TypeError('maxSessionsPerUser must be a positive integer');
  const metricsToken = opts.metricsToken;
  if (
    metricsToken !== undefined &&
    (typeof metricsToken !== 'string' || !/^[\x21-\x7e]{16,512}$/.test(metricsToken))
  )
    throw new TypeError('metricsToken must be 16-512 printable ASCII characters without spaces');
  const pruneInterval = opts.pruneInterval === undefined ? 600_000 : opts.pruneInterval;
  if (pruneInterval !== null && (!Number.isSafeInteger(pruneInterval) || pruneInterval < 1000))
    throw new TypeError('pruneInterval must be null or an integer of at least 1000 (ms)');
  return Object.freeze({
    retention: opts.retention,
    pruneInterval,
    store: opts.store,
    issuer: opts.issuer,
    accessTtl: opts.accessTtl,
    refreshIdleTtl: opts.refreshIdleTtl,
    sessionMaxTtl: opts.sessionMaxTtl,
    reuseGrace: opts.reuseGrace,
    signingAlg: opts.signingAlg ?? 'ES256',
    allowedOrigins,
    trustProxy: opts.trustProxy ?? false,
    limits: Object.freeze(limits),
    redis: opts.redis,
    bodyLimit,
    logger: opts.logger ?? false,
    keyPollInterval,
    ...timeouts,
    maxSessionsPerUser,
    metricsToken,
    now: opts.now,
  });
}
