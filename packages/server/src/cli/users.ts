import { BatonError } from '../core/errors.js';
import { normalizeEmail } from '../core/token-service.js';
import type { Store, UserRecord } from '../store/store.js';
import { type Output, parseAdminCommand, stringFlag, withStore } from './args.js';
import { ConfigError } from './config.js';

const USAGE = `Usage: baton users <list|disable|enable> [...]

  list [--limit N]     Lists accounts (id, email, created, disabled).
  disable USER         Disables an account (by email or id) and revokes every
                       session of it at once; its logins then fail like a
                       wrong password.
  enable USER          Re-enables a disabled account (its old sessions stay revoked).

Every command also takes --database-url (as BATON_DATABASE_URL).
`;

const SPEC = { limit: 'string', help: 'boolean' } as const;

const iso = (ms: number | null) => (ms === null ? '-' : new Date(ms).toISOString());

/** Finds a user by id (`usr_…`) or email; `not_found` otherwise. */
export async function findUser(store: Store, ref: string): Promise<UserRecord> {
  const user = ref.startsWith('usr_')
    ? await store.findUserById(ref)
    : await store.findUserByEmail(normalizeEmail(ref));
  if (!user) throw new BatonError('not_found', 'No such user');
  return user;
}

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
): Promise<void> {
  const command = parseAdminCommand(args, SPEC, USAGE, env, out);
  if (!command) return;
  const { parsed, sub, rest, config } = command;
  return withStore(config.databaseUrl, async (store) => {
    if (sub === 'list') {
      if (rest.length > 0) throw new ConfigError(`Unexpected argument "${rest[0]}"`);
      const limitText = stringFlag(parsed, 'limit') ?? '1000';
      const limit = Number(limitText);
      if (!Number.isInteger(limit) || limit < 1)
        throw new ConfigError('--limit: expected a positive integer');
      out(
        'id                          email                                    created                   disabled\n',
      );
      for (const u of await store.listUsers({ limit })) {
        out(`${u.id.padEnd(27)} ${u.email.padEnd(40)} ${iso(u.createdAt).padEnd(25)} ${iso(u.disabledAt)}\n`);
      }
      return;
    }
    if (sub === 'disable' || sub === 'enable') {
      const [ref, ...extra] = rest;
      if (ref === undefined || extra.length > 0) throw new ConfigError(`Usage: baton users ${sub} USER`);
      const user = await findUser(store, ref);
      await store.setUserDisabled({ userId: user.id, disabled: sub === 'disable', now: now() });
      out(
        sub === 'disable'
          ? `Disabled ${user.email} (${user.id}); every session of it is revoked\n`
          : `Enabled ${user.email} (${user.id})\n`,
      );
      return;
    }
    throw new ConfigError(`Unknown users command "${sub}"\n\n${USAGE}`);
  });
}

/** The `baton users` command, writing to stdout. */
export function users(args: readonly string[], env: NodeJS.ProcessEnv): Promise<void> {
  return runUsers(args, env, (text) => process.stdout.write(text));
}
