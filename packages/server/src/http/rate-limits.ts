import { isIPv4, isIPv6 } from 'node:net';
import type { Redis } from 'ioredis';
import {
  type RateLimiterAbstract,
  RateLimiterMemory,
  RateLimiterRedis,
  RateLimiterRes,
} from 'rate-limiter-flexible';
import { BatonError } from '../core/errors.js';
import type { LoginLimiter } from '../core/login-limiter.js';

/** Limit settings; `null` switches a limit off (benchmarks). */
export interface LimitSettings {
  /** Failed logins per account per 15 minutes (default 10). */
  loginFailuresPerAccount: number | null;
  /** Requests per client IP per minute on `/auth` and `/oauth` (default 600). */
  requestsPerIpPerMinute: number | null;
}

/**
 * The limits a request path consults: the per-IP request budget, and the
 * login-failure counts core's login policy keeps through {@link LoginLimiter}.
 */
export interface Limits extends LoginLimiter {
  /** Counts one request from `ip`; throws 429 past the limit. */
  hit(ip: string): Promise<void>;
  /** Whether {@link hit} counts anything (false when the per-IP limit is off). */
  readonly countsRequests: boolean;
  /**
   * Whether the shared counts in Redis are in use (`up`) or each process
   * counts on its own meanwhile (`down`); undefined without Redis.
   */
  redisStatus(): 'up' | 'down' | undefined;
}

/** Where {@link watchRedis} reports an outage and the recovery (Fastify's logger). */
export interface RedisLog {
  warn(msg: string): void;
  info(msg: string): void;
}

/**
 * Logs a Redis outage once when it begins and once when it ends, not once
 * per request or reconnect attempt (ioredis retries by itself). The URL is
 * never logged: it may carry a password.
 */
export function watchRedis(redis: Redis, log: RedisLog): () => void {
  let down = false;
  const wentDown = (why: string) => {
    if (down) return;
    down = true;
    log.warn(`Redis is not reachable (${why}): rate limits are counted per process until it is back`);
  };
  const onError = (err: Error) => wentDown(err.message || 'connection error');
  const onClose = () => wentDown('connection closed');
  const onReady = () => {
    if (!down) return;
    down = false;
    log.info('Redis is reachable again: rate limits are shared again');
  };
  redis.on('error', onError);
  redis.on('close', onClose);
  redis.on('ready', onReady);
  // It may have failed before we listened (the server starts after the client is made).
  if (['reconnecting', 'close', 'end'].includes(redis.status)) wentDown('not connected');
  return () => {
    redis.off('error', onError);
    redis.off('close', onClose);
    redis.off('ready', onReady);
  };
}

const FAILURE_WINDOW_S = 15 * 60;
/** An IP may fail for many accounts (a shared NAT), but not without bound. */
const IP_FAILURE_FACTOR = 10;

/**
 * The per-IP bucket of a client address. An IPv4 address is its own bucket;
 * an IPv4-mapped IPv6 address (`::ffff:192.0.2.1`, what a dual-stack socket
 * reports) is the IPv4 address it maps; any other IPv6 address counts as its
 * /64, because one host or home network is routinely given a whole /64 and
 * can take a fresh address from it for every request.
 * @see RFC 4291 §2.5.5.2, RFC 6177
 */
export function ipBucket(ip: string): string {
  if (isIPv4(ip)) return ip;
  if (!isIPv6(ip)) return ip;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (mapped && isIPv4(mapped[1]!)) return mapped[1]!;
  // Expand "::" so that the first four groups are the /64 prefix, whatever the spelling.
  const [head = '', tail] = ip.split('::') as [string, string | undefined];
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups =
    tail === undefined ? left : [...left, ...Array(8 - left.length - right.length).fill('0'), ...right];
  const prefix = groups.slice(0, 4).map((g) => Number.parseInt(g, 16).toString(16));
  return `${prefix.join(':')}::/64`;
}

