import { BatonError } from '../core/errors.js';
import { SESSION_PAGE } from '../core/sessions.js';
import type { TokenServiceEvent } from '../core/token-service.js';
import { jsonFlag, type Output, parseAdminCommand, withService, writeJson } from './args.js';
import { ConfigError } from './config.js';

const USAGE = `Usage: baton sessions <list|revoke|revoke-all> [...]

  list USER [--json]   Lists the live sessions of a user (by email or id).
  revoke SESSION_ID    Revokes one session: its refresh tokens fail at once,
                       and Baton's own routes refuse its access tokens.
  revoke-all USER      Revokes every session of a user.

Access tokens that resource servers verify offline stay valid until they
expire (BATON_ACCESS_TTL), unless those servers check the session.
Every command also takes --database-url (as BATON_DATABASE_URL).
`;

const SPEC = { help: 'boolean', json: 'boolean' } as const;

const iso = (ms: number) => new Date(ms).toISOString();

/** `baton sessions list|revoke|revoke-all`: session administration for operators. */
export async function runSessions(
  args: readonly string[],
  env: Record<string, string | undefined>,
  out: Output,
  now: () => number = Date.now,
  onEvent?: (event: TokenServiceEvent) => void,
): Promise<void> {
  const command = parseAdminCommand(args, SPEC, USAGE, env, out);
  if (!command) return;
  const { parsed, sub, rest, config } = command;
  const [ref, ...extra] = rest;
  if (ref === undefined || extra.length > 0)
    throw new ConfigError(`Usage: baton sessions ${sub} ${sub === 'revoke' ? 'SESSION_ID' : 'USER'}`);
  return withService(
    config,
    now,
    async (service) => {
      if (sub === 'list') {
        const user = await service.findUser(ref);
        const json = jsonFlag(parsed);
        const rows: Record<string, unknown>[] = [];
        if (!json)
          out(
            'id                          client           created                   last used                 ip\n',
          );
        // Page by page, so a user with very many sessions is never read in one go.
        let cursor: string | null | undefined;
        do {
          const page = await service.listSessionsPage(user.id, {
            limit: SESSION_PAGE.max,
            ...(cursor ? { cursor } : {}),
          });
          for (const s of page.sessions) {
            if (json) {
              rows.push({
                id: s.id,
                user_id: s.userId,
                client_id: s.clientId,
                scope: s.scope,
                created_at: iso(s.createdAt),
                last_used_at: iso(s.lastUsedAt),
                idle_expires_at: iso(s.idleExpiresAt),
                expires_at: iso(s.expiresAt),
                ip: s.ip,
                user_agent: s.userAgent,
              });
              continue;
            }
            out(
              `${s.id.padEnd(27)} ${s.clientId.padEnd(16)} ${iso(s.createdAt).padEnd(25)} ${iso(s.lastUsedAt).padEnd(25)} ${s.ip ?? '-'}\n`,
            );
          }
          cursor = page.nextCursor;
        } while (cursor);
        if (json) writeJson(out, { sessions: rows });
        return;
      }
      if (sub === 'revoke') {
        if (!(await service.revokeSession(ref, 'admin'))) {
          throw new BatonError('not_found', 'No live session with this id');
        }
        out(`Revoked session ${ref}\n`);
        return;
      }
      if (sub === 'revoke-all') {
        const user = await service.findUser(ref);
        const count = await service.logoutAll(user.id, 'admin');
        out(`Revoked ${count} session(s) of ${user.email}\n`);
        return;
      }
      throw new ConfigError(`Unknown sessions command "${sub}"\n\n${USAGE}`);
    },
    onEvent,
  );
}

/** The `baton sessions` command, writing to stdout. */
export function sessions(args: readonly string[], env: NodeJS.ProcessEnv): Promise<void> {
  return runSessions(args, env, (text) => process.stdout.write(text));
}
