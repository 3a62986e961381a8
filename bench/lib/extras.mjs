// The figures beside the rotation table: logins/s against what Argon2 allows, verifications/s
// of @baton/verify, and the server's memory (with 100,000 sessions, and over a long run).
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { rssBytes, spawnNode, stop, waitForLine } from './processes.mjs';
import { median } from './report.mjs';
import { LOAD_CORE, SERVER_CORE, startBaton } from './targets.mjs';

/** Runs a one-line-JSON helper script pinned to a core and returns its result. */
async function helper(script, args, core) {
  const proc = spawnNode([new URL(script, import.meta.url).pathname, ...args.map(String)], { core });
  const m = await waitForLine(proc, /^(\{.*\})\n/m, 300_000);
  await stop(proc);
  return JSON.parse(m[1]);
}

/**
 * Logins/s against Baton (2 in flight), and Argon2id verifications/s on the server's core.
 * The clients run in a process pinned to the load core (bench/lib/login-load.mjs), like every
 * other load of this bench: in this process they were free to run on the server's core.
 *
 * One server, warmed up first (the accounts registered, the login path run for `warmupSeconds`
 * so the first compilations are not measured), then `reps` pairs of windows: logins, and the
 * hash alone on the same core with the server frozen (SIGSTOP, so its timers take nothing from
 * the hash). The two windows of a pair sit side by side, in alternating order, and each pair
 * gives its own ratio: this machine's speed drifts by a third within minutes, which a ratio of
 * windows minutes apart would take for the server's cost. The medians are reported, and every pair.
 */
export async function measureLogins({ seconds, reps, warmupSeconds }) {
  const server = await startBaton({ db: 'sqlite' });
  const loginWindow = (s) => helper('./login-load.mjs', [server.url, s, server.pid, SERVER_CORE], LOAD_CORE);
  const argonWindow = async () => {
    process.kill(server.pid, 'SIGSTOP');
    try {
      return await helper('./argon2-rate.mjs', [seconds], SERVER_CORE);
    } finally {
      process.kill(server.pid, 'SIGCONT');
    }
  };
  const pairs = [];
  try {
    await loginWindow(warmupSeconds);
    for (let rep = 0; rep < reps; rep++) {
      const argonFirst = rep % 2 === 1;
      const argon = argonFirst ? await argonWindow() : undefined;
      const load = await loginWindow(seconds);
      const verifies = argon ?? (await argonWindow());
      pairs.push({
        ...load,
        argon2VerifiesPerS: verifies.verifiesPerS,
        ratio: load.loginsPerS / verifies.verifiesPerS,
      });
    }
  } finally {
    await server.stop();
  }
  const mid = (key) => median(pairs.map((p) => p[key]));
  return {
    loginsPerS: mid('loginsPerS'),
    errors: pairs.reduce((n, p) => n + p.errors, 0),
    mainThreadMsPerLogin: mid('mainThreadMsPerLogin'),
    otherThreadsMsPerLogin: mid('otherThreadsMsPerLogin'),
    serverCoreIdleShare: mid('serverCoreIdleShare'),
    argon2VerifiesPerS: mid('argon2VerifiesPerS'),
    argon2MsPerVerify: 1000 / mid('argon2VerifiesPerS'),
    ratio: mid('ratio'),
    warmupSeconds,
    seconds,
    pairs,
  };
}

/** Verifications/s of the built @baton/verify, on the load generator's core. */
export function measureVerify({ seconds }) {
  return helper('./verify-rate.mjs', [seconds], LOAD_CORE);
}

/** Opens `n` sessions straight in SQLite with Baton's schema (created by the server itself). */
function insertSessions(file, n) {
  const db = new Database(file);
  try {
    const now = Date.now();
    const users = db.prepare('INSERT INTO users (id, email, password_hash, created_at) VALUES (?, ?, ?, ?)');
    const sessions = db.prepare(
      `INSERT INTO sessions (id, user_id, client_id, created_at, last_used_at, idle_expires_at, expires_at,
        user_agent, ip) VALUES (?, ?, 'app', ?, ?, ?, ?, 'bench', '127.0.0.1')`,
    );
    const tokens = db.prepare(
      'INSERT INTO refresh_tokens (id, session_id, secret_hash, created_at) VALUES (?, ?, ?, ?)',
    );
    const perUser = 10;
    db.transaction(() => {
      for (let i = 0; i < n; i++) {
        const user = `usr_bench${Math.floor(i / perUser)}`;
        if (i % perUser === 0) users.run(user, `mem-${i / perUser}@example.com`, '$argon2id$not-a-hash', now);
        const sid = `ses_${randomBytes(16).toString('base64url')}`;
        sessions.run(sid, user, now, now, now + 14 * 86_400_000, now + 30 * 86_400_000);
        tokens.run(`rt_${randomBytes(16).toString('base64url')}`, sid, randomBytes(32).toString('hex'), now);
      }
    })();
  } finally {
    db.close();
  }
}

/** Runs a refresh load on a server in the load-worker process and waits for it. */
async function refreshLoad(server, { c, seconds, onTick }) {
  const proc = spawnNode([new URL('./load-worker.mjs', import.meta.url).pathname], {
    core: LOAD_CORE,
    stdin: 'pipe',
  });
  proc.child.stdin.end(
    JSON.stringify({
      protocol: 'baton-auth',
      url: server.url,
      levels: [c],
      warmupMs: 0,
      durationMs: seconds * 1000,
      serverPid: server.pid,
      tag: 'mem',
    }),
  );
  const done = waitForLine(proc, /^\{"c".*\}\n/m, (seconds + 120) * 1000);
  if (onTick) {
    const end = Date.now() + (seconds + 120) * 1000;
    let finished = false;
    done.finally(() => {
      finished = true;
    });
    while (!finished && Date.now() < end) {
      await Promise.race([sleep(10_000), done.catch(() => {})]);
      if (!finished) onTick();
    }
  }
  const m = await done;
  await stop(proc);
  return JSON.parse(m[0]);
}

/** RSS with an empty store and with `sessions` sessions, each after a short refresh run. */
export async function measureMemory({ sessions }) {
  const out = {};
  for (const [label, n] of [
    ['empty', 0],
    ['loaded', sessions],
  ]) {
    const first = await startBaton({ db: 'sqlite' });
    let server = first;
    if (n > 0) {
      // The server created the schema; insert with it stopped, then start again on the same file.
      await stop(first.proc);
      insertSessions(first.databaseUrl.slice('sqlite:'.length), n);
      server = await startBaton({ db: 'sqlite', env: { BATON_DATABASE_URL: first.databaseUrl } });
    }
    try {
      const idle = rssBytes(server.pid);
      await refreshLoad(server, { c: 16, seconds: 3 });
      out[label] = { sessions: n, rssIdle: idle, rssAfterRefreshes: rssBytes(server.pid) };
    } finally {
      await server.stop();
      if (server !== first) await first.stop();
    }
  }
  return out;
}

/** RSS sampled every 10 s over a refresh run of `seconds` at 16 in flight. */
export async function measureRssOverTime({ seconds }) {
  const server = await startBaton({ db: 'sqlite' });
  try {
    const samples = [rssBytes(server.pid)];
    const result = await refreshLoad(server, {
      c: 16,
      seconds,
      onTick: () => samples.push(rssBytes(server.pid)),
    });
    samples.push(rssBytes(server.pid));
    return { seconds, samples, rotPerS: result.rotPerS, errors: result.errors };
  } finally {
    await server.stop();
  }
}
