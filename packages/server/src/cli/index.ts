#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { clients } from './clients.js';
import { ConfigError } from './config.js';
import { doctor } from './doctor.js';
import { events } from './events.js';
import { keys } from './keys.js';
import { migrate } from './migrate.js';
import { prune } from './prune.js';
import { serve } from './serve.js';
import { sessions } from './sessions.js';
import { users } from './users.js';

const USAGE = `Usage: baton <command> [--flag value ...]
       baton --version

Commands:
  serve     run the token service (flags mirror BATON_* variables: --port, --database-url, --access-ttl ...)
  migrate   apply pending database migrations
  doctor    check the configuration, database, Redis, keys and clock (baton doctor --help)
  clients   create|list|delete OAuth clients (baton clients --help)
  keys      list|rotate|retire signing keys (baton keys --help)
  users     list|disable|enable accounts (baton users --help)
  sessions  list|revoke|revoke-all a user's sessions (baton sessions --help)
  prune     delete what is past its retention, [--dry-run] [--json] (baton prune --help)
  events    list security events, [--user U] [--type T] [--since 24h] (baton events --help)

Every command takes --help (-h). Listings take --json.
Configuration: baton serve --help, and docs/configuration.md.
`;

/**
 * This package's version, read at run time from the package.json beside the
 * build (dist/cli/ → ../../), so it is right in the repository and once installed.
 */
function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

const commands: Record<string, (args: readonly string[], env: NodeJS.ProcessEnv) => Promise<void>> = {
  serve,
  migrate,
  doctor,
  clients,
  keys,
  users,
  sessions,
  prune,
  events,
};

async function main(argv: readonly string[]): Promise<void> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(USAGE);
    return;
  }
  if (name === '--version' || name === '-v') {
    process.stdout.write(`${version()}\n`);
    return;
  }
  const command = Object.hasOwn(commands, name) ? commands[name] : undefined;
  if (!command) {
    process.stderr.write(`baton: unknown command "${name}"\n\n${USAGE}`);
    process.exitCode = 2;
    return;
  }
  await command(rest, process.env);
}

main(process.argv.slice(2)).catch((err: unknown) => {
  // Expected failures print their message only; a stack trace would bury what to do.
  if (err instanceof ConfigError || err instanceof TypeError) {
    process.stderr.write(`baton: ${err.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`baton: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
