#!/usr/bin/env node
// Summarises a V8 CPU profile (from `npm run bench -- --cpu-prof DIR`): where the busy time
// goes, by function (self time) and by package or source file (self time summed), so a
// change to the hot path can say what it bought.
//
//   node bench/profile-summary.mjs FILE.cpuprofile [--top N]
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { top: { type: 'string', default: '30' } },
});
if (positionals.length !== 1) {
  console.error('usage: node bench/profile-summary.mjs FILE.cpuprofile [--top N]');
  process.exit(2);
}
const profile = JSON.parse(readFileSync(positionals[0], 'utf8'));
const top = Number(values.top);
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const selfSamples = new Map();
for (const id of profile.samples) selfSamples.set(id, (selfSamples.get(id) ?? 0) + 1);

const IDLE = new Set(['(idle)', '(program)', '(garbage collector)']);
let total = 0;
let idle = 0;
const byFunction = new Map();
const byArea = new Map();
/** The package (node_modules/<name>), our own source file, or a V8/Node bucket. */
function areaOf(url, name) {
  if (!url) return name.startsWith('(') ? name : '(native)';
  const mod = url.match(/node_modules\/((?:@[^/]+\/)?[^/]+)/);
  if (mod) return mod[1];
  if (url.startsWith('node:')) return url.split('/')[0] === 'node:internal' ? 'node:internal' : url;
  const ours = url.match(/packages\/([^/]+)\/(?:dist|src)\/(.+)$/);
  if (ours) return `@baton/${ours[1]}:${ours[2]}`;
  return url.replace(/^file:\/\//, '');
}
for (const [id, n] of selfSamples) {
  const node = byId.get(id);
  const { functionName, url, lineNumber } = node.callFrame;
  const name = functionName || '(anonymous)';
  total += n;
  if (IDLE.has(name)) {
    if (name === '(idle)') idle += n;
  }
  const fkey = `${name} ${areaOf(url, name)}:${lineNumber + 1}`;
  byFunction.set(fkey, (byFunction.get(fkey) ?? 0) + n);
  const akey = areaOf(url, name);
  byArea.set(akey, (byArea.get(akey) ?? 0) + n);
}
const busy = total - idle;
const pct = (n) => `${((100 * n) / busy).toFixed(1).padStart(5)} %`;
const print = (title, map) => {
  console.log(`\n${title} (share of busy samples, ${busy} busy of ${total})`);
  for (const [k, n] of [...map]
    .filter(([k]) => k !== '(idle)' && !k.startsWith('(idle)'))
    .sort((a, b) => b[1] - a[1])
    .slice(0, top))
    console.log(`${pct(n)}  ${k}`);
};
// Inclusive: a function's own samples plus its callees' (each counted once per stack).
const parent = new Map();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const inclusive = new Map();
for (const [id, n] of selfSamples) {
  const seen = new Set();
  for (let at = id; at !== undefined; at = parent.get(at)) {
    const { functionName, url, lineNumber } = byId.get(at).callFrame;
    const name = functionName || '(anonymous)';
    if (IDLE.has(name) || name === '(root)') continue;
    const key = `${name} ${areaOf(url, name)}:${lineNumber + 1}`;
    if (seen.has(key)) continue;
    seen.add(key);
    inclusive.set(key, (inclusive.get(key) ?? 0) + n);
  }
}
print('By area', byArea);
print('By function', byFunction);
print('By function, inclusive of callees', inclusive);
