import type { PruneReport } from '../core/token-service.js';
import { type Output, parseArgs, withService } from './args.js';
import { ConfigError, loadServeConfig } from './config.js';

const USAGE = `Usage: baton prune [--dry-run] [--json]

Deletes what is past its retention, in small batches, safely while servers run:
  ended sessions (revoked or expired) and all their tokens, after BATON_RETENTION_ENDED_SESSIONS (30d)
  spent refresh tokens of live sessions, after BATON_RETENTION_SPENT_TOKENS (30d)
  trusted devices unused for the device lifetime (180d)
  security events, after BATON_RETENTION_EVENTS (90d)

  --dry-run   only count what would be deleted
  --json      print the counts as JSON

Every server also prunes on its own timer (BATON_PRUNE_INTERVAL, "off" to leave it to this command).
Also takes --database-url (as BATON_DATABASE_URL).
`;

const SPEC = { 'dry-run': 'boolean', json: 'boolean' } as const;

/** Prints a report as a table (or JSON). */
function render(report: PruneReport, json: boolean): string {
  if (json) return `${JSON.stringify(report)}\n`;
  const verb = report.dryRun ? 'would delete' : 'deleted';
  const rows = Object.entries(report.deleted).map(([kind, n]) => `  ${kind.padEnd(16)} ${n}\n`);
  return `Pruning ${verb}:\n${rows.join('')}`;
}

/** `baton prune`: one pruning run through core, as every server runs it on its timer. */
export async function runPrune(
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
  const config = loadServeConfig({ ...env, ...parsed.env });
  const report = await withService(config, now, (service) =>
    service.prune({ dryRun: parsed.flags['dry-run'] === true }),
  );
  out(render(report, parsed.flags.json === true));
}

/** The `baton prune` command, writing to stdout. */
export function prune(args: readonly string[], env: NodeJS.ProcessEnv): Promise<void> {
  return runPrune(args, env, (text) => process.stdout.write(text));
}
