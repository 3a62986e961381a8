#!/usr/bin/env node
import { clients } from './clients.js';
import { ConfigError } from './config.js';
import { events } from './events.js';
import { keys } from './keys.js';
import { migrate } from './migrate.js';
import { prune } from './prune.js';
import { serve } from './serve.js';
import { sessions } from './sessions.js';
import { users } from './users.js';

const USAGE = `Usage: baton <command> [--flag value ...]

Commands:
  serve     run the token service (flags mirror BATON_* variables: --port, --database-url, --access-ttl ...)
  migrate   apply pending database migrations
  clients   create|list|delete OAuth clients (baton clients --help)
  keys      list|rotate|retire signing keys (baton keys --help)
  users     list|disable|enable accounts (baton users --help)
  sessions  list|revoke|revoke-all a user's sessions (baton sessions --help)
  prune     delete what is past its retention, [--dry-run] [--json] (baton prune --help)
  events    list security events, [--user U] [--type T] [--since 24h] (baton events --help)

Configuration: see the README's table of BATON_* environment variables.
`;

const commands: Record<string, (args: readonly string[], env: NodeJS.ProcessEnv) => Promise<void>> = {
  serve,
  migrate,
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
  const command = commands[name];
  if (!command) {
    process.stderr.write(`baton: unknown command "${name}"\n\n${USAGE}`);
    process.exitCode = 2;
    return;
  }
  await command(rest, process.env);
}

main(process.argv.slice(2)).catch((err: unknown) => {
  if (err instanceof ConfigError || err instanceof TypeError) {
    process.stderr.write(`baton: ${err.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`baton: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
