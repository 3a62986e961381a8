import { flagsToEnv, loadServeConfig } from './config.js';
import { wantsHelp } from './serve.js';
import { databaseError, openConfiguredStore } from './startup.js';

const USAGE = `Usage: baton migrate [--database-url URL]\n\nApplies pending database migrations (BATON_DATABASE_URL) and exits.\n`;

/** `baton migrate`: apply pending schema steps and exit. */
export async function migrate(args: readonly string[], env: NodeJS.ProcessEnv): Promise<void> {
  if (wantsHelp(args)) {
    process.stdout.write(USAGE);
    return;
  }
  const config = loadServeConfig({ ...env, ...flagsToEnv(args) });
  const store = await openConfiguredStore(config.databaseUrl, false);
  try {
    const applied = await store.migrate().catch((err: unknown) => {
      throw databaseError(err, config.databaseUrl);
    });
    process.stdout.write(applied === 0 ? 'Database is up to date\n' : `Applied ${applied} migration(s)\n`);
  } finally {
    await store.close();
  }
}
