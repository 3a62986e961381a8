#!/usr/bin/env node
// The logins load: registers `users` accounts, then logs in with `inflight` clients for `seconds`
// against a server on another core, and reads where the server's CPU went meanwhile from
// /proc/<serverPid>/task (its main thread against its other threads: libuv's pool, which runs
// Argon2, and V8's helpers) and from /proc/stat (how long the server's core sat idle).
// Runs in a process of its own, pinned to the load core by bench/lib/extras.mjs, so the
// clients never take turns on the server's core. Prints one JSON line.
import { readdirSync, readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { Client } from 'undici';
import { coreShares, coreTicks } from './processes.mjs';

const [url, seconds, serverPid, serverCore, users = 8, inflight = 2] = process.argv.slice(2);
const PASSWORD = 'bench-password-long-enough';
const CLK_TCK = 100; // USER_HZ: /proc counts CPU time in 1/100 s.

async function post(client, path, body) {
  const res = await client.request({
    path,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  await res.body.dump();
  return res.statusCode;
}

/** CPU ticks of the server's main thread and of all its other threads together. */
function serverTicks() {
  let main = 0;
  let others = 0;
  for (const tid of readdirSync(`/proc/${serverPid}/task`)) {
    try {
      const text = readFileSync(`/proc/${serverPid}/task/${tid}/stat`, 'utf8');
      const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
      const ticks = Number(f[11]) + Number(f[12]);
      if (tid === serverPid) main += ticks;
      else others += ticks;
    } catch {
      // A thread that ended meanwhile.
    }
  }
  return { main, others };
}

const clients = Array.from({ length: Number(inflight) }, () => new Client(url));
try {
  for (let i = 0; i < Number(users); i++)
    await post(clients[0], '/auth/register', { email: `login-${i}@example.com`, password: PASSWORD });
  let ok = 0;
  let errors = 0;
  let k = 0;
  const cpu0 = serverTicks();
  const core0 = coreTicks(serverCore);
  const t0 = performance.now();
  const end = t0 + Number(seconds) * 1000;
  await Promise.all(
    clients.map(async (client) => {
      while (performance.now() < end && k < 1_000_000) {
        const status = await post(client, '/auth/login', {
          email: `login-${k++ % Number(users)}@example.com`,
          password: PASSWORD,
        });
        status === 200 ? ok++ : errors++;
      }
    }),
  );
  const ms = performance.now() - t0;
  const cpu1 = serverTicks();
  const core1 = coreTicks(serverCore);
  const perLogin = (ticks) => (ok > 0 ? (ticks * 1000) / CLK_TCK / ok : null);
  console.log(
    JSON.stringify({
      loginsPerS: (ok * 1000) / ms,
      errors,
      // Server CPU per successful login, in ms: what the one core spends on it besides waiting.
      mainThreadMsPerLogin: perLogin(cpu1.main - cpu0.main),
      otherThreadsMsPerLogin: perLogin(cpu1.others - cpu0.others),
      serverCoreIdleShare: coreShares(core0, core1)?.idle ?? null,
    }),
  );
} finally {
  await Promise.allSettled(clients.map((c) => c.destroy()));
}
