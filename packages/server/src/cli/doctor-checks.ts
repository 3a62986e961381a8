import { Redis } from 'ioredis';
import type { TokenService } from '../core/token-service.js';
import type { ServeConfig } from './config.js';
import { SETTINGS } from './settings.js';
import { redactUrl } from './startup.js';

/** How one check came out: `fail` makes `baton doctor` exit 1; `warn` does not. */
export type CheckStatus = 'ok' | 'warn' | 'fail';

/** One line of the report. */
export interface CheckResult {
  check: string;
  status: CheckStatus;
  message: string;
}

const result = (check: string, status: CheckStatus, message: string): CheckResult => ({
  check,
  status,
  message,
});

/** A clock difference past this is worth a warning: token `iat`/`exp` and DPoP freshness depend on it. */
export const CLOCK_SKEW_WARN_MS = 2000;

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);

/** The configuration: valid (it was parsed), its warnings, and which settings differ from their defaults. */
export function checkConfiguration(
  config: ServeConfig,
  env: Record<string, string | undefined>,
): CheckResult[] {
  const changed = SETTINGS.filter((s) => {
    const value = env[s.name]?.trim();
    return value !== undefined && value !== '' && value !== s.default;
  }).map((s) => (s.secret ? `${s.name} (set)` : `${s.name}=${env[s.name]!.trim()}`));
  const out = [
    result(
      'configuration',
      'ok',
      changed.length === 0
        ? 'valid; every setting at its default'
        : `valid; non-default: ${changed.join(', ')}`,
    ),
  ];
  for (const warning of config.warnings) out.push(result('configuration', 'warn', warning));
  return out;
}

/** The issuer: https unless on this machine, and no trailing slash for verifiers to trip on. */
export function checkIssuer(issuer: string): CheckResult {
  const url = new URL(issuer);
  if (url.protocol !== 'https:' && !LOOPBACK_HOSTS.has(url.hostname))
    return result(
      'issuer',
      'fail',
      `${issuer} is plain http on a non-local host: tokens and cookies would travel unprotected; use https`,
    );
  if (issuer.endsWith('/'))
    return result(
      'issuer',
      'warn',
      `${issuer} ends in "/": the iss claim carries it byte for byte, so verifiers must be configured with the slash too`,
    );
  return result('issuer', 'ok', issuer);
}

/** `/metrics` tells an attacker how their guessing goes: behind a token, or on loopback only. */
export function checkMetrics(config: ServeConfig): CheckResult {
  if (config.server.metricsToken !== undefined)
    return result('metrics', 'ok', 'GET /metrics needs the metrics token');
  if (LOOPBACK_HOSTS.has(config.host))
    return result('metrics', 'ok', `GET /metrics is open, but the server listens on ${config.host} only`);
  return result(
    'metrics',
    'warn',
    `GET /metrics is open on ${config.host}: set BATON_METRICS_TOKEN, or keep the port internal`,
  );
}

/** Migrations: all applied is ok; pending ones are a warning with the command that applies them. */
export async function checkDatabase(
  service: TokenService,
  dialect: string,
): Promise<{
  results: CheckResult[];
  migrated: boolean;
  databaseTime: number | null;
  localTime: number;
}> {
  const before = Date.now();
  const state = await service.inspectStore();
  // The database read its clock somewhere inside the round trip: compare with its middle.
  const localTime = Math.round((before + Date.now()) / 2);
  const reachable = result('database', 'ok', `${dialect} reachable`);
  const vacuum = checkAutovacuum(state.autovacuum);
  const migrations =
    state.migrationsPending === 0
      ? result('migrations', 'ok', `up to date (${state.migrationsApplied} applied)`)
      : result(
          'migrations',
          'warn',
          `pending ${state.migrationsPending} (${state.migrationsApplied} applied): run baton migrate`,
        );
  return {
    results: [reachable, migrations, vacuum],
    migrated: state.migrationsPending === 0,
    databaseTime: state.databaseTime,
    localTime,
  };
}

/** What `baton serve` and `baton doctor` say when PostgreSQL runs without autovacuum. */
export const AUTOVACUUM_OFF =
  "PostgreSQL runs with autovacuum off: Baton's tables never get statistics, so each connection keeps the query plans it made while they were small (a rotation can then cost PostgreSQL several times the CPU), and used tokens' dead rows are never reclaimed. Turn autovacuum on, or ANALYZE and VACUUM Baton's schema on a schedule (docs/postgres.md)";

/** PostgreSQL's autovacuum (null: SQLite, which has none and needs none). */
export function checkAutovacuum(autovacuum: boolean | null): CheckResult {
  if (autovacuum === null) return result('autovacuum', 'ok', 'not applicable: SQLite');
  return autovacuum ? result('autovacuum', 'ok', 'on') : result('autovacuum', 'warn', AUTOVACUUM_OFF);
}

/** This machine's clock against the database server's (PostgreSQL); SQLite shares this machine's. */
export function checkClock(databaseTime: number | null, localTime: number): CheckResult {
  if (databaseTime === null) return result('clock', 'ok', 'not applicable: SQLite runs on this machine');
  const skew = localTime - databaseTime;
  const words = `this machine is ${Math.abs(skew)} ms ${skew >= 0 ? 'ahead of' : 'behind'} the database`;
  return Math.abs(skew) > CLOCK_SKEW_WARN_MS
    ? result(
        'clock',
        'warn',
        `${words}: synchronise both with NTP (token times and DPoP freshness rely on it)`,
      )
    : result('clock', 'ok', words);
}

const iso = (ms: number) => new Date(ms).toISOString();

/** The signing keys: exactly one signs now; keys about to retire are named with their successor. */
export async function checkSigningKeys(service: TokenService, now: number): Promise<CheckResult> {
  const keys = await service.signingKeys.list(now, await service.signingKeys.maxTokenLifetime());
  const signing = keys.filter((k) => k.state === 'signing');
  if (keys.length === 0)
    return result('signing keys', 'warn', 'none yet: the server creates the first one when it starts');
  if (signing.length !== 1)
    return result('signing keys', 'fail', 'no key signs now: run baton keys rotate --now');
  const [signer] = signing;
  const pending = keys.filter((k) => k.state === 'pending');
  const notes = pending.map((k) => `${k.kid} takes over at ${iso(k.activatesAt)}`);
  if (signer!.retiredAt !== null) notes.unshift(`${signer!.kid} retires at ${iso(signer!.retiredAt)}`);
  return result(
    'signing keys',
    'ok',
    `${signer!.kid} (${signer!.alg}) signs${notes.length > 0 ? `; ${notes.join('; ')}` : ''}`,
  );
}

/** Redis, when configured: unreachable is a warning, as in /readyz (limits count per process meanwhile). */
export async function checkRedis(redisUrl: string | undefined): Promise<CheckResult | null> {
  if (redisUrl === undefined) return null;
  const redis = new Redis(redisUrl, {
    lazyConnect: true,
    connectTimeout: 2000,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  redis.on('error', () => {
    // Reported below, once.
  });
  try {
    await redis.connect();
    await redis.ping();
    return result('redis', 'ok', `${redactUrl(redisUrl)} reachable`);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    return result(
      'redis',
      'warn',
      `${redactUrl(redisUrl)} not reachable (${why}): rate limits would be counted per process`,
    );
  } finally {
    redis.disconnect();
  }
}
