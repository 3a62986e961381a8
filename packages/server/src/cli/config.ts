import type { ServerOptions } from '../http/options.js';
import { defaultOf, SETTINGS } from './settings.js';

/** A configuration mistake: the CLI prints it and exits with status 2. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** What `baton serve` runs with, parsed from `BATON_*` variables and flags. */
export interface ServeConfig {
  port: number;
  host: string;
  databaseUrl: string;
  /** Most connections of the PostgreSQL pool (`BATON_PG_POOL_SIZE`); undefined: the store's default. */
  pgPoolSize: number | undefined;
  redisUrl: string | undefined;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** How long SIGTERM/SIGINT waits for in-flight requests before closing them (ms). */
  shutdownTimeout: number;
  server: Omit<ServerOptions, 'store' | 'redis'>;
  /** Settings that are legal but unusual, to log at start. */
  warnings: string[];
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parses `900`, `900s`, `15m`, `2h`, `14d` (or `500ms`) into milliseconds. */
export function parseDuration(text: string, name: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(text);
  if (!m) throw new ConfigError(`${name}: expected a duration such as 900, 15m or 14d (got "${text}")`);
  const ms = Math.round(Number(m[1]) * UNITS[m[2] ?? 's']!);
  if (!(ms > 0) || !Number.isSafeInteger(ms))
    throw new ConfigError(`${name}: must be a positive duration (got "${text}")`);
  return ms;
}

function parseLimit(text: string, name: string): number | null {
  if (text.trim().toLowerCase() === 'off') return null;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1)
    throw new ConfigError(`${name}: expected a positive integer or "off" (got "${text}")`);
  return n;
}

function parseOrigin(text: string, name: string): string {
  try {
    const u = new URL(text);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error();
    return u.origin;
  } catch {
    throw new ConfigError(`${name}: "${text}" is not an http(s) origin`);
  }
}

function parseTrustProxy(text: string): boolean | number | string[] {
  const t = text.trim();
  if (t === 'true') return true;
  if (t === 'false' || t === '') return false;
  if (/^\d+$/.test(t)) return Number(t);
  const list = t
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const entry of list) {
    if (
      !/^[0-9a-fA-F.:]+(\/\d{1,3})?$/.test(entry) &&
      !['loopback', 'linklocal', 'uniquelocal'].includes(entry)
    ) {
      throw new ConfigError(
        `BATON_TRUST_PROXY: "${entry}" is not an IP address, CIDR range, hop count or true/false`,
      );
    }
  }
  return list;
}

const KNOWN_VARS = new Set(SETTINGS.map((s) => s.name));

/**
 * Turns `--access-ttl 15m` / `--access-ttl=15m` flags into `BATON_ACCESS_TTL`
 * settings: every flag mirrors a variable. Flags win over the environment.
 */
export function flagsToEnv(args: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (!arg.startsWith('--')) throw new ConfigError(`Unexpected argument "${arg}"`);
    const eq = arg.indexOf('=');
    const flag = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
    const name = `BATON_${flag.toUpperCase().replaceAll('-', '_')}`;
    if (!KNOWN_VARS.has(name)) throw new ConfigError(`Unknown flag --${flag}`);
    const value = eq === -1 ? args[++i] : arg.slice(eq + 1);
    if (value === undefined) throw new ConfigError(`--${flag} needs a value`);
    out[name] = value;
  }
  return out;
}

/**
 * Builds the server configuration from `BATON_*` variables: the one place
 * the environment is read. Every bad value is reported naming its variable.
 */
