// Writes docs/api-reference.md from the built server's GET /openapi.json (npm run docs:api).
// The unit test api-reference.test.ts fails when the committed file differs from this output.
import { writeFileSync } from 'node:fs';
import { buildApiReference } from '../dist/http/api-reference.js';

const target = new URL('../../../docs/api-reference.md', import.meta.url);
writeFileSync(target, await buildApiReference());
process.stdout.write(`Wrote ${target.pathname}\n`);
