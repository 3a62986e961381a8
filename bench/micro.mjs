#!/usr/bin/env node
// Nanoseconds per call of the small helpers every refresh runs, in one build of the server:
// changes to them are worth 1-2 µs each, far below what the rotation benchmark or even
// bench/instructions.mjs can resolve on this machine, so they are measured here, call by call.
// Compare two builds by running it on each, alternating, pinned to one core:
//
//   npm run build && taskset -c 0 node bench/micro.mjs [--dist DIR] [--calls 200000]
//
// DIR is a build of packages/server (default: packages/server/dist); a copy of an older
// build must sit inside this checkout (or next to a node_modules) so its imports resolve.
import { generateKeyPairSync, sign } from 'node:crypto';
import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    dist: { type: 'string', default: fileURLToPath(new URL('../packages/server/dist', import.meta.url)) },
    calls: { type: 'string', default: '200000' },
  },
});
const dist = pathToFileURL(`${resolve(values.dist)}/`);
const calls = Number(values.calls);
const load = (path) => import(new URL(path, dist).href);
const { parseRefreshToken, newRefreshToken } = await load('core/refresh-token.js');
const { toLowS } = await load('core/access-token.js');
const { timedStore } = await load('store/timed-store.js');
const { parseJsonBody } = await load('http/body-parsers.js');

/** Best of three rounds (after one warm-up round) of `calls` calls, in ns per call; awaits only when `f` is async. */
async function time(f, { async = false } = {}) {
  let best = Number.POSITIVE_INFINITY;
  for (let round = 0; round < 4; round++) {
    const start = process.hrtime.bigint();
    if (async) for (let i = 0; i < calls; i++) await f(i);
    else for (let i = 0; i < calls; i++) f(i);
    const ns = Number(process.hrtime.bigint() - start) / calls;
    if (round > 0) best = Math.min(best, ns);
  }
  return best;
}

const tokens = Array.from({ length: 1024 }, () => newRefreshToken().token);
const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
// Raw signatures, half of them high-s: what toLowS gets on the signing path.
const signatures = Array.from({ length: 256 }, (_, i) =>
  sign('sha256', Buffer.from(`input ${i}`), { key: privateKey, dsaEncoding: 'ieee-p1363' }),
);
const store = timedStore(
  {
    dialect: 'bench',
    async findRefreshTokenToRotate(id) {
      return id;
    },
    async rotate(w) {
      return w;
    },
    async close() {},
  },
  () => {},
);
const bodies = tokens.map((t) => Buffer.from(JSON.stringify({ refresh_token: t })));

let sink;
const results = {
  'parseRefreshToken (a well-formed token)': await time((i) => {
    sink = parseRefreshToken(tokens[i & 1023]);
  }),
  'toLowS (raw P-256 signatures, about half high-s)': await time((i) => {
    sink = toLowS(signatures[i & 255]);
  }),
  'timed store call, awaited (two methods, alternating)': await time(
    (i) => (i & 1 ? store.rotate(i) : store.findRefreshTokenToRotate(i)),
    { async: true },
  ),
  'parseJsonBody (a refresh request body)': await time((i) => {
    sink = parseJsonBody(bodies[i & 1023]);
  }),
};
if (sink === Symbol.for('never')) console.log(sink);
console.log(`${values.dist} (${calls} calls per round, best of 3 rounds)`);
for (const [name, ns] of Object.entries(results)) console.log(`  ${ns.toFixed(0).padStart(6)} ns  ${name}`);
