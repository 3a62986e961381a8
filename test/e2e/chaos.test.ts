import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { serviceAvailable } from './support/services.js';

// The shortened chaos run (`npm run chaos -- --quick`) as part of the e2e
// suite: three instances behind the fault-injecting balancer on SQLite and
// PostgreSQL, theft control, and the Chromium tabs. It asserts the run's own
// verdict: no spurious sign-out, failed calls within 0.5 %, no accepted
// replay, every theft detected.
const RUN = fileURLToPath(new URL('../chaos/run.mjs', import.meta.url));
const postgresUp = await serviceAvailable('PostgreSQL', 5432);

describe('chaos suite, quick run', () => {
  it('meets every bar under faults', { timeout: 180_000 }, async () => {
    const args = [RUN, '--quick', '--db', postgresUp ? 'both' : 'sqlite'];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      out += d.toString();
    });
    // Bounded: a hung run is killed, and then fails the test with what it printed.
    const timer = setTimeout(() => child.kill('SIGKILL'), 170_000);
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    clearTimeout(timer);
    expect(out).toMatch(/chaos: seed \d+/);
    expect({ code, out }).toMatchObject({ code: 0 });
  });
});
