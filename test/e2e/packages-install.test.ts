import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from './support/baton.js';

// What a new user does: pack the three packages, install the tarballs into a
// fresh project outside the repository, and run the README's snippets as
// written. The snippets are read from README.md between `<!-- snippet: NAME -->`
// and `<!-- /snippet -->`, so the README cannot drift from what is tested.

const root = fileURLToPath(new URL('../../', import.meta.url));
const TSC = join(root, 'node_modules/typescript/bin/tsc');
// npm install from local tarballs plus third-party packages from the registry
// (the npm cache is reused); better-sqlite3 compiles its native module here.
const INSTALL_TIMEOUT_MS = 8 * 60_000;

/** The README's runnable snippets, by name: exactly the text inside their code fences. */
function readmeSnippets(): Map<string, string> {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const found = new Map<string, string>();
  const re = /<!-- snippet: ([\w-]+) -->\n```\w+\n([\s\S]*?)```\n<!-- \/snippet -->/g;
  for (const m of readme.matchAll(re)) found.set(m[1]!, m[2]!);
  return found;
}

function snippet(name: string): string {
  const text = snippets.get(name);
  if (text === undefined) throw new Error(`README.md has no <!-- snippet: ${name} --> block`);
  return text;
}

function run(cmd: string, args: string[], cwd: string, timeout = 120_000) {
  const res = spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout, env: { ...process.env, CI: 'true' } });
  return {
    status: res.status,
    output: `${res.stdout ?? ''}${res.stderr ?? ''}${res.error ? String(res.error) : ''}`,
  };
}

/** A child process in its own process group, so that `npx`'s own child goes with it. */
interface Proc {
  child: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

function start(cmd: string, args: string[], cwd: string, env: Record<string, string>): Proc {
  const child = spawn(cmd, args, {
    cwd,
    env: { ...process.env, ...env },
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    child,
    output: () => out,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
      process.kill(-child.pid, 'SIGTERM');
      const timer = setTimeout(() => child.pid !== undefined && process.kill(-child.pid, 'SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

async function waitFor(url: string, proc: Proc): Promise<Response> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (proc.child.exitCode !== null)
      throw new Error(`exited with ${proc.child.exitCode}:\n${proc.output()}`);
    try {
      return await fetch(url);
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${url} did not answer within 30 s:\n${proc.output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const snippets = readmeSnippets();
let work = '';
let app = '';
let installOutput = '';
const procs: Proc[] = [];

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'baton-packages-'));
  const tarballs = join(work, 'baton-packages');
  app = join(work, 'app');
  mkdirSync(app);
  mkdirSync(tarballs);
  const pack = run(
    'npm',
    [
      'pack',
      '--pack-destination',
      tarballs,
      '-w',
      '@baton/client',
      '-w',
      '@baton/verify',
      '-w',
      '@baton/server',
    ],
    root,
  );
  expect(pack.status, pack.output).toBe(0);
  const files = readdirSync(tarballs).sort();
  expect(files).toEqual(['baton-client-0.1.0.tgz', 'baton-server-0.1.0.tgz', 'baton-verify-0.1.0.tgz']);

  // The app's package.json is the README's, verbatim, plus a name.
  const pkg = {
    name: 'baton-readme-app',
    version: '1.0.0',
    private: true,
    ...JSON.parse(snippet('app-package-json')),
  };
  writeFileSync(join(app, 'package.json'), `${JSON.stringify(pkg, null, 2)}\n`);
  // Third-party packages at the ranges this repository uses, so the npm cache has them.
  const dev = (
    JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
      devDependencies: Record<string, string>;
    }
  ).devDependencies;
  const install = run(
    'npm',
    [
      'install',
      '--no-audit',
      '--no-fund',
      '--prefer-offline',
      ...files.map((f) => join(tarballs, f)),
      `express@${dev['express']}`,
      `@types/express@${dev['@types/express']}`,
      `@types/node@${dev['@types/node']}`,
    ],
    app,
    INSTALL_TIMEOUT_MS,
  );
  installOutput = install.output;
  expect(install.status, install.output).toBe(0);
}, INSTALL_TIMEOUT_MS + 60_000);

afterAll(async () => {
  for (const p of procs) await p.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('the packages, installed from their tarballs into a fresh project', () => {
  it('install without an EBADENGINE warning, and the server uses the client tarball installed beside it', () => {
    expect(installOutput).not.toContain('EBADENGINE');
    const installed = (p: string) =>
      JSON.parse(readFileSync(join(app, 'node_modules', p, 'package.json'), 'utf8'));
    expect(installed('@baton/client').version).toBe('0.1.0');
    expect(installed('@baton/verify').version).toBe('0.1.0');
    expect(installed('@baton/server').dependencies['@baton/client']).toBe('0.1.0');
    // One copy, the tarball's: no second @baton/client fetched for the server.
    expect(existsSync(join(app, 'node_modules/@baton/server/node_modules/@baton/client'))).toBe(false);
    expect(existsSync(join(app, 'node_modules/.bin/baton'))).toBe(true);
  });

  const modes = [
    { resolution: 'node16', module: 'node16' },
    { resolution: 'nodenext', module: 'nodenext' },
    { resolution: 'bundler', module: 'esnext' },
    // The old `node` (node10) mode ignores `exports`; typesVersions points it at the same types.
    // (Its users have esModuleInterop on, which express's default import needs there.)
    { resolution: 'node', module: 'es2022', esModuleInterop: true },
  ];
  for (const { resolution, module, esModuleInterop = false } of modes) {
    it(`the README's TypeScript snippets type-check under strict with moduleResolution ${resolution}`, () => {
      const dir = join(app, `tsc-${resolution}`);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'api.ts'), snippet('express-api'));
      writeFileSync(join(dir, 'client.ts'), snippet('node-client'));
      writeFileSync(join(dir, 'browser.ts'), snippet('browser'));
      const base = {
        strict: true,
        noEmit: true,
        target: 'es2022',
        module,
        moduleResolution: resolution,
        esModuleInterop,
      };
      const configs = {
        'tsconfig.node.json': {
          compilerOptions: { ...base, lib: ['es2022'], types: ['node'] },
          files: ['api.ts', 'client.ts'],
        },
        'tsconfig.browser.json': {
          compilerOptions: { ...base, lib: ['es2022', 'dom'], types: [] },
          files: ['browser.ts'],
        },
      };
      for (const [file, config] of Object.entries(configs)) {
        writeFileSync(join(dir, file), JSON.stringify(config));
        const tsc = run(process.execPath, [TSC, '-p', file], dir);
        expect(tsc.output).toBe('');
        expect(tsc.status).toBe(0);
      }
    }, 120_000);
  }

  it('the type of req.auth is what makes the Express snippet type-check: without withAuth strict refuses req.auth.sub', () => {
    const dir = join(app, 'tsc-without-with-auth');
    mkdirSync(dir, { recursive: true });
    const api = snippet('express-api');
    const unwrapped = api.replace(
      'withAuth((req, res) => res.json({ user: req.auth.sub }))',
      '(req, res) => res.json({ user: req.auth.sub })',
    );
    expect(unwrapped).not.toBe(api);
    writeFileSync(join(dir, 'api.ts'), unwrapped);
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          strict: true,
          noEmit: true,
          target: 'es2022',
          module: 'nodenext',
          moduleResolution: 'nodenext',
          types: ['node'],
        },
        files: ['api.ts'],
      }),
    );
    const tsc = run(process.execPath, [TSC, '-p', 'tsconfig.json'], dir);
    expect(tsc.status).not.toBe(0);
    expect(tsc.output).toContain("'req.auth' is possibly 'undefined'");
  }, 120_000);

