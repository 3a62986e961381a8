import { type Output, parseArgs, withService, writeJson } from './args.js';
import { ConfigError, loadServeConfig, type ServeConfig } from './config.js';
import {
  type CheckResult,
  checkClock,
  checkConfiguration,
  checkDatabase,
  checkIssuer,
  checkMetrics,
  checkRedis,
  checkSigningKeys,
} from './doctor-checks.js';

const USAGE = `Usage: baton doctor [--json] [--database-url URL ...]

Checks the configuration and what it names, one line each (ok, warn, fail):
the settings (and which differ from their defaults), the database (reachable,
migrations pending: counted, never applied), Redis when configured, the signing
keys, this machine's clock against the database's, the issuer, and whether
/metrics is protected. Takes the same settings as baton serve (BATON_* or flags).

  --json   print one JSON document instead

Exit status: 0 when every check is ok or warn, 1 when one fails.
`;

const SPEC = { json: 'boolean', help: 'boolean' } as const;

/** Every check, in the order they print; the ones after the database need it. */
async function runChecks(
  config: ServeConfig,
  env: Record<string, string | undefined>,
  now: () => number,
): Promise<CheckResult[]> {
  const results = [
    ...checkConfiguration(config, env),
    checkIssuer(config.server.issuer),
    checkMetrics(config),
  ];
  try {
    // As it is: doctor reports pending migrations and applies none.
    await withService(
      config,
      now,
      async (service) => {
        const db = await checkDatabase(service, dialectOf(config.databaseUrl));
        results.push(...db.results, checkClock(db.databaseTime, db.localTime));
        if (!db.migrated) {
          results.push({
            check: 'signing keys',
            status: 'warn',
            message: 'not checked until the database is migrated',
          });
        } else results.push(await checkSigningKeys(service, now()));
      },
      undefined,
      { migrate: false },
    );
  } catch (err) {
    // The message names BATON_DATABASE_URL with its password masked (startup.ts databaseError).
    results.push({
      check: 'database',
      status: 'fail',
      message: err instanceof Error ? err.message.replace(/\n\s*/g, ' ') : String(err),
    });
  }
  const redis = await checkRedis(config.redisUrl);
  if (redis) results.push(redis);
  return results;
}

const dialectOf = (url: string) => (url.startsWith('sqlite:') ? 'sqlite' : 'postgres');

/**
 * `baton doctor`: checks a deployment's configuration and the services it
 * names, and reports in plain words. Returns the exit status.
 */
export async function runDoctor(
  args: readonly string[],
  env: Record<string, string | undefined>,
  out: Output,
  now: () => number = Date.now,
): Promise<number> {
  if (args.includes('-h') || args.includes('--help')) {
    out(USAGE);
    return 0;
  }
  const parsed = parseArgs(args, SPEC);
  if (parsed.positionals.length > 0) throw new ConfigError(`Unexpected argument "${parsed.positionals[0]}"`);
  const merged = { ...env, ...parsed.env };
  let results: CheckResult[];
  try {
    results = await runChecks(loadServeConfig(merged), merged, now);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    // A setting that does not parse: nothing else can be checked against it.
    results = [{ check: 'configuration', status: 'fail', message: err.message }];
  }
  const failed = results.some((r) => r.status === 'fail');
  if (parsed.flags.json === true) writeJson(out, { ok: !failed, checks: results });
  else for (const r of results) out(`${r.status.padEnd(4)}  ${r.check}: ${r.message}\n`);
  return failed ? 1 : 0;
}

/** The `baton doctor` command. */
export async function doctor(args: readonly string[], env: NodeJS.ProcessEnv): Promise<void> {
  process.exitCode = await runDoctor(args, env, (text) => process.stdout.write(text));
}