export function loadServeConfig(env: Record<string, string | undefined>): ServeConfig {
  const get = (name: string): string | undefined => {
    const v = env[name];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  };
  const warnings: string[] = [];

  const portText = get('BATON_PORT') ?? defaultOf('BATON_PORT');
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port > 65535)
    throw new ConfigError(`BATON_PORT: expected a port number 0-65535 (got "${portText}")`);
  const host = get('BATON_HOST') ?? defaultOf('BATON_HOST');
  const issuerText = get('BATON_ISSUER') ?? `http://localhost:${port || 3000}`;
  let issuer: string;
  try {
    const u = new URL(issuerText);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error();
    if (u.search || u.hash) throw new Error();
    issuer = issuerText;
  } catch {
    throw new ConfigError(
      `BATON_ISSUER: expected an http(s) URL without query or fragment (got "${issuerText}")`,
    );
  }
  if (issuer.startsWith('http:') && !/^http:\/\/(localhost|127\.0\.0\.1|\[::1\])(:|\/|$)/.test(issuer)) {
    warnings.push('BATON_ISSUER is plain http on a non-local host: use https in production');
  }

  const databaseUrl = get('BATON_DATABASE_URL') ?? defaultOf('BATON_DATABASE_URL');
  if (!/^(sqlite:|postgres(ql)?:\/\/)/.test(databaseUrl)) {
    // The URL may contain a password: do not echo it.
    throw new ConfigError('BATON_DATABASE_URL: must start with sqlite: or postgres://');
  }
  const poolText = get('BATON_PG_POOL_SIZE');
  const pgPoolSize = poolText === undefined ? undefined : Number(poolText);
  if (
    poolText !== undefined &&
    (!/^\d+$/.test(poolText) || !Number.isSafeInteger(pgPoolSize) || pgPoolSize! < 1)
  )
    throw new ConfigError(`BATON_PG_POOL_SIZE: expected a positive integer (got "${poolText}")`);
  if (pgPoolSize !== undefined && databaseUrl.startsWith('sqlite:'))
    warnings.push('BATON_PG_POOL_SIZE applies to PostgreSQL only and is ignored for SQLite');
  const redisUrl = get('BATON_REDIS_URL');
  if (redisUrl !== undefined && !/^rediss?:\/\//.test(redisUrl))
    throw new ConfigError('BATON_REDIS_URL: must start with redis:// or rediss://');

  const duration = (name: string) => parseDuration(get(name) ?? defaultOf(name), name);
  const accessTtl = duration('BATON_ACCESS_TTL');
  const refreshIdleTtl = duration('BATON_REFRESH_IDLE_TTL');
  const sessionMaxTtl = duration('BATON_SESSION_MAX_TTL');
  const reuseGrace = duration('BATON_REUSE_GRACE');
  if (accessTtl < 60_000 || accessTtl > 3_600_000)
    warnings.push('BATON_ACCESS_TTL outside 1 min - 1 h is unusual');
  if (refreshIdleTtl > sessionMaxTtl)
    warnings.push('BATON_REFRESH_IDLE_TTL exceeds BATON_SESSION_MAX_TTL: the absolute limit wins');
  if (reuseGrace > 60_000)
    warnings.push('BATON_REUSE_GRACE above 60 s widens the window in which a stolen token is honoured');
  if (accessTtl > refreshIdleTtl) warnings.push('BATON_ACCESS_TTL exceeds BATON_REFRESH_IDLE_TTL');
  // How often running servers re-read the signing keys; `baton keys rotate` waits JWKS max-age + this.
  const keyPollInterval = duration('BATON_KEY_POLL_INTERVAL');
  if (keyPollInterval > 600_000)
    warnings.push(
      'BATON_KEY_POLL_INTERVAL above 10 min delays picking up clients’ access-token lifetimes, which decide how long retired keys stay published',
    );

  const requestTimeout = duration('BATON_REQUEST_TIMEOUT');
  const headersTimeout = duration('BATON_HEADERS_TIMEOUT');
  const keepAliveTimeout = duration('BATON_KEEP_ALIVE_TIMEOUT');
  if (headersTimeout > requestTimeout)
    throw new ConfigError('BATON_HEADERS_TIMEOUT: must not exceed BATON_REQUEST_TIMEOUT');
  const maxConnectionsText = get('BATON_MAX_CONNECTIONS') ?? defaultOf('BATON_MAX_CONNECTIONS');
  const maxConnections = Number(maxConnectionsText);
  if (!/^\d+$/.test(maxConnectionsText) || !Number.isSafeInteger(maxConnections) || maxConnections < 1)
    throw new ConfigError(`BATON_MAX_CONNECTIONS: expected a positive integer (got "${maxConnectionsText}")`);
  const maxSessionsText = get('BATON_MAX_SESSIONS_PER_USER') ?? defaultOf('BATON_MAX_SESSIONS_PER_USER');
  const maxSessionsPerUser = Number(maxSessionsText);
  if (!/^\d+$/.test(maxSessionsText) || !Number.isSafeInteger(maxSessionsPerUser) || maxSessionsPerUser < 1)
    throw new ConfigError(
      `BATON_MAX_SESSIONS_PER_USER: expected a positive integer (got "${maxSessionsText}")`,
    );

  const metricsToken = get('BATON_METRICS_TOKEN');
  // Never echo the value: it is a secret.
  if (metricsToken !== undefined && !/^[\x21-\x7e]{16,512}$/.test(metricsToken))
    throw new ConfigError('BATON_METRICS_TOKEN: expected 16-512 printable ASCII characters without spaces');

  const allowedOrigins = get('BATON_ALLOWED_ORIGINS')
    ?.split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((o) => parseOrigin(o, 'BATON_ALLOWED_ORIGINS'));
  const trustProxy = parseTrustProxy(get('BATON_TRUST_PROXY') ?? defaultOf('BATON_TRUST_PROXY'));
  const loginFailuresPerAccount = parseLimit(
    get('BATON_LIMIT_LOGIN_FAILURES') ?? defaultOf('BATON_LIMIT_LOGIN_FAILURES'),
    'BATON_LIMIT_LOGIN_FAILURES',
  );
  const requestsPerIpPerMinute = parseLimit(
    get('BATON_LIMIT_IP_PER_MIN') ?? defaultOf('BATON_LIMIT_IP_PER_MIN'),
    'BATON_LIMIT_IP_PER_MIN',
  );
  if (loginFailuresPerAccount === null || requestsPerIpPerMinute === null)
    warnings.push('A rate limit is off: only do this for benchmarks');

  const alg = get('BATON_SIGNING_ALG') ?? defaultOf('BATON_SIGNING_ALG');
  if (alg !== 'ES256' && alg !== 'EdDSA')
    throw new ConfigError(`BATON_SIGNING_ALG: expected ES256 or EdDSA (got "${alg}")`);
  const logLevel = get('BATON_LOG_LEVEL') ?? defaultOf('BATON_LOG_LEVEL');
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(logLevel)) {
    throw new ConfigError(
      `BATON_LOG_LEVEL: expected one of fatal, error, warn, info, debug, trace, silent (got "${logLevel}")`,
    );
  }

  const retention = {
    endedSessions: duration('BATON_RETENTION_ENDED_SESSIONS'),
    spentTokens: duration('BATON_RETENTION_SPENT_TOKENS'),
    securityEvents: duration('BATON_RETENTION_EVENTS'),
  };
  // Inside the grace window a replay must still find its token to be handed the same successor.
  if (retention.spentTokens < reuseGrace)
    throw new ConfigError('BATON_RETENTION_SPENT_TOKENS: must be at least BATON_REUSE_GRACE');
  const pruneText = get('BATON_PRUNE_INTERVAL') ?? defaultOf('BATON_PRUNE_INTERVAL');
  const pruneInterval =
    pruneText.toLowerCase() === 'off' ? null : parseDuration(pruneText, 'BATON_PRUNE_INTERVAL');
  if (pruneInterval !== null && pruneInterval < 1000)
    throw new ConfigError('BATON_PRUNE_INTERVAL: must be at least 1s, or "off"');
  const shutdownTimeout = duration('BATON_SHUTDOWN_TIMEOUT');

  for (const name of Object.keys(env)) {
    if (name.startsWith('BATON_') && !KNOWN_VARS.has(name))
      warnings.push(`${name} is not a Baton setting and is ignored`);
  }

  return {
    port,
    host,
    databaseUrl,
    pgPoolSize,
    redisUrl,
    logLevel: logLevel as ServeConfig['logLevel'],
    shutdownTimeout,
    warnings,
    server: {
      issuer,
      accessTtl,
      refreshIdleTtl,
      sessionMaxTtl,
      reuseGrace,
      signingAlg: alg,
      ...(allowedOrigins ? { allowedOrigins } : {}),
      trustProxy,
      limits: { loginFailuresPerAccount, requestsPerIpPerMinute },
      logger: logLevel === 'silent' ? false : (logLevel as 'info'),
      keyPollInterval,
      requestTimeout,
      headersTimeout,
      keepAliveTimeout,
      maxConnections,
      maxSessionsPerUser,
      ...(metricsToken !== undefined ? { metricsToken } : {}),
      retention,
      pruneInterval,
    },
  };
}
