import { readFileSync } from 'node:fs';
import { expect, test } from 'vitest';
import { buildApiReference } from './api-reference.js';

const committed = new URL('../../../../docs/api-reference.md', import.meta.url);

test('docs/api-reference.md is what `npm run docs:api` generates from /openapi.json', async () => {
  const generated = await buildApiReference();
  expect(generated).toContain('### `POST /oauth/token`');
  expect(readFileSync(committed, 'utf8')).toBe(generated);
});
