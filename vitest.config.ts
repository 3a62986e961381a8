import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const src = (p: string) => fileURLToPath(new URL(p, import.meta.url));

// Tests import workspace packages from source so `vitest` needs no build;
// suites that spawn the CLI use the build that `npm test` makes first. Exact
// matches, so a subpath export (`@baton/verify/express`) maps to its own file.
const alias = [
  { find: /^@baton\/client$/, replacement: src('./packages/client/src/index.ts') },
  { find: /^@baton\/client\/file-storage$/, replacement: src('./packages/client/src/file-storage.ts') },
  { find: /^@baton\/verify$/, replacement: src('./packages/verify/src/index.ts') },
  { find: /^@baton\/verify\/express$/, replacement: src('./packages/verify/src/express.ts') },
  { find: /^@baton\/verify\/fastify$/, replacement: src('./packages/verify/src/fastify.ts') },
  { find: /^@baton\/server$/, replacement: src('./packages/server/src/index.ts') },
];

export default defineConfig({
  resolve: { alias },
  test: {
    reporters: ['default', './test/summary-reporter.ts'],
    projects: [
      {
        resolve: { alias },
        test: {
          name: 'unit',
          include: ['packages/*/src/**/*.test.ts'],
          environment: 'node',
        },
      },
      {
        resolve: { alias },
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts', 'packages/*/test/**/*.test.ts'],
          environment: 'node',
          testTimeout: 60_000,
          hookTimeout: 60_000,
          // Browser and multi-process suites compete for two cores: run files one at a time.
          fileParallelism: false,
        },
      },
    ],
  },
});
