#!/usr/bin/env node
// Rotations through Baton's token service and SQLite store alone, without HTTP: with the
// full `npm run bench` figure (same machine, same moment) it splits a refresh's cost into
// core + store and everything around them (HTTP parsing, routing, validation, writing).
//
//   npm run build && node bench/core-rotation.mjs [concurrency=16] [refreshes per session=1500]
//
// BATON_DIST=DIR runs another build (a copy of packages/server/dist), to compare two builds
// in alternation on one machine.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCoreService } from './lib/core-service.mjs';

const concurrency = Number(process.argv[2] ?? 16);
const perSession = Number(process.argv[3] ?? 1500);
const dir = mkdtempSync(join(tmpdir(), 'baton-core-'));
const { store, service, tokens } = await startCoreService(join(dir, 'baton.db'), concurrency);

async function chain(i, n) {
  for (let k = 0; k < n; k++) tokens[i] = (await service.refresh({ refreshToken: tokens[i] })).refreshToken;
}
async function measure(label, n) {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(tokens.map((_, i) => chain(i, n)));
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const ops = n * concurrency;
  console.log(
    `${label}: ${ops} rotations, ${((ops * 1000) / ms).toFixed(0)} rot/s, ${((cpu.user + cpu.system) / ops).toFixed(0)} µs CPU per rotation`,
  );
}
await measure('warm-up', Math.ceil(perSession / 5));
await measure(`c=${concurrency}`, perSession);
await store.close();
rmSync(dir, { recursive: true, force: true });
