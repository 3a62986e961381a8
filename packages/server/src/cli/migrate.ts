import { flagsToEnv, loadServeConfig } from './config.js';
import { databaseError, openConfiguredStore } from './startup.js';

/** `baton migrate`: apply pending schema steps and exit. */
export async function migrate(args: readonly string[], env: NodeJS.ProcessEnv): Promise<void> {
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
