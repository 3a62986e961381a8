import { Redis } from 'ioredis';
import { createServer } from '../http/app.js';
import { openStore } from '../store/open-store.js';
import { flagsToEnv, loadServeConfig } from './config.js';

/**
 * `baton serve`: migrate the database, then serve until SIGINT/SIGTERM,
 * finishing in-flight requests before closing the store.
 */
export async function serve(args: readonly string[], env: NodeJS.ProcessEnv): Promise<void> {
  const config = loadServeConfig({ ...env, ...flagsToEnv(args) });
  for (const w of config.warnings) process.stderr.write(`baton: warning: ${w}\n`);
  const store = await openStore(
    config.databaseUrl,
    config.pgPoolSize === undefined ? {} : { pgPoolSize: config.pgPoolSize },
  );
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
    process.stdout.write(`Baton: ${signal} received, finishing in-flight requests\n`);
    await app.close();
    redis?.disconnect();
    await store.close();
    process.exit(0);
  };
  process.once('SIGINT', () => void shutdown('SIGINT'));
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
}
