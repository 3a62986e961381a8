// Turns a run's results into bench/RESULTS.md and bench/results/rotations.svg.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';

/** Median of a list of numbers (nulls dropped); null for an empty list. */
export function median(xs) {
  const s = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return null;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

const fmt = (x, digits = 0) => (x === null || x === undefined ? 'n/a' : x.toFixed(digits));
const ms = (x) => fmt(x, x !== null && x < 10 ? 2 : 1);
/** The server core's idle / steal / interrupt shares of a window, in %, or a dash when not sampled. */
const coreCell = (r) =>
  r.coreIdle == null ? '—' : [r.coreIdle, r.coreSteal, r.coreIrq].map((x) => fmt(100 * x)).join(' / ');
const mib = (b) => `${(b / 2 ** 20).toFixed(1)} MiB`;

/** The machine and the code the numbers come from. */
export function machine(root) {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const model = /model name\s*:\s*(.+)/.exec(cpuinfo)?.[1] ?? cpus()[0]?.model ?? 'unknown';
  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['-C', root, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['-C', root, 'status', '--porcelain', '--', 'packages'], {
      encoding: 'utf8',
    });
    if (dirty.trim()) commit += ' (packages/ modified)';
  } catch {
    // Not a git checkout.
  }
  return {
    nproc: cpus().length,
    model,
    ramGiB: totalmem() / 2 ** 30,
    node: process.version,
    commit,
    loadavg: loadavg(),
  };
}

/** Medians over repetitions per target and concurrency. */
export function summarize(samples, targets, levels) {
  const out = {};
  for (const t of targets) {
    out[t.key] = {};
    for (const c of levels) {
      const rows = samples.filter((s) => s.target === t.key && s.c === c);
      if (rows.length === 0) continue;
      const m = (k) => median(rows.map((r) => r[k]));
      out[t.key][c] = {
        reps: rows.length,
        rotPerS: m('rotPerS'),
        okPerS: m('okPerS'),
        p50: m('p50'),
        p95: m('p95'),
        p99: m('p99'),
        errors: m('errors'),
        requests: m('requests'),
        cpuUsPerReq: m('cpuUsPerReq'),
        loadCpuUsPerReq: rows.every((r) => r.loadCpuUsPerReq != null) ? m('loadCpuUsPerReq') : null,
        dbCpuUsPerReq: rows.every((r) => r.dbCpuUsPerReq != null) ? m('dbCpuUsPerReq') : null,
        coreIdle: rows.every((r) => r.coreIdle != null) ? m('coreIdle') : null,
        coreSteal: rows.every((r) => r.coreSteal != null) ? m('coreSteal') : null,
        coreIrq: rows.every((r) => r.coreIrq != null) ? m('coreIrq') : null,
      };
    }
  }
  return out;
}

const COLORS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f'];
const esc = (s) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');

/** A line chart of rotations/s against concurrency (levels evenly spaced on x), one line per target. */
export function svgChart(summary, targets, levels) {
  const W = 760;
  const H = 420;
  const L = 70;
  const R = 250;
  const T = 30;
  const B = 50;
  const max = Math.max(1, ...targets.flatMap((t) => levels.map((c) => summary[t.key]?.[c]?.rotPerS ?? 0)));
  const step = 10 ** Math.floor(Math.log10(max));
  const top = Math.ceil(max / step) * step;
  const x = (i) => L + (levels.length === 1 ? 0 : (i * (W - L - R)) / (levels.length - 1));
  const y = (v) => T + (H - T - B) * (1 - v / top);
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    // A title for screen readers (and biome's a11y lint, which checks the committed file).
    '<title>Refresh rotations/s vs concurrency (median of reps)</title>',
    `<rect width="${W}" height="${H}" fill="#fff"/>`,
    `<text x="${L}" y="18" font-size="14" font-weight="bold">Refresh rotations/s vs concurrency (median of reps)</text>`,
  ];
  for (let k = 0; k <= 5; k++) {
    const v = (top * k) / 5;
    parts.push(
      `<line x1="${L}" x2="${W - R}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/>`,
      `<text x="${L - 6}" y="${y(v) + 4}" text-anchor="end">${Math.round(v)}</text>`,
    );
  }
  levels.forEach((c, i) => {
    parts.push(`<text x="${x(i)}" y="${H - B + 18}" text-anchor="middle">${c}</text>`);
  });
  parts.push(
    `<text x="${(L + W - R) / 2}" y="${H - 12}" text-anchor="middle">virtual clients (closed loop)</text>`,
    `<line x1="${L}" x2="${L}" y1="${T}" y2="${H - B}" stroke="#000"/>`,
    `<line x1="${L}" x2="${W - R}" y1="${H - B}" y2="${H - B}" stroke="#000"/>`,
  );
  targets.forEach((t, j) => {
    const color = COLORS[j % COLORS.length];
    const pts = levels
      .map((c, i) => [i, summary[t.key]?.[c]?.rotPerS])
      .filter(([, v]) => typeof v === 'number')
      .map(([i, v]) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`);
    if (pts.length > 0) {
      parts.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${pts.join(' ')}"/>`);
      for (const p of pts) {
        const [px, py] = p.split(',');
        parts.push(`<circle cx="${px}" cy="${py}" r="3" fill="${color}"/>`);
      }
    }
    const ly = T + 10 + j * 18;
    parts.push(
      `<line x1="${W - R + 15}" x2="${W - R + 35}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="2"/>`,
      `<text x="${W - R + 40}" y="${ly + 4}">${esc(t.name)}</text>`,
    );
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}

