#!/usr/bin/env node
// What the password cost allows: Argon2id verifications per second on one core, with Baton's
// parameters (m=19456 KiB, t=2, p=1), one at a time. Prints one JSON line.
import { performance } from 'node:perf_hooks';
import { hash, verify } from '@node-rs/argon2';

const seconds = Number(process.argv[2] ?? 3);
const options = { algorithm: 2, memoryCost: 19_456, timeCost: 2, parallelism: 1 }; // 2 = Argon2id
const phc = await hash('bench-password-long-enough', options);
for (let i = 0; i < 3; i++) await verify(phc, 'bench-password-long-enough');
let n = 0;
const t0 = performance.now();
const end = t0 + seconds * 1000;
while (performance.now() < end && n < 100_000) {
  if (!(await verify(phc, 'bench-password-long-enough'))) throw new Error('verify failed');
  n++;
}
console.log(JSON.stringify({ verifiesPerS: (n * 1000) / (performance.now() - t0), n }));
