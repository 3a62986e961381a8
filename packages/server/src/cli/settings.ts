/** One `BATON_*` setting: its variable, the `baton serve` flag mirroring it, its default and meaning. */
export interface Setting {
  name: string;
  /** The default as the variable would spell it; undefined = unset. */
  default: string | undefined;
  description: string;
  example: string;
  /** The value may hold a password: it is never printed as written. */
  secret?: boolean;
}

/**
 * Every setting `cli/config.ts` reads: the one table `baton serve --help`
 * and docs/configuration.md are made from, so they cannot drift apart.
 */
export const SETTINGS: readonly Setting[] = [
  {
    name: 'BATON_PORT',
    default: '3000',
    description: 'TCP port to listen on (0 = any free port)',
    example: '8080',
  },
  {
    name: 'BATON_HOST',
    default: '127.0.0.1',
    description: 'address to listen on; 0.0.0.0 for every interface',
    example: '0.0.0.0',
  },
  {
    name: 'BATON_ISSUER',
    default: 'http://localhost:<port>',
    description: 'public URL of the service: the `iss` of every token, https in production',
    example: 'https://auth.example.com',
  },
  {
    name: 'BATON_DATABASE_URL',
    default: 'sqlite:./data/baton.db',
    description: 'sqlite:<path> or postgres://user:password@host/db[?schema=name]',
    example: 'postgres://baton:secret@db/baton?schema=baton',
    secret: true,
  },
  {
    name: 'BATON_REDIS_URL',
    default: undefined,
    description: 'Redis for rate limits shared by every instance; unset = per-process counts',
    example: 'redis://:secret@cache:6379/0',
    secret: true,
  },
  {
    name: 'BATON_ACCESS_TTL',
    default: '900',
    description: 'access-token lifetime (seconds, or 15m, 1h …)',
    example: '10m',
  },
  {
    name: 'BATON_REFRESH_IDLE_TTL',
    default: '14d',
    description: 'a session dies after this long unused',
    example: '7d',
  },
  {
    name: 'BATON_SESSION_MAX_TTL',
    default: '30d',
    description: 'absolute session lifetime; refreshing never extends it',
    example: '90d',
  },
  {
    name: 'BATON_REUSE_GRACE',
    default: '10s',
    description: 'a just-used refresh token still gets the same successor this long (lost responses, races)',
    example: '5s',
  },
  {
    name: 'BATON_ALLOWED_ORIGINS',
    default: undefined,
    description:
      'comma-separated browser origins allowed to use cookie mode; unset = the issuer’s origin (for a localhost issuer also 127.0.0.1 and [::1] on that port)',
    example: 'https://app.example.com',
  },
  {
    name: 'BATON_TRUST_PROXY',
    default: 'false',
    description: 'proxies whose X-Forwarded-For is believed: true, a hop count, or IPs/CIDRs',
    example: '10.0.0.0/8',
  },
  {
    name: 'BATON_LIMIT_LOGIN_FAILURES',
    default: '10',
    description: 'failed logins per account per 15 minutes, or off',
    example: '5',
  },
  {
    name: 'BATON_LIMIT_IP_PER_MIN',
    default: '600',
    description: 'requests per client IP per minute on /auth, /oauth and /api, or off (benchmarks)',
    example: '300',
  },
  {
    name: 'BATON_SIGNING_ALG',
    default: 'ES256',
    description: 'algorithm of new signing keys: ES256 or EdDSA',
    example: 'EdDSA',
  },
  {
    name: 'BATON_LOG_LEVEL',
    default: 'info',
    description:
      'fatal, error, warn, info, debug, trace or silent; logs never hold tokens, passwords or hashes',
    example: 'warn',
  },
  {
    name: 'BATON_KEY_POLL_INTERVAL',
    default: '60s',
    description:
      'how often running servers re-read the signing keys with the clients’ lifetimes (the keys alone every second)',
    example: '30s',
  },
  {
    name: 'BATON_REQUEST_TIMEOUT',
    default: '30s',
    description: 'longest a whole request may take',
    example: '10s',
  },
  {
    name: 'BATON_HEADERS_TIMEOUT',
    default: '10s',
    description: 'longest the request headers may take (at most BATON_REQUEST_TIMEOUT)',
    example: '5s',
  },
  {
    name: 'BATON_KEEP_ALIVE_TIMEOUT',
    default: '5s',
    description: 'how long an idle keep-alive connection stays open',
    example: '65s',
  },
  {
    name: 'BATON_MAX_CONNECTIONS',
    default: '1000',
    description: 'most open connections; beyond it new ones are dropped',
    example: '5000',
  },
  {
    name: 'BATON_MAX_SESSIONS_PER_USER',
    default: '100',
    description: 'live sessions per user; the least recently used is revoked past it',
    example: '20',
  },
  {
    name: 'BATON_PG_POOL_SIZE',
    default: '10',
    description: 'most PostgreSQL connections per instance; SQLite ignores it',
    example: '20',
  },
  {
    name: 'BATON_METRICS_TOKEN',
    default: undefined,
    description:
      'when set (16-512 printable ASCII characters), GET /metrics needs Authorization: Bearer <token>',
    example: 'a-long-random-scrape-token',
    secret: true,
  },
  {
    name: 'BATON_RETENTION_ENDED_SESSIONS',
    default: '30d',
    description:
      'an ended (revoked or expired) session and all its tokens are deleted this long after it ended',
    example: '7d',
  },
  {
    name: 'BATON_RETENTION_SPENT_TOKENS',
    default: '30d',
    description:
      'reuse-detection horizon: spent refresh tokens of live sessions are deleted this long after use; a replay older than it is invalid_grant without revoking (at least BATON_REUSE_GRACE)',
    example: '14d',
  },
  {
    name: 'BATON_RETENTION_EVENTS',
    default: '90d',
    description: 'security events are deleted this long after they were recorded',
    example: '365d',
  },
  {
    name: 'BATON_PRUNE_INTERVAL',
    default: '10m',
    description:
      'how often each instance prunes (jittered; first run a minute after start); off = only `baton prune`',
    example: 'off',
  },
  {
    name: 'BATON_SHUTDOWN_TIMEOUT',
    default: '10s',
    description: 'on SIGTERM/SIGINT, how long in-flight requests may take to finish before they are cut',
    example: '25s',
  },
];

/** The `baton serve` flag mirroring a variable: `BATON_ACCESS_TTL` → `--access-ttl`. */
export function flagOf(name: string): string {
  return `--${name.slice('BATON_'.length).toLowerCase().replaceAll('_', '-')}`;
}

/** A setting's default as its variable would spell it (the table is the one source). */
export function defaultOf(name: string): string {
  const value = SETTINGS.find((s) => s.name === name)?.default;
  if (value === undefined) throw new TypeError(`${name} has no default`);
  return value;
}

/** The settings as help text: one line per flag with its variable and default. */
export function settingsHelp(): string {
  const width = Math.max(...SETTINGS.map((s) => flagOf(s.name).length)) + 2;
  return SETTINGS.map((s) => {
    const def = s.default === undefined ? 'unset' : `default ${s.default}`;
    return `  ${flagOf(s.name).padEnd(width)}${s.name} (${def})\n  ${' '.repeat(width)}${s.description}\n`;
  }).join('');
}
