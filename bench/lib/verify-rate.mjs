#!/usr/bin/env node
// `@baton/verify` verifications per second: createVerifier(...).verify(token) from the built
// package, 64 in flight, for ES256 and EdDSA (fixture shared with bench/verify). One JSON line.
import { performance } from 'node:perf_hooks';
import { verifyFixture } from '../verify/fixture.mjs';

const seconds = Number(process.argv[2] ?? 3);
const out = {};
for (const alg of ['ES256', 'EdDSA']) {
  const { variants, close } = await verifyFixture(alg);
  let n = 0;
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (performance.now() < end && n < 10_000_000) {
        await variants.package();
        n++;
      }
    }),
  );
  out[alg] = (n * 1000) / (performance.now() - t0);
  await close();
}
console.log(JSON.stringify(out));
