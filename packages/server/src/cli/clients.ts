import { BatonError } from '../core/errors.js';
import { DEFAULT_CLIENT_ID } from '../core/token-service.js';
import type { ClientRecord } from '../store/store.js';
import {
  jsonFlag,
  listFlag,
  type Output,
  parseAdminCommand,
  stringFlag,
  withService,
  writeJson,
} from './args.js';
import { ConfigError, parseDuration } from './config.js';

const USAGE = `Usage: baton clients <create|list|delete> [...]

  create [--id ID] [--name NAME] [--type confidential|public]
         [--scope "a b"]... [--origin https://app.example]... [--audience URI]
         [--access-ttl 5m] [--refresh-idle-ttl 14d] [--session-max-ttl 30d]
         Creates a client. A confidential client's secret is printed once, here,
         and stored only as a hash.
  list [--json]
         Lists the clients (never their secrets nor their hashes).
  delete ID
         Deletes a client and revokes every session it has.

Every command also takes --database-url (BATON_DATABASE_URL).
`;

const SPEC = {
  id: 'string',
  name: 'string',
  type: 'string',
  scope: 'list',
  origin: 'list',
  audience: 'string',
  'access-ttl': 'string',
  'refresh-idle-ttl': 'string',
  'session-max-ttl': 'string',
  help: 'boolean',
  json: 'boolean',
} as const;

const seconds = (ms: number | null) => (ms === null ? 'default' : `${Math.round(ms / 1000)}s`);

function describe(c: ClientRecord): string {
  const lines = [
    `${c.id}  ${c.type}  "${c.name}"  created ${new Date(c.createdAt).toISOString()}`,
    `  scopes: ${c.allowedScopes.join(' ') || '(none)'}`,
    `  origins: ${c.allowedOrigins.join(' ') || '(server default)'}`,
    `  audience: ${c.audience ?? '(issuer)'}`,
    `  ttl: access ${seconds(c.accessTtl)}, refresh idle ${seconds(c.refreshIdleTtl)}, session max ${seconds(c.sessionMaxTtl)}`,
  ];
  return `${lines.join('\n')}\n`;
}

const secondsOrNull = (ms: number | null) => (ms === null ? null : Math.round(ms / 1000));

/** A client as `clients list --json` shows it: named fields only, so no secret hash can slip in. */
function toJson(c: ClientRecord): Record<string, unknown> {
  return {
    id: c.id,
    name: c.name,
    type: c.type,
    allowed_scopes: c.allowedScopes,
    allowed_origins: c.allowedOrigins,
    audience: c.audience,
    access_ttl_s: secondsOrNull(c.accessTtl),
    refresh_idle_ttl_s: secondsOrNull(c.refreshIdleTtl),
    session_max_ttl_s: secondsOrNull(c.sessionMaxTtl),
    created_at: new Date(c.createdAt).toISOString(),
  };
}

/**
 * `baton clients create|list|delete`: manages the stored OAuth clients.
 * @see RFC 6749 §2 (client registration, types, credentials)
 */
export async function runClients(
  args: readonly string[],
  env: Record<string, string | undefined>,
  out: Output,
  now: () => number = Date.now,
): Promise<void> {
  const command = parseAdminCommand(args, SPEC, USAGE, env, out);
  if (!command) return;
  const { parsed, sub, rest, config } = command;
  return withService(config, now, async (service) => {
    if (sub === 'create') {
      if (rest.length > 0) throw new ConfigError(`Unexpected argument "${rest[0]}"`);
      const type = stringFlag(parsed, 'type') ?? 'confidential';
      if (type !== 'public' && type !== 'confidential')
        throw new ConfigError('--type: expected confidential or public');
      const ttl = (flag: string) => {
        const text = stringFlag(parsed, flag);
        return text === undefined ? null : parseDuration(text, `--${flag}`);
      };
      const id = stringFlag(parsed, 'id');
      const name = stringFlag(parsed, 'name');
      const { client, secret } = await service.clients.create({
        ...(id !== undefined ? { id } : {}),
        ...(name !== undefined ? { name } : {}),
        type,
        allowedScopes: listFlag(parsed, 'scope'),
        allowedOrigins: listFlag(parsed, 'origin'),
        audience: stringFlag(parsed, 'audience') ?? null,
        accessTtl: ttl('access-ttl'),
        refreshIdleTtl: ttl('refresh-idle-ttl'),
        sessionMaxTtl: ttl('session-max-ttl'),
      });
      out(`Created ${client.type} client\n`);
      out(`client_id: ${client.id}\n`);
      if (secret !== null) {
        // The one and only time the secret is shown: only its hash is stored.
        out(`client_secret: ${secret}\n`);
        out('Store the secret now: it cannot be shown again.\n');
      }
      return;
    }
    if (sub === 'list') {
      if (rest.length > 0) throw new ConfigError(`Unexpected argument "${rest[0]}"`);
      const list = await service.clients.list();
      if (jsonFlag(parsed)) {
        writeJson(out, { clients: list.map(toJson) });
        return;
      }
      for (const c of list) out(describe(c));
      return;
    }
    if (sub === 'delete') {
      const [id, ...extra] = rest;
      if (id === undefined || extra.length > 0) throw new ConfigError('Usage: baton clients delete ID');
      if (id === DEFAULT_CLIENT_ID)
        throw new ConfigError(
          `The default client "${DEFAULT_CLIENT_ID}" cannot be deleted (it is recreated on start)`,
        );
      if (!(await service.clients.delete(id))) throw new BatonError('not_found', 'No client with this id');
      out(`Deleted client ${id}; its sessions are revoked\n`);
      return;
    }
    throw new ConfigError(`Unknown clients command "${sub}"\n\n${USAGE}`);
  });
}

/** The `baton clients` command, writing to stdout. */
export function clients(args: readonly string[], env: NodeJS.ProcessEnv): Promise<void> {
  return runClients(args, env, (text) => process.stdout.write(text));
}
