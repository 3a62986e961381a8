import { JWKS_MAX_AGE_SECONDS, KEY_CHECK_INTERVAL_MS, publishedUntil } from '../core/signing-keys.js';
import { jsonFlag, type Output, parseAdminCommand, stringFlag, withService, writeJson } from './args.js';
import { ConfigError, parseDuration } from './config.js';

const USAGE = `Usage: baton keys <list|rotate|retire> [...]

  list [--json]
          Lists the signing keys and their state (pending, signing, standby,
          retired, expired).
  rotate [--activate-in DURATION | --now]
          Adds a new key, published at once and signing after DURATION
          (default: the JWKS cache lifetime plus BATON_KEY_POLL_INTERVAL, so
          every verifier has it before it signs). Older keys retire when it
          takes over and stay published until their tokens have expired.
          --now signs with it at once (emergencies): running servers sign
          with it, and no more with the old keys, within about a second.
  retire KID
          Retires a key now; refused unless another active key takes over.
          Running servers stop signing with it within about a second.

Every command also takes --database-url, --access-ttl and --key-poll-interval
(as BATON_*): use the same values as the running servers.
`;

const SPEC = { now: 'boolean', 'activate-in': 'string', help: 'boolean', json: 'boolean' } as const;

const switchNotice = `Running servers stop signing with the retired key(s) within about ${KEY_CHECK_INTERVAL_MS / 1000} s\n`;

const iso = (ms: number | null) => (ms === null ? '-' : new Date(ms).toISOString());

/**
 * `baton keys list|rotate|retire`: signing-key rotation without downtime.
 * Running servers re-read the keys every KEY_CHECK_INTERVAL_MS (1 s), so a
 * retirement stops signing everywhere within about a second.
 * @see RFC 7517 §5, RFC 8725 §3.5
 */
export async function runKeys(
  args: readonly string[],
  env: Record<string, string | undefined>,
  out: Output,
  now: () => number = Date.now,
): Promise<void> {
  const command = parseAdminCommand(args, SPEC, USAGE, env, out);
  if (!command) return;
  const { parsed, sub, rest, config } = command;
  return withService(config, now, async ({ signingKeys }) => {
    const t = now();
    const lifetime = await signingKeys.maxTokenLifetime();
    const prune = async () => {
      const deleted = await signingKeys.prune(t, lifetime);
      if (deleted > 0) out(`Deleted ${deleted} expired key(s): every token they signed has expired\n`);
    };

    if (sub === 'list') {
      if (rest.length > 0) throw new ConfigError(`Unexpected argument "${rest[0]}"`);
      const list = await signingKeys.list(t, lifetime);
      if (jsonFlag(parsed)) {
        // The public facts only: never key material.
        writeJson(out, {
          keys: list.map((k) => ({
            kid: k.kid,
            alg: k.alg,
            state: k.state,
            activates_at: k.activatesAt === null ? null : iso(k.activatesAt),
            retired_at: k.retiredAt === null ? null : iso(k.retiredAt),
          })),
        });
        return;
      }
      out('kid                                          alg    state    activates                 retires\n');
      for (const k of list) {
        out(
          `${k.kid.padEnd(44)} ${k.alg.padEnd(6)} ${k.state.padEnd(8)} ${iso(k.activatesAt).padEnd(25)} ${iso(k.retiredAt)}\n`,
        );
      }
      return;
    }

    if (sub === 'rotate') {
      if (rest.length > 0) throw new ConfigError(`Unexpected argument "${rest[0]}"`);
      const activateInText = stringFlag(parsed, 'activate-in');
      if (parsed.flags.now === true && activateInText !== undefined)
        throw new ConfigError('Use either --now or --activate-in');
      const hasKeys = await signingKeys.hasKeys();
      // Verifiers may hold a JWKS fetched just before the slowest instance reloaded: wait out both.
      const propagation = JWKS_MAX_AGE_SECONDS * 1000 + (config.server.keyPollInterval ?? 60_000);
      const activateIn =
        parsed.flags.now === true || !hasKeys
          ? 0
          : activateInText !== undefined
            ? parseDuration(activateInText, '--activate-in')
            : propagation;
      const { key, retiring } = await signingKeys.rotate(t, activateIn);
      out(`Added key ${key.kid} (${key.alg}); it signs from ${iso(key.activatesAt)}\n`);
      for (const kid of retiring) out(`Key ${kid} retires at ${iso(key.activatesAt)}\n`);
      if (activateIn === 0 && retiring.length > 0) out(switchNotice);
      if (activateIn > 0 && activateIn < propagation)
        out(
          `Warning: verifiers may cache the JWKS for up to ${Math.round(propagation / 1000)} s; tokens from the new key may be refused until they refetch\n`,
        );
      await prune();
      return;
    }

    if (sub === 'retire') {
      const [kid, ...extra] = rest;
      if (kid === undefined || extra.length > 0) throw new ConfigError('Usage: baton keys retire KID');
      const retired = await signingKeys.retire(kid, t);
      out(
        `Retired key ${kid}: it signs no more and stays published until ${iso(publishedUntil(retired, lifetime))}\n`,
      );
      out(switchNotice);
      await prune();
      return;
    }
    throw new ConfigError(`Unknown keys command "${sub}"\n\n${USAGE}`);
  });
}

/** The `baton keys` command, writing to stdout. */
export function keys(args: readonly string[], env: NodeJS.ProcessEnv): Promise<void> {
  return runKeys(args, env, (text) => process.stdout.write(text));
}
