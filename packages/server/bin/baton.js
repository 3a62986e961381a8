#!/usr/bin/env node
// The `baton` command. A committed file rather than dist/cli/index.js itself:
// npm links a bin only if its file exists at install time, and in this
// repository dist/ is built after `npm ci` links the workspace.
import { existsSync } from 'node:fs';

const cli = new URL('../dist/cli/index.js', import.meta.url);
if (!existsSync(cli)) {
  process.stderr.write('baton: the CLI is not built yet: run `npm run build` first\n');
  process.exit(1);
}
await import(cli.href);
