import { Redis } from 'ioredis';
import { createServer } from '../http/app.js';
import { openStore } from '../store/open-store.js';
import { flagsToEnv, loadServeConfig } from './config.js';

/**
 * `baton serve`: migrate the database, then serve until SIGINT/SIGTERM:
 * stop accepting, finish in-flight requests within BATON_SHUTDOWN_TIMEOUT
 * (then cut them), close the store and exit 0.
 */
export async function serve(args: readonly string[], env: NodeJS.ProcessEnv): Promise<void> {
  const config = loadServeConfig({ ...env, ...flagsToEnv(args) });
  for (const w of config.warnings) process.stderr.write(`baton: warning: ${w}\n`);
  const store = await openStore(config.databaseUrl);
  await store.migrate();
  const redis = config.redisUrl
    ? new Redis(config.redisUrl, { maxRetriesPerRequest: 1, enableOfflineQueue: false })
    : undefined;
  redis?.on('error', () => {
    // Limits fall back to per-process counting while Redis is away; ioredis reconnects by itself.
  });
  const app = await createServer({ ...config.server, store, ...(redis ? { redis } : {}) });
  const address = await app.listen({ port: config.port, host: config.host });
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
