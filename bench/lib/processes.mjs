// Child processes of a benchmark run: start pinned, wait until ready, read CPU and memory
// from /proc, and kill everything at the end, even when the run fails half-way.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus } from 'node:os';

const CORES = cpus().length;
const CLK_TCK = 100; // USER_HZ on Linux: /proc/<pid>/stat counts CPU time in 1/100 s.
const live = new Set();
let cpuProfileDir;

/** Makes every server started from now on (the processes pinned to a core) write a CPU profile into `dir`. */
export function profileServersInto(dir) {
  cpuProfileDir = dir;
}

/** True when there are cores to separate the server (core 0) from the load generator (core 1). */
export const PINNING = CORES >= 2;

/** A TCP port on 127.0.0.1 that the OS handed out a moment ago. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Spawns `node <args>` pinned to one core (when there are two) and tracks it so
 * {@link killAll} can end it. Output is kept (bounded) for error messages.
 */
export function spawnNode(args, { core, env = {}, stdin = 'ignore' } = {}) {
  // `--cpu-prof DIR` (bench/run.mjs): every server writes a V8 CPU profile there when it exits.
  const profile = core !== undefined && cpuProfileDir !== undefined;
  const nodeArgs = profile ? ['--cpu-prof', `--cpu-prof-dir=${cpuProfileDir}`, ...args] : args;
  const cmd = PINNING && core !== undefined ? 'taskset' : process.execPath;
  const argv = PINNING && core !== undefined ? ['-c', String(core), process.execPath, ...nodeArgs] : nodeArgs;
  const child = spawn(cmd, argv, { env: { ...process.env, ...env }, stdio: [stdin, 'pipe', 'pipe'] });
  let output = '';
  const keep = (chunk) => {
    output = (output + chunk.toString()).slice(-20_000);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  live.add(child);
  child.on('exit', () => live.delete(child));
  return { child, pid: child.pid, output: () => output };
}

/** Waits (bounded) until `GET url` answers 2xx; fails early if the process exits. */
export async function waitReady(proc, url, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc.child.exitCode !== null) throw new Error(`server exited early:\n${proc.output()}`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      if (res.ok) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`server not ready after ${timeoutMs} ms:\n${proc.output()}`);
}

/** Waits (bounded) for a line on stdout matching `re` and returns the match. */
export function waitForLine(proc, re, timeoutMs = 30_000) {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(
      () => done(new Error(`no "${re}" after ${timeoutMs} ms:\n${proc.output()}`)),
      timeoutMs,
    );
    const onData = (chunk) => {
      buf += chunk.toString();
      const m = re.exec(buf);
      if (m) done(null, m);
    };
    const onExit = () => done(new Error(`process exited early:\n${proc.output()}`));
    function done(err, m) {
      clearTimeout(timer);
      proc.child.stdout.off('data', onData);
      proc.child.off('exit', onExit);
      err ? reject(err) : resolve(m);
    }
    proc.child.stdout.on('data', onData);
    proc.child.on('exit', onExit);
  });
}

/** Stops one process: SIGTERM, then SIGKILL after `graceMs`. */
export function stop(proc, graceMs = 3000) {
  const { child } = proc;
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** Kills every process this run started that is still alive (used on exit and on error). */
export function killAll() {
  for (const child of live) child.kill('SIGKILL');
}

/**
 * One core's time so far, from /proc/stat, in ticks: `idle` (idle + iowait), `steal` (given by
 * the hypervisor to another guest), `irq` (hard and soft interrupts: the loopback network's
 * packets are handled there, charged to no process) and `total`. With `core` undefined, all
 * cores together.
 */
export function coreTicks(core) {
  const name = core === undefined ? 'cpu' : `cpu${core}`;
  const line = readFileSync('/proc/stat', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${name} `));
  if (!line) return null;
  // user nice system idle iowait irq softirq steal (guest time is counted inside user).
  const [user, nice, system, idle, iowait, irq, softirq, steal] = line
    .trim()
    .split(/\s+/)
    .slice(1, 9)
    .map(Number);
  return {
    idle: idle + iowait,
    steal,
    irq: irq + softirq,
    total: user + nice + system + idle + iowait + irq + softirq + steal,
  };
}

/** Shares of the core's time between two {@link coreTicks} samples, or null without both. */
export function coreShares(before, after) {
  if (!before || !after || after.total <= before.total) return null;
  const span = after.total - before.total;
  return {
    idle: (after.idle - before.idle) / span,
    steal: (after.steal - before.steal) / span,
    irq: (after.irq - before.irq) / span,
  };
}

function statOf(pid) {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) };
  } catch {
    return null;
  }
}

/** The pid and all its descendants, from /proc. */
export function processTree(root) {
  const children = new Map();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = statOf(name);
    if (!s) continue;
    if (!children.has(s.ppid)) children.set(s.ppid, []);
    children.get(s.ppid).push(Number(name));
  }
  const out = [];
  const queue = [root];
  while (queue.length > 0 && out.length < 10_000) {
    const pid = queue.shift();
    out.push(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return out;
}

/** CPU time (utime + stime, all threads) of a process tree, in microseconds. */
export function treeCpuMicros(root) {
  let ticks = 0;
  for (const pid of processTree(root)) ticks += statOf(pid)?.ticks ?? 0;
  return (ticks * 1_000_000) / CLK_TCK;
}

/**
 * CPU time so far of every process named `name` (e.g. `postgres`: the
 * postmaster and all backends), per pid, in µs. Machine-wide: anything else
 * using that database server at the time is counted too. Subtract two samples with {@link cpuSinceMicros}: a plain sum of both would
 * lose the whole past of a process that exited in between (a backend whose
 * connection closed, an autovacuum worker) and could even come out negative.
 */
export function commandCpuSample(name) {
  const sample = new Map();
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const comm = text.slice(text.indexOf('(') + 1, text.lastIndexOf(')'));
      if (comm !== name) continue;
      const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
      // starttime (field 22) tells a pid reused by a new process from the old one.
      sample.set(pid, { start: f[19], micros: ((Number(f[11]) + Number(f[12])) * 1_000_000) / CLK_TCK });
    } catch {
      // Gone meanwhile.
    }
  }
  return sample;
}

/**
 * CPU used between two {@link commandCpuSample}s: for each process alive at the
 * second, what it used since the first (all of it if it started since). The CPU a
 * process used before exiting within the window is not seen, so this may undercount.
 */
export function cpuSinceMicros(before, after) {
  let micros = 0;
  for (const [pid, now] of after) {
    const then = before.get(pid);
    micros += then && then.start === now.start ? now.micros - then.micros : now.micros;
  }
  return micros;
}

/** Resident set size of one process, in bytes (VmRSS). */
export function rssBytes(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}
