import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';

const STORE = pathToFileURL(
  join(import.meta.dirname, '../../packages/server/dist/store/sqlite/sqlite-store.js'),
).href;

let dir: string | undefined;
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

describe('the SQLite checkpoint thread in a process of its own', () => {
  // In a test runner something else always keeps the event loop alive; a CLI
  // command or a script that closes the store and goes on has nothing else.
  it('close() is awaited to its end when nothing else keeps the process alive', () => {
    dir = mkdtempSync(join(tmpdir(), 'baton-ckpt-exit-'));
    const script = `
      import { readdirSync } from 'node:fs';
      import { createSqliteStore } from ${JSON.stringify(STORE)};
      const threads = () => readdirSync('/proc/self/task').length;
      const before = threads();
      const store = createSqliteStore({ filename: ${JSON.stringify(join(dir, 'baton.db'))}, checkpointThreadAfter: 0 });
      await store.migrate();
      await store.createUser({ id: 'u1', email: 'u1@example.com', passwordHash: 'h', createdAt: 1 });
      await new Promise((r) => setTimeout(r, 300));
      const during = threads();
      await store.close();
      console.log(JSON.stringify({ threadStarted: during > before, closed: true }));
    `;
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(JSON.parse(run.stdout.trim())).toEqual({ threadStarted: true, closed: true });
  });
});
