import type { SecurityEventQuery, SecurityEventRecord, SecurityEventType } from '../store/store.js';
import { type Output, parseArgs, stringFlag, withService } from './args.js';
import { ConfigError, loadServeConfig, parseDuration } from './config.js';

const TYPES: readonly SecurityEventType[] = [
  'login_succeeded',
  'login_failed',
  'refresh_token_reuse',
  'session_revoked',
  'password_changed',
  'user_disabled',
  'user_enabled',
  'signing_key_rotated',
  'signing_key_retired',
  'client_created',
  'client_deleted',
];

const USAGE = `Usage: baton events [--user USER] [--type TYPE] [--since DURATION|ISO] [--limit N] [--json]

Lists security events, newest first.
  --user USER     only this user's (by email or id)
  --type TYPE     only one type: ${TYPES.join(', ')}
  --since WHEN    only events at or after WHEN: a duration back from now (15m, 24h, 7d) or an ISO time
  --limit N       at most N (1-10000, default 100)
  --json          one JSON object per line

Events are kept for BATON_RETENTION_EVENTS (default 90d). Also takes --database-url.
`;

const SPEC = {
  user: 'string',
  type: 'string',
  since: 'string',
  limit: 'string',
  json: 'boolean',
  help: 'boolean',
} as const;

/** `--since`: a duration back from `t`, or an ISO 8601 time. */
function parseSince(text: string, t: number): number {
  if (/^\d{4}-\d{2}-\d{2}/.test(text)) {
    const at = Date.parse(text);
    if (Number.isNaN(at)) throw new ConfigError(`--since: "${text}" is not an ISO time`);
    return at;
  }
  return t - parseDuration(text, '--since');
}

const line = (e: SecurityEventRecord) =>
  [
    new Date(e.at).toISOString(),
    e.type.padEnd(20),
    (e.userId ?? '-').padEnd(27),
    (e.sessionId ?? '-').padEnd(27),
    (e.clientId ?? '-').padEnd(12),
    (e.ip ?? '-').padEnd(15),
    e.detail ? JSON.stringify(e.detail) : '',
  ].join(' ');

/** `baton events`: the audit trail, through core. */
export async function runEvents(
  args: readonly string[],
  env: Record<string, string | undefined>,
  out: Output,
  now: () => number = Date.now,
): Promise<void> {
  if (args.includes('-h') || args.includes('--help')) {
    out(USAGE);
    return;
  }
  const parsed = parseArgs(args, SPEC);
  if (parsed.positionals.length > 0) throw new ConfigError(`Unexpected argument "${parsed.positionals[0]}"`);
  const query: SecurityEventQuery = {};
  const type = stringFlag(parsed, 'type');
  if (type !== undefined) {
    if (!TYPES.includes(type as SecurityEventType))
      throw new ConfigError(`--type: expected one of ${TYPES.join(', ')}`);
    query.type = type as SecurityEventType;
  }
  const since = stringFlag(parsed, 'since');
  if (since !== undefined) query.since = parseSince(since, now());
  const limitText = stringFlag(parsed, 'limit') ?? '100';
  const limit = Number(limitText);
  if (!/^\d+$/.test(limitText) || limit < 1 || limit > 10_000)
    throw new ConfigError('--limit: expected an integer from 1 to 10000');
  query.limit = limit;
  const config = loadServeConfig({ ...env, ...parsed.env });
  const json = parsed.flags.json === true;
  await withService(config, now, async (service) => {
    const user = stringFlag(parsed, 'user');
    if (user !== undefined) query.userId = (await service.findUser(user)).id;
    const events = await service.listSecurityEvents(query);
    if (json) {
      for (const e of events) out(`${JSON.stringify(e)}\n`);
      return;
    }
    out(
      'at                       type                 user                        session                     client       ip              detail\n',
    );
    for (const e of events) out(`${line(e)}\n`);
  });
}

/** The `baton events` command, writing to stdout. */
export function events(args: readonly string[], env: NodeJS.ProcessEnv): Promise<void> {
  return runEvents(args, env, (text) => process.stdout.write(text));
}
