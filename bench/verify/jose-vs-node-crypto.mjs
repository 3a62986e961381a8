#!/usr/bin/env node
// Does @baton/verify need node:crypto instead of jose for speed? (issue 5, item 4)
//
//   npx tsc -b packages/verify && node bench/verify/jose-vs-node-crypto.mjs [--ops 4000] [--rounds 5]
//
// Measures, for ES256 and EdDSA, in one process and interleaved round by round:
//   package    createVerifier(...).verify(token) from the BUILT package (jose inside; JWKS
//              served by a local http server and cached after the warm-up, so no I/O is timed)
//   jose       jose.compactVerify(token, cryptoKey)      the signature step the package uses
//   node-sync  crypto.verify(alg, data, keyObject, sig)  the node:crypto alternative
//   node-cb    crypto.verify(..., callback)             node:crypto on the libuv threadpool
// each with 1 call in flight (latency) and 64 in flight (throughput on every core), and the
// main-thread (event-loop) time each call costs, from performance.eventLoopUtilization().
// It prints medians over the rounds and, per round, ratios between variants measured
// back to back; absolute times depend on the machine, the ratios are the result.
import { createServer } from 'node:http';
import { cpus, type as osType, release, totalmem } from 'node:os';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { verifyFixture } from './fixture.mjs';

const { values } = parseArgs({
  options: { ops: { type: 'string', default: '4000' }, rounds: { type: 'string', default: '5' } },
});
const OPS = Number(values.ops);
const ROUNDS = Number(values.rounds);
const CONCURRENCY = [1, 64];

async function measure(fn, concurrency) {
  const elu0 = performance.eventLoopUtilization();
  const t0 = performance.now();
  let started = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (started++ < OPS) await fn();
    }),
  );
  const wallMs = performance.now() - t0;
  const elu = performance.eventLoopUtilization(elu0);
  return { us: (wallMs * 1000) / OPS, mainUs: (elu.active * 1000) / OPS };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const f1 = (x) => x.toFixed(1);
const f2 = (x) => x.toFixed(2);

const cpu = cpus();
console.log('# @baton/verify: jose vs node:crypto\n');
console.log(`- command: node bench/verify/jose-vs-node-crypto.mjs --ops ${OPS} --rounds ${ROUNDS}`);
console.log(
  `- machine: ${cpu[0]?.model.trim()} x ${cpu.length} logical CPUs, ${Math.round(totalmem() / 2 ** 30)} GiB, ${osType()} ${release()}`,
);
console.log(
  `- node ${process.version}, jose ${(await import('jose/package.json', { with: { type: 'json' } })).default.version}, libuv threadpool ${process.env.UV_THREADPOOL_SIZE ?? 4}`,
);
console.log(`- ${OPS} calls per measurement, ${ROUNDS} rounds, variants interleaved within each round\n`);

// Yardstick: one loopback HTTP request (node:http server, fetch client, keep-alive) in the same
// process, so the per-call differences above can be weighed against the request they guard.
{
  const server = createServer((_req, res) => res.end('{}'));
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${server.address().port}/`;
  const get = async () => {
    await (await fetch(url)).text();
  };
  for (let i = 0; i < 200; i++) await get();
  const samples = [];
  for (let r = 0; r < ROUNDS; r++) samples.push(await measure(get, 1));
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  console.log(
    `Yardstick: one loopback HTTP request (server and client in this process), 1 in flight: ${f1(median(samples.map((x) => x.us)))} µs wall, ${f1(median(samples.map((x) => x.mainUs)))} µs main thread\n`,
  );
}

for (const alg of ['ES256', 'EdDSA']) {
  const { variants, close } = await verifyFixture(alg);
  for (const concurrency of CONCURRENCY) {
    const samples = Object.fromEntries(Object.keys(variants).map((k) => [k, []]));
    for (let r = 0; r < ROUNDS; r++) {
      for (const [name, fn] of Object.entries(variants)) samples[name].push(await measure(fn, concurrency));
    }
    const ratio = (a, b, key = 'us') => median(samples[a].map((x, i) => x[key] / samples[b][i][key]));
    console.log(`## ${alg}, ${concurrency} in flight\n`);
    console.log('| variant | wall µs/call (median) | main-thread µs/call (median) |');
    console.log('|---|---:|---:|');
    for (const name of Object.keys(variants)) {
      console.log(
        `| ${name} | ${f1(median(samples[name].map((x) => x.us)))} | ${f1(median(samples[name].map((x) => x.mainUs)))} |`,
      );
    }
    console.log('\nRatios (median over rounds of same-round ratios; > 1 means the first is slower):\n');
    console.log(
      `- jose / node-sync, wall: ${f2(ratio('jose', 'node-sync'))}; main thread: ${f2(ratio('jose', 'node-sync', 'mainUs'))}`,
    );
    console.log(
      `- jose / node-cb, wall: ${f2(ratio('jose', 'node-cb'))}; main thread: ${f2(ratio('jose', 'node-cb', 'mainUs'))}`,
    );
    console.log(
      `- package / jose (all other checks on top of the signature), wall: ${f2(ratio('package', 'jose'))}`,
    );
    const gain = median(
      samples.package.map((x, i) => (samples.jose[i].us - samples['node-sync'][i].us) / x.us),
    );
    console.log(
      `- share of package wall time a node-sync swap would save (jose − node-sync) / package: ${(gain * 100).toFixed(0)} %\n`,
    );
  }
  await close();
}
