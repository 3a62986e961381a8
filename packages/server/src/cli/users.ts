import type { TokenServiceEvent } from '../core/token-service.js';
import { jsonFlag, type Output, parseAdminCommand, stringFlag, withService, writeJson } from './args.js';
import { ConfigError } from './config.js';

const USAGE = `Usage: baton users <list|disable|enable> [...]

  list [--limit N] [--json]
                       Lists accounts (id, email, created, disabled); never a hash.
  disable USER         Disables an account (by email or id) and revokes every
                       session of it at once; its logins then fail like a
                       wrong password.
  enable USER          Re-enables a disabled account (its old sessions stay revoked).

Every command also takes --database-url (as BATON_DATABASE_URL).
`;

const SPEC = { limit: 'string', help: 'boolean', json: 'boolean' } as const;

const iso = (ms: number | null) => (ms === null ? '-' : new Date(ms).toISOString());

/**
 * `baton users list|disable|enable`: account administration. Disabling is
 * the operator's kill switch for an account (SECURITY.md 15): every refresh
 * token of the user fails from that moment.
 */
export async function runUsers(
  args: readonly string[],
  env: Record<string, string | undefined>,
  out: Output,
  now: () => number = Date.now,
  onEvent?: (event: TokenServiceEvent) => void,
): Promise<void> {
  const command = parseAdminCommand(args, SPEC, USAGE, env, out);
  if (!command) return;
  const { parsed, sub, rest, config } = command;
  return withService(
    config,
    now,
    async (service) => {
      if (sub === 'list') {
        if (rest.length > 0) throw new ConfigError(`Unexpected argument "${rest[0]}"`);
        const limitText = stringFlag(parsed, 'limit') ?? '1000';
        const limit = Number(limitText);
        if (!Number.isInteger(limit) || limit < 1)
          throw new ConfigError('--limit: expected a positive integer');
        const list = await service.listUsers({ limit });
        if (jsonFlag(parsed)) {
          writeJson(out, {
            users: list.map((u) => ({
              id: u.id,
              email: u.email,
              created_at: iso(u.createdAt),
              disabled_at: u.disabledAt === null ? null : iso(u.disabledAt),
            })),
          });
          return;
        }
        out(
          'id                          email                                    created                   disabled\n',
        );
        for (const u of list) {
          out(
            `${u.id.padEnd(27)} ${u.email.padEnd(40)} ${iso(u.createdAt).padEnd(25)} ${iso(u.disabledAt)}\n`,
          );
        }
        return;
      }
      if (sub === 'disable' || sub === 'enable') {
        const [ref, ...extra] = rest;
        if (ref === undefined || extra.length > 0) throw new ConfigError(`Usage: baton users ${sub} USER`);
        const user = await service.findUser(ref);
        await (sub === 'disable' ? service.disableUser(user.id) : service.enableUser(user.id));
        out(
          sub === 'disable'
            ? `Disabled ${user.email} (${user.id}); every session of it is revoked\n`
            : `Enabled ${user.email} (${user.id})\n`,
        );
        return;
      }
      throw new ConfigError(`Unknown users command "${sub}"\n\n${USAGE}`);
    },
    onEvent,
  );
}

/** The `baton users` command, writing to stdout. */
export function users(args: readonly string[], env: NodeJS.ProcessEnv): Promise<void> {
  return runUsers(args, env, (text) => process.stdout.write(text));
}