/** The Markdown report. */
export function markdown({
  info,
  command,
  started,
  finished,
  opts,
  targets,
  levels,
  summary,
  samples,
  checks,
  extras,
  chart,
}) {
  const lines = [];
  const push = (...l) => lines.push(...l);
  push(
    '# Baton benchmark results',
    '',
    `Written by \`${command}\` (bench/run.mjs); rerun it to replace this file. Started ${started}, finished ${finished}.`,
    '',
    '## Machine',
    '',
    `- ${info.nproc} logical CPUs: ${info.model}; ${info.ramGiB.toFixed(1)} GiB RAM; Node ${info.node}`,
    `- git commit ${info.commit}`,
    `- load average at the end of the run (1/5/15 min): ${info.loadavg.map((x) => x.toFixed(2)).join(' / ')}${opts.loadSamples?.length ? `; 1-min load average sampled at the start of every target run: min ${Math.min(...opts.loadSamples).toFixed(2)}, median ${median(opts.loadSamples).toFixed(2)}, max ${Math.max(...opts.loadSamples).toFixed(2)} (a 1-minute average, so it includes up to about 2 from this benchmark's own previous target)` : ''}`,
    `- servers pinned to core 0, the load generator to core 1${info.nproc >= 2 ? '' : ' (not pinned: fewer than 2 cores)'}; PostgreSQL is not pinned and shares both cores`,
    ...(info.postgres
      ? [
          `- PostgreSQL ${info.postgres.version}: ${info.postgres.settings}; the schema of a PostgreSQL target is ANALYZEd after every warm-up (with autovacuum off nothing else would give its tables statistics, and the connections would keep the plans they made while the tables were tiny)`,
        ]
      : []),
    ...(opts.note ? [`- ${opts.note}`] : []),
    '',
    '## Method',
    '',
    `Closed loop: each virtual client has its own keep-alive connection (undici, 1 connection) and its own session, logged in once during setup, then sends refresh after refresh with the refresh token of the previous response. Per target and repetition a fresh server process on a fresh database; per concurrency level ${opts.warmupMs / 1000} s warm-up (not measured), then ${opts.durationMs / 1000} s measured. Concurrency levels run one after another on the same server (so later levels see a store with more used tokens). Targets alternate within every repetition; ${opts.reps} repetition(s); the tables show medians over them.`,
    '',
    '- rot/s: 2xx responses carrying a new refresh token different from the one sent, per second;',
    '- ok/s: all 2xx responses per second; errors: non-2xx and network errors in the window (median);',
    '- p50/p95/p99: latency of every request in the window, in ms, as the client sees it;',
    "- CPU µs/req: utime+stime of the server process tree during the window ÷ completed requests (for PostgreSQL without the database server's own processes);",
    '- DB server CPU µs/req: utime+stime of every `postgres` process on the machine during the window ÷ completed requests (an embedded SQLite runs inside the server, so it has none of its own).',
    "- load generator CPU µs/req: the load generator's own utime+stime ÷ completed requests; well below 1,000,000 ÷ rot/s (a whole core per request) means it had time to spare, so the server set the pace.",
    "- server core idle / steal / irq %: how the server's core spent the window apart from running processes, from /proc/stat: idle (nothing to run), steal (the hypervisor ran another guest on it: a busy neighbour slows every figure of that window) and hard and soft interrupts (the loopback network's packets, charged to no process). rot/s × CPU µs/req ÷ 10,000 is the % the server's own processes got.",
    '',
    '## Rotations',
    '',
  );
  for (const c of levels) {
    push(
      `### ${c} virtual client${c === 1 ? '' : 's'}`,
      '',
      '| target | rot/s | ok/s | p50 ms | p95 ms | p99 ms | errors | CPU µs/req | DB server CPU µs/req | load generator CPU µs/req | server core idle / steal / irq % |',
      '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    );
    for (const t of targets) {
      const r = summary[t.key]?.[c];
      if (!r) continue;
      push(
        `| ${t.name} | ${fmt(r.rotPerS)} | ${fmt(r.okPerS)} | ${ms(r.p50)} | ${ms(r.p95)} | ${ms(r.p99)} | ${fmt(r.errors)} | ${fmt(r.cpuUsPerReq)} | ${r.dbCpuUsPerReq == null ? '—' : fmt(r.dbCpuUsPerReq)} | ${r.loadCpuUsPerReq == null ? '—' : fmt(r.loadCpuUsPerReq)} | ${coreCell(r)} |`,
      );
    }
    push('');
  }
  // Baton on SQLite against every other target; Baton on PostgreSQL against itself before the
  // speed work and against the in-memory oidc-provider (its two goals).
  const ratioTable = (base, peers, intro) => {
    if (!base || peers.length === 0) return;
    push(intro, '');
    push(
      `| peer | ${levels.map((c) => `c=${c}`).join(' | ')} |`,
      `|---|${levels.map(() => '---:').join('|')}|`,
    );
    for (const t of peers) {
      const cells = levels.map((c) => {
        const a = summary[base.key]?.[c];
        const b = summary[t.key]?.[c];
        if (!a || !b) return 'n/a';
        const rot = b.rotPerS > 0 ? (a.rotPerS / b.rotPerS).toFixed(2) : 'n/a (peer rotates 0/s)';
        const cpu = a.cpuUsPerReq && b.cpuUsPerReq ? (a.cpuUsPerReq / b.cpuUsPerReq).toFixed(2) : 'n/a';
        return `${rot} (${cpu})`;
      });
      push(`| ${t.name} | ${cells.join(' | ')} |`);
    }
    push('');
  };
  const sqlite = targets.find((t) => t.key === 'baton-sqlite');
  const postgres = targets.find((t) => t.key === 'baton-postgres');
  if (sqlite || postgres) push('## Ratios', '');
  ratioTable(
    sqlite,
    targets.filter((t) => t !== sqlite),
    `Baton (\`${sqlite?.name}\`) ÷ each peer, per concurrency: rotations/s (> 1: Baton rotates more per second) and, in brackets, server CPU per request (< 1: Baton spends less CPU per request).`,
  );
  ratioTable(
    postgres,
    targets.filter((t) => t.key === 'baton-postgres-before' || t.key === 'oidc-provider'),
    `Baton on PostgreSQL (\`${postgres?.name}\`) ÷ the same route before the speed work, and ÷ node-oidc-provider (in memory); the same two figures. Baton's CPU here is its own process only, without PostgreSQL's (see the DB server column above).`,
  );
  if (chart) push('![rotations/s vs concurrency](results/rotations.svg)', '');
  if (checks && Object.keys(checks).length > 0) {
    push(
      '## Correctness checks',
      '',
      'Each on its own fresh server after the load, with a 1 s reuse grace window: rotate once, wait 1.3 s, replay the old token, then present the newest one.',
      '',
    );
    push(
      '| target | rotated | replay after grace refused | newest token then refused (session revoked) |',
      '|---|---|---|---|',
    );
    for (const [name, r] of Object.entries(checks)) {
      if (name === 'seed as written') continue;
      if (r.error) {
        push(`| ${name} | check failed: ${r.error} | | |`);
        continue;
      }
      push(
        `| ${name} | ${r.rotated ? 'yes' : 'NO'} | ${r.replayRejected ? 'yes' : 'NO'} (HTTP ${r.replayStatus}) | ${r.sessionRevoked ? 'yes' : 'no'} (HTTP ${r.newestStatus}) |`,
      );
    }
    if (checks['seed fixed'])
      push(
        '',
        'The fixed seed keeps one token per user and no token families, so a refused replay revokes nothing there: that is its design, not a failure of the check.',
        '',
      );
    const d = checks['seed as written'];
    if (d) {
      push('### The seed as written, measured', '');
      if (d.error) push(`- check failed: ${d.error}`);
      else
        push(
          `- two logins within one second issue the identical refresh token: **${d.sameTokenWithinOneSecond ? 'yes' : 'no'}** (no \`jti\`, and \`iat\` has a resolution of one second);`,
          `- a used refresh token is accepted again (three refreshes with the same token within that second, all HTTP 200): **${d.usedTokenAcceptedAgain ? 'yes' : 'no'}**;`,
          `- the refresh response's \`data.newRefreshToken\`: **${d.newRefreshTokenInJson}**, and its cookie is \`${d.refreshCookie}\` (the destructuring defect);`,
          `- after the next second boundary the same token is accepted once more (HTTP ${d.afterSecondBoundary}), which stores a new token the client was never sent, so from then on its chain is broken (HTTP ${d.chainBrokenThen}). Under load this is what the table shows for "seed as written": rot/s is 0 because no response carries a new refresh token, its 200s come from the requests that land in the second of the login (and the warm-up eats most of those), and after that every request is a 401: its ok/s and latency measure how fast it refuses.`,
        );
      push('');
    }
  }
  if (extras.logins) {
    const l = extras.logins;
    push(
      '## Logins',
      '',
      `One server on one core, ${l.warmupSeconds} s of logins first (not measured), then ${l.pairs.length} pair(s) of ${l.seconds}-s windows side by side, in alternating order: Baton's logins, and Argon2id alone on the same core with the server frozen (SIGSTOP). Each pair gives its own ratio; the figures are medians.`,
      '',
      `- Baton \`/auth/login\` (SQLite, 2 in flight, server on one core): **${fmt(l.loginsPerS, 1)} logins/s** (${l.errors} errors);`,
      `- what the cost allows: Argon2id verify at m=19456, t=2, p=1 on that core, one at a time, with @node-rs/argon2: **${fmt(l.argon2VerifiesPerS, 1)}/s**;`,
      `- ratio logins/s ÷ Argon2 verifies/s: **${fmt(l.ratio, 2)}** (1.00 would mean a login costs nothing but its password hash); pair by pair: ${l.pairs.map((p) => `${fmt(p.loginsPerS, 1)} ÷ ${fmt(p.argon2VerifiesPerS, 1)} = ${fmt(p.ratio, 2)}`).join('; ')}.`,
      ...(l.mainThreadMsPerLogin != null
        ? [
            `- the server's CPU per login: **${fmt(l.otherThreadsMsPerLogin, 2)} ms** on its other threads (Argon2 on libuv's pool, V8's helpers, the checkpoint thread; one verify alone took ${fmt(l.argon2MsPerVerify, 2)} ms) and **${fmt(l.mainThreadMsPerLogin, 2)} ms** on its main thread (HTTP, the session's transactions, the token); its core sat idle ${fmt(100 * l.serverCoreIdleShare, 1)} % of the time.`,
          ]
        : []),
      '',
    );
  }
  if (extras.verify) {
    push(
      '## @baton/verify',
      '',
      `createVerifier(...).verify(token), built package, 64 in flight, JWKS cached: **ES256 ${fmt(extras.verify.ES256)}/s**, **EdDSA ${fmt(extras.verify.EdDSA)}/s** (see bench/verify/RESULTS.md for the comparison with node:crypto).`,
      '',
    );
  }
  if (extras.memory) {
    const m = extras.memory;
    push(
      '## Memory',
      '',
      `Server RSS (SQLite). The sessions were inserted straight into the server's SQLite schema (one refresh token each, 10 per user), then the server was started on that file and given 3 s of refreshes at 16 in flight.`,
      '',
      '| store | RSS at start | RSS after refreshes |',
      '|---|---:|---:|',
      `| empty | ${mib(m.empty.rssIdle)} | ${mib(m.empty.rssAfterRefreshes)} |`,
      `| ${m.loaded.sessions.toLocaleString('en')} sessions | ${mib(m.loaded.rssIdle)} | ${mib(m.loaded.rssAfterRefreshes)} |`,
      '',
    );
  }
  if (extras.rss) {
    const s = extras.rss.samples;
    push(
      '### RSS over a long refresh run',
      '',
      `${extras.rss.seconds} s of refreshes at 16 in flight (${fmt(extras.rss.rotPerS)} rot/s, ${extras.rss.errors} errors), RSS sampled every 10 s: first ${mib(s[0])}, last ${mib(s.at(-1))}, max ${mib(Math.max(...s))}, samples ${s.map((b) => (b / 2 ** 20).toFixed(0)).join(', ')} MiB.`,
      '',
    );
  }
  push(
    '## Raw samples',
    '',
    '<details><summary>every repetition</summary>',
    '',
    '| rep | target | c | rot/s | ok/s | p50 | p99 | errors | CPU µs/req | server core idle / steal / irq % |',
    '|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|',
  );
  for (const s of samples) {
    const t = targets.find((x) => x.key === s.target);
    push(
      `| ${s.rep} | ${t?.name ?? s.target} | ${s.c} | ${fmt(s.rotPerS)} | ${fmt(s.okPerS)} | ${ms(s.p50)} | ${ms(s.p99)} | ${s.errors}${
        Object.keys(s.byStatus ?? {}).length
          ? ` (${Object.entries(s.byStatus)
              .map(([k, v]) => `${k}: ${v}`)
              .join(', ')})`
          : ''
      } | ${fmt(s.cpuUsPerReq)} | ${coreCell(s)} |`,
    );
  }
  push('', '</details>', '');
  return `${lines.join('\n')}\n`;
}
