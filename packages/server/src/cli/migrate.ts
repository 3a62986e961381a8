import { openStore } from '../store/open-store.js';
import { flagsToEnv, loadServeConfig } from './config.js';

/** `baton migrate`: apply pending schema steps and exit. */
export async function migrate(args: readonly string[], env: NodeJS.ProcessEnv): Promise<void> {
  const config = loadServeConfig({ ...env, ...flagsToEnv(args) });
  const store = await openStore(config.databaseUrl);
  try {
    const applied = await store.migrate();
    process.stdout.write(applied === 0 ? 'Database is up to date\n' : `Applied ${applied} migration(s)\n`);
  } finally {
    await store.close();
  }
}
