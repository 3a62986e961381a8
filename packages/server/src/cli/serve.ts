import { Redis } from 'ioredis';
import { createServer } from '../http/app.js';
import { flagsToEnv, loadServeConfig } from './config.js';
import { AUTOVACUUM_OFF } from './doctor-checks.js';
import { settingsHelp } from './settings.js';
import { listenError, openConfiguredStore, redactUrl } from './startup.js';

const SERVE_USAGE = `Usage: baton serve [--flag value ...]

Runs the token service: applies pending migrations, then serves until
SIGINT/SIGTERM. Every flag mirrors a BATON_* variable (the flag wins):

${settingsHelp()}
See docs/configuration.md for examples and which values are secret.
`;

/** Whether a command line asks for help (`--help` or `-h`) instead of running. */
export function wantsHelp(args: readonly string[]): boolean {
  return args.includes('--help') || args.includes('-h');
}

/**
 * `baton serve`: migrate the database, then serve until SIGINT/SIGTERM:
 * stop accepting, finish in-flight requests within BATON_SHUTDOWN_TIMEOUT
 * (then cut them), close the store and exit 0.
 */
export async function serve(args: readonly string[], env: NodeJS.ProcessEnv): Promise<void> {
  if (wantsHelp(args)) {
    process.stdout.write(SERVE_USAGE);
    return;
  }
  const config = loadServeConfig({ ...env, ...flagsToEnv(args) });
  for (const w of config.warnings) process.stderr.write(`baton: warning: ${w}\n`);
  const store = await openConfiguredStore(
    config.databaseUrl,
    true,
    config.pgPoolSize === undefined ? {} : { pgPoolSize: config.pgPoolSize },
  );
  // Said at every start, not only by `baton doctor`: the PostgreSQL figures depend on it.
  const inspection = await store.inspect().catch(() => null);
  if (inspection?.autovacuum === false) process.stderr.write(`baton: warning: ${AUTOVACUUM_OFF}\n`);
  const redis = config.redisUrl
    ? new Redis(config.redisUrl, { maxRetriesPerRequest: 1, enableOfflineQueue: false })
    : undefined;
  redis?.on('error', () => {
    // Limits fall back to per-process counting while Redis is away; ioredis reconnects by itself.
  });
  if (redis && config.redisUrl) {
    const why = await firstConnection(redis);
    if (why !== null)
      process.stderr.write(
        `baton: warning: BATON_REDIS_URL (${redactUrl(config.redisUrl)}): ${why}; starting anyway, with rate limits counted per process until it answers\n`,
      );
  }
  const app = await createServer({ ...config.server, store, ...(redis ? { redis } : {}) });
  const address = await app.listen({ port: config.port, host: config.host }).catch(async (err: unknown) => {
    await app.close();
    redis?.disconnect();
    await store.close();
    throw listenError(err, config.host, config.port);
  });
  process.stdout.write(`Baton listening on ${address} (issuer ${config.server.issuer}, ${store.dialect})\n`);
  process.stdout.write(`Demo page: ${new URL('/', config.server.issuer).href}\n`);

  let closing = false;
  const shutdown = async (signal: string) => {
    if (closing) return;
    closing = true;
    process.stdout.write(
      `Baton: ${signal} received, finishing in-flight requests (at most ${config.shutdownTimeout} ms)\n`,
    );
    // Past the deadline, whatever is still open is cut: a stuck client must not hold the exit.
    const deadline = setTimeout(() => app.server.closeAllConnections(), config.shutdownTimeout);
    deadline.unref();
    // close() stops accepting, ends idle keep-alive connections at once, answers what is
    // in flight with `Connection: close` (see app.ts), then runs the onClose hooks.
    const closed = app.close();
    app.server.closeIdleConnections();
    await closed;
    clearTimeout(deadline);
    redis?.disconnect();
    await store.close();
    process.exit(0);
  };
  process.once('SIGINT', () => void shutdown('SIGINT'));
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
}

/** Null once Redis answers, or why it did not within a few seconds (the server starts either way). */
function firstConnection(redis: Redis): Promise<string | null> {
  if (redis.status === 'ready') return Promise.resolve(null);
  return new Promise((resolve) => {
    const done = (why: string | null) => {
      clearTimeout(timer);
      redis.off('ready', onReady);
      redis.off('error', onError);
      resolve(why);
    };
    const onReady = () => done(null);
    const onError = (err: Error) => done(`not reachable (${err.message || 'connection error'})`);
    const timer = setTimeout(() => done('no answer within 3 s'), 3000);
    redis.once('ready', onReady);
    redis.once('error', onError);
  });
}