function tooMany(res: unknown, what: string): BatonError {
  const ms = res instanceof RateLimiterRes ? res.msBeforeNext : 60_000;
  return new BatonError('too_many_requests', `Too many ${what}; try again later`, { retryAfter: ms / 1000 });
}

/**
 * Creates the limiters: in memory for one instance, in Redis when a client
 * is given so every instance shares the counts. A Redis outage falls back
 * to per-process counting rather than refusing every login.
 *
 * The account limit keys on the normalised email whether or not the account
 * exists, so a 429 says nothing about which accounts are real; the window is
 * fixed (failures during a block do not extend it), so an attacker cannot
 * lock a victim out for longer than one window.
 *
 * He could still renew the lock every window. So a device that has logged
 * in to the account before (a valid device token, see `core/device-token.ts`)
 * is counted on a bucket of its own instead of the account's: the
 * attacker's failures never reach it, and a stolen device token buys only
 * that device's own few guesses. The per-IP bucket applies to everyone.
 * @see OWASP "Slow Down Online Guessing Attacks with Device Cookies"
 */
/** Which limit refused a request (the `kind` label of `baton_rate_limited_total`). */
export type LimitKind = 'ip' | 'login_account' | 'login_device' | 'login_ip';

export function createLimits(
  settings: LimitSettings,
  redis?: Redis,
  onLimited: (kind: LimitKind) => void = () => {},
): Limits {
  const make = (keyPrefix: string, points: number, duration: number): RateLimiterAbstract => {
    const memory = new RateLimiterMemory({ keyPrefix, points, duration });
    return redis
      ? new RateLimiterRedis({
          storeClient: redis,
          keyPrefix: `baton:${keyPrefix}`,
          points,
          duration,
          insuranceLimiter: memory,
        })
      : memory;
  };
  const perIp =
    settings.requestsPerIpPerMinute === null ? null : make('ip', settings.requestsPerIpPerMinute, 60);
  const accountLimit = settings.loginFailuresPerAccount;
  const perAccount = accountLimit === null ? null : make('login-account', accountLimit, FAILURE_WINDOW_S);
  const perDevice = accountLimit === null ? null : make('login-device', accountLimit, FAILURE_WINDOW_S);
  const perIpFailures =
    accountLimit === null ? null : make('login-ip', accountLimit * IP_FAILURE_FACTOR, FAILURE_WINDOW_S);

  const blocked = async (
    limiter: RateLimiterAbstract | null,
    key: string,
    limit: number,
  ): Promise<RateLimiterRes | null> => {
    if (!limiter) return null;
    const res = await limiter.get(key);
    return res && res.consumedPoints >= limit ? res : null;
  };

  return {
    redisStatus: () => (redis === undefined ? undefined : redis.status === 'ready' ? 'up' : 'down'),
    countsRequests: perIp !== null,
    async hit(ip) {
      if (!perIp) return;
      try {
        await perIp.consume(ipBucket(ip));
      } catch (res) {
        if (res instanceof Error) return; // the store failed: do not turn an outage into refusals
        onLimited('ip');
        throw tooMany(res, 'requests');
      }
    },
    async assertLoginAllowed(account, ip, device) {
      if (accountLimit === null) return;
      const own =
        device === undefined
          ? await blocked(perAccount, account, accountLimit)
          : await blocked(perDevice, device, accountLimit);
      const res = own ?? (await blocked(perIpFailures, ipBucket(ip), accountLimit * IP_FAILURE_FACTOR));
      if (!res) return;
      onLimited(own ? (device === undefined ? 'login_account' : 'login_device') : 'login_ip');
      throw tooMany(res, 'failed logins');
    },
    async loginFailed(account, ip, device) {
      await Promise.all([
        device === undefined ? perAccount?.penalty(account, 1) : perDevice?.penalty(device, 1),
        perIpFailures?.penalty(ipBucket(ip), 1),
      ]);
    },
    async loginSucceeded(account, device) {
      // A trusted device's success clears only its own count: the account's
      // count is what untrusted clients (perhaps an attacker) have run up.
      await (device === undefined ? perAccount?.delete(account) : perDevice?.delete(device));
    },
  };
}
