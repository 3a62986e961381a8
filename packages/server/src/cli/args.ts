import type { Clock } from '../core/clock.js';
import { createTokenService, type TokenService, type TokenServiceEvent } from '../core/token-service.js';
import type { Store } from '../store/store.js';
import { ConfigError, flagsToEnv, loadServeConfig, type ServeConfig } from './config.js';
import { openConfiguredStore } from './startup.js';

/** How a command's own flag takes its value. */
export type FlagKind = 'string' | 'boolean' | 'list';

/** A command line split into the command's own flags, its positional arguments, and `BATON_*` settings. */
export interface ParsedArgs {
  positionals: string[];
  flags: Record<string, string | true | string[]>;
  /** Settings given as flags (`--database-url …`), as `BATON_*` variables. */
  env: Record<string, string>;
}

/**
 * Parses `args` for a command with its own `spec` of flags; every other
 * `--flag` must be a `BATON_*` setting (as for `baton serve`).
 */
export function parseArgs(args: readonly string[], spec: Readonly<Record<string, FlagKind>>): ParsedArgs {
  const positionals: string[] = [];
  const flags: ParsedArgs['flags'] = {};
  const settings: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (!arg.startsWith('--')) {
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
    const kind = Object.hasOwn(spec, name) ? spec[name] : undefined;
    if (kind === undefined) {
      settings.push(arg);
      if (eq === -1 && i + 1 < args.length) settings.push(args[++i]!);
      continue;
    }
    if (kind === 'boolean') {
      if (eq !== -1) throw new ConfigError(`--${name} takes no value`);
      flags[name] = true;
      continue;
    }
    const value = eq === -1 ? args[++i] : arg.slice(eq + 1);
    if (value === undefined) throw new ConfigError(`--${name} needs a value`);
    if (kind === 'list') {
      const list = flags[name];
      flags[name] = Array.isArray(list) ? [...list, value] : [value];
    } else flags[name] = value;
  }
  return { positionals, flags, env: flagsToEnv(settings) };
}

/** A string flag's value, or undefined. */
export function stringFlag(parsed: ParsedArgs, name: string): string | undefined {
  const v = parsed.flags[name];
  return typeof v === 'string' ? v : undefined;
}

/** A list flag's values (each may itself be space- or comma-separated), or []. */
export function listFlag(parsed: ParsedArgs, name: string): string[] {
  const v = parsed.flags[name];
  return (Array.isArray(v) ? v : []).flatMap((s) => s.split(/[\s,]+/)).filter(Boolean);
}

/** Whether `--json` was given: a listing then prints one JSON document instead of a table. */
export function jsonFlag(parsed: ParsedArgs): boolean {
  return parsed.flags.json === true;
}

/** Prints one JSON document (a listing), ending in a newline. */
export function writeJson(out: Output, value: unknown): void {
  out(`${JSON.stringify(value, null, 2)}\n`);
}

/** Where a command writes its output: stdout in the CLI, a buffer in tests. */
export type Output = (text: string) => void;

/** How an admin command opens the database. */
export interface OpenOptions {
  /**
   * Apply pending migrations first (default). `baton doctor` opens the
   * database as it is: it reports pending migrations, it never applies them.
   */
  migrate?: boolean;
}

/**
 * Runs an admin command against the configured database: opens it, applies
 * pending migrations (an admin command on an older schema must not fail
 * half-way) unless told not to, runs `fn`, and closes the store whatever happens.
 */
export async function withStore<T>(
  databaseUrl: string,
  fn: (store: Store) => Promise<T>,
  options: OpenOptions = {},
): Promise<T> {
  const store = await openConfiguredStore(databaseUrl, options.migrate ?? true);
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

/**
 * Runs an admin command through core, as the server would: the same token
 * service over the configured database (not initialised: an admin command
 * creates no signing key or client behind the operator's back), so every
 * revocation goes through the same rules and reports the same events.
 */
export function withService<T>(
  config: ServeConfig,
  now: Clock,
  fn: (service: TokenService) => Promise<T>,
  onEvent?: (event: TokenServiceEvent) => void,
  options: OpenOptions = {},
): Promise<T> {
  const s = config.server;
  return withStore(
    config.databaseUrl,
    (store) =>
      fn(
        createTokenService({
          store,
          issuer: s.issuer,
          ...(s.accessTtl !== undefined ? { accessTtl: s.accessTtl } : {}),
          ...(s.refreshIdleTtl !== undefined ? { refreshIdleTtl: s.refreshIdleTtl } : {}),
          ...(s.sessionMaxTtl !== undefined ? { sessionMaxTtl: s.sessionMaxTtl } : {}),
          ...(s.reuseGrace !== undefined ? { reuseGrace: s.reuseGrace } : {}),
          ...(s.signingAlg !== undefined ? { signingAlg: s.signingAlg } : {}),
          ...(s.retention !== undefined ? { retention: s.retention } : {}),
          now,
          ...(onEvent ? { onEvent } : {}),
        }),
      ),
    options,
  );
}

/** An admin command line, parsed: its subcommand, the remaining positionals, its flags and the configuration. */
export interface AdminCommand {
  parsed: ParsedArgs;
  sub: string;
  rest: string[];
  config: ServeConfig;
}

/**
 * The common start of every admin command (`clients`, `keys`, `users`,
 * `sessions`): parse the flags, print the usage and return null for no
 * subcommand or `--help`, else read the configuration (flags win over the
 * environment).
 */
export function parseAdminCommand(
  args: readonly string[],
  spec: Readonly<Record<string, FlagKind>>,
  usage: string,
  env: Record<string, string | undefined>,
  out: Output,
): AdminCommand | null {
  if (args.includes('-h') || args.includes('--help')) {
    out(usage);
    return null;
  }
  const parsed = parseArgs(args, spec);
  const [sub, ...rest] = parsed.positionals;
  if (sub === undefined) {
    out(usage);
    return null;
  }
  return { parsed, sub, rest, config: loadServeConfig({ ...env, ...parsed.env }) };
}