  it('the README runs as written: the installed server, the Express API on another port, the Node client calling it', async () => {
    const batonPort = await freePort();
    const apiPort = await freePort();
    const batonUrl = `http://localhost:${batonPort}`;
    const apiUrl = `http://localhost:${apiPort}`;
    const serve = snippet('serve').trim();
    const server = start('sh', ['-c', serve], app, {
      BATON_PORT: String(batonPort),
      BATON_HOST: '127.0.0.1',
      BATON_DATABASE_URL: `sqlite:${join(work, 'baton.db')}`,
      BATON_LOG_LEVEL: 'warn',
    });
    procs.push(server);
    expect((await waitFor(`http://127.0.0.1:${batonPort}/healthz`, server)).status).toBe(200);
    // The issuer the snippets default to is http://localhost:<port>, as `baton serve` prints.
    const meta = (await (await fetch(`${batonUrl}/.well-known/oauth-authorization-server`)).json()) as {
      issuer: string;
    };
    expect(meta.issuer).toBe(batonUrl);

    const registered = await fetch(`${batonUrl}/auth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: 'ada@example.com', password: 'correct horse battery' }),
    });
    expect(registered.status).toBe(201);
    const { user } = (await registered.json()) as { user: { id: string } };

    writeFileSync(join(app, 'api.mjs'), snippet('express-api'));
    const api = start(process.execPath, ['api.mjs'], app, { BATON_URL: batonUrl, PORT: String(apiPort) });
    procs.push(api);
    const anonymous = await waitFor(`${apiUrl}/api/me`, api);
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('www-authenticate')).toMatch(/^Bearer/);

    const home = join(work, 'home');
    const env = { ...process.env, BATON_URL: batonUrl, API_URL: apiUrl, HOME: home };
    writeFileSync(join(app, 'client.mjs'), snippet('node-client'));
    const client = spawnSync(process.execPath, ['client.mjs'], {
      cwd: app,
      env,
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(client.stderr).toBe('');
    expect(client.status).toBe(0);
    expect(client.stdout.trim()).toBe(`{ user: '${user.id}' }`);
    // The session the snippet kept, in the file storage it named.
    expect(existsSync(join(home, '.config/mytool/session.json'))).toBe(true);

    // And the README's reason for tokenOrigins: without it the client refuses to send the token to the API.
    const node = snippet('node-client');
    const withoutOrigins = node.replace(/^ {2}tokenOrigins: .*\n/m, '');
    expect(withoutOrigins).not.toBe(node);
    writeFileSync(join(app, 'client-without-origins.mjs'), withoutOrigins);
    const refused = spawnSync(process.execPath, ['client-without-origins.mjs'], {
      cwd: app,
      env: { ...env, HOME: join(work, 'home2') },
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toContain(`${apiUrl} is not baseUrl's origin or one of tokenOrigins`);
  }, 120_000);
});
