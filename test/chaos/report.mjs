// The per-scenario verdict and the table the run prints.

/**
 * @typedef {object} Row
 * @property {string} scenario
 * @property {string} db
 * @property {'run' | 'not run' | 'error'} status
 * @property {number} [signOuts]               spurious sign-outs (must be 0)
 * @property {number} [calls]
 * @property {number} [failed]                 calls that failed after retries (≤ 0.5 % of calls)
 * @property {number} [refreshesPerSessionMin]
 * @property {number} [acceptedReplays]        replays of a stolen token that were answered (must be 0)
 * @property {{ attempted: number, detected: number }} [thefts]  detected must equal attempted
 * @property {number} [unhandled]              unhandled promise rejections in the clients (each would crash a Node app)
 * @property {number} [wrongBinding]           client instances or stored sessions not bound as the scenario asks (must be 0)
 * @property {boolean} [shared]                gets the environment's notes (faults, kills, server counters)
 * @property {string[]} notes
 */

/** The most failed calls a scenario may have, as a fraction of its calls. */
export const MAX_FAILED_FRACTION = 0.005;

/**
 * Why a row misses its bar (empty: it passes). A scenario that did not run is
 * a miss only when every scenario is required.
 * @param {Row} row
 * @param {{ requireAll: boolean }} opts
 */
export function misses(row, opts) {
  if (row.status === 'not run') return opts.requireAll ? ['not run (--require-all)'] : [];
  if (row.status === 'error') return ['scenario failed to run'];
  const out = [];
  if ((row.signOuts ?? 0) > 0) out.push(`${row.signOuts} spurious sign-out(s)`);
  if (row.calls !== undefined) {
    if (row.calls === 0) out.push('no calls made');
    else if ((row.failed ?? 0) / row.calls > MAX_FAILED_FRACTION) out.push('failed calls above 0.5 %');
  }
  if ((row.unhandled ?? 0) > 0) out.push(`${row.unhandled} unhandled rejection(s) in the clients`);
  if ((row.wrongBinding ?? 0) > 0) out.push(`${row.wrongBinding} session(s) not bound as asked`);
  if ((row.acceptedReplays ?? 0) > 0) out.push(`${row.acceptedReplays} replay(s) accepted`);
  if (row.thefts) {
    if (row.thefts.attempted === 0) out.push('no theft attempted');
    else if (row.thefts.detected !== row.thefts.attempted) out.push('thefts missed');
  }
  return out;
}

const pct = (row) =>
  row.calls ? `${((100 * (row.failed ?? 0)) / row.calls).toFixed(2)} % of ${row.calls}` : '-';

/**
 * The table, one line per scenario and database, then each row's notes.
 * @param {Row[]} rows
 * @param {{ requireAll: boolean }} opts
 */
export function formatTable(rows, opts) {
  const header = [
    'scenario',
    'db',
    'verdict',
    'sign-outs',
    'failed calls',
    'refresh/session/min',
    'accepted replays',
    'thefts detected',
  ];
  const lines = rows.map((row) => {
    const m = misses(row, opts);
    const verdict =
      row.status === 'not run' ? (m.length ? 'MISS (not run)' : 'not run') : m.length ? 'MISS' : 'pass';
    return [
      row.scenario,
      row.db,
      verdict,
      row.signOuts === undefined ? '-' : String(row.signOuts),
      pct(row),
      row.refreshesPerSessionMin === undefined ? '-' : row.refreshesPerSessionMin.toFixed(1),
      row.acceptedReplays === undefined ? '-' : String(row.acceptedReplays),
      row.thefts ? `${row.thefts.detected}/${row.thefts.attempted}` : '-',
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const fmt = (cells) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
  const out = [fmt(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...lines.map(fmt), ''];
  for (const row of rows) {
    const m = misses(row, opts);
    out.push(`${row.scenario} (${row.db})${m.length ? `: MISS: ${m.join('; ')}` : ''}`);
    for (const note of row.notes) out.push(`  - ${note}`);
  }
  return out.join('\n');
}
