// `npm run demo`: the token flow, to watch in a browser. One process runs three things:
//   - Baton itself (the built server, SQLite in ./.baton-demo), with demo lifetimes short
//     enough to see tokens expire and rotate;
//   - a small notes API of its own, an Express app that checks access tokens offline with
//     @baton/verify (Baton's public keys, fetched once; no call to Baton per request);
//   - one origin in front of both (http://localhost:3000): /demo-api/* goes to the notes API,
//     everything else to Baton. The demo page's Content-Security-Policy lets it talk to its
//     own origin only, so the API sits behind that origin, as it would behind a gateway.
// Ctrl-C stops all three. Flags: node packages/server/scripts/demo.mjs --help
import { mkdirSync } from 'node:fs';
import { createServer as createHttpServer, request as httpRequest } from 'node:http';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { batonAuth, withAuth } from '@baton/verify/express';
import express from 'express';
import { loadServeConfig } from '../dist/cli/config.js';
import { openConfiguredStore } from '../dist/cli/startup.js';
import { createServer } from '../dist/http/app.js';

const USAGE = `Usage: npm run demo [-- --flag value ...]

Runs Baton with demo lifetimes, a notes API that verifies access tokens offline
with @baton/verify, and one origin in front of both; open the printed URL.

  --port N          the demo's origin, http://localhost:N (default 3000, env DEMO_PORT)
  --api-port N      the notes API's own port (default 3001, env DEMO_API_PORT)
  --access-ttl D    access-token lifetime (default 20s)
  --grace D         refresh-token reuse grace window (default 10s)
  --data DIR        folder of the demo's SQLite file (default ./.baton-demo)
  --help            this text

The lifetimes are deliberately short so that expiry and rotation happen while
you watch; \`npm start\` runs Baton with its normal ones (15 min access tokens).
`;

const { values: flags } = parseArgs({
  options: {
    port: { type: 'string' },
    'api-port': { type: 'string' },
    'access-ttl': { type: 'string' },
    grace: { type: 'string' },
    data: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (flags.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}

/** @param {string | undefined} text @param {number} fallback @param {string} name */
function port(text, fallback, name) {
  if (text === undefined || text === '') return fallback;
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 1 || n > 65535) {
    process.stderr.write(`demo: ${name}: expected a port number 1-65535 (got "${text}")\n`);
    process.exit(2);
  }
  return n;
}
const demoPort = port(flags.port ?? process.env['DEMO_PORT'], 3000, '--port');
const apiPort = port(flags['api-port'] ?? process.env['DEMO_API_PORT'], 3001, '--api-port');
const dataDir = resolve(flags.data ?? '.baton-demo');
mkdirSync(dataDir, { recursive: true });

const origin = `http://localhost:${demoPort}`;
let config;
try {
  config = loadServeConfig({
    BATON_PORT: '0', // Baton's own listener: any free port; people use the demo origin
    BATON_HOST: '127.0.0.1',
    BATON_ISSUER: origin,
    BATON_DATABASE_URL: `sqlite:${resolve(dataDir, 'baton.db')}`,
    BATON_ACCESS_TTL: flags['access-ttl'] ?? '20s',
    BATON_REUSE_GRACE: flags.grace ?? '10s',
    BATON_LOG_LEVEL: 'warn',
  });
} catch (error) {
  process.stderr.write(`demo: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(2);
}
// A short access lifetime is the point of the demo: say so below instead of warning about it.
for (const w of config.warnings.filter((w) => !w.startsWith('BATON_ACCESS_TTL outside')))
  process.stderr.write(`demo: warning: ${w}\n`);
const lifetimes = {
  accessTtl: Math.round(config.server.accessTtl / 1000),
  reuseGrace: Math.round(config.server.reuseGrace / 1000),
};

// --- Baton ------------------------------------------------------------------------------
const store = await openConfiguredStore(config.databaseUrl, true);
const baton = await createServer({ ...config.server, store });
await baton.listen({ port: 0, host: '127.0.0.1' });
const batonAddress = baton.server.address();
const batonPort = typeof batonAddress === 'object' && batonAddress ? batonAddress.port : 0;

// --- The notes API (a resource server of its own) ---------------------------------------
// Tokens name the demo origin as issuer and audience; the keys are fetched from Baton
// directly, once, then every token is checked locally.
const { requireAuth } = batonAuth({
  issuer: origin,
  audience: origin,
  jwksUri: `http://127.0.0.1:${batonPort}/.well-known/jwks.json`,
});
const api = express();
api.disable('x-powered-by');
api.get('/demo-api/info', (_req, res) => {
  res.json({ service: 'notes API (Baton demo)', verifies: 'offline, with @baton/verify', lifetimes });
});
api.get(
  '/demo-api/notes',
  requireAuth(),
  withAuth((req, res) => {
    res.set('cache-control', 'no-store').json({
      verified: 'offline',
      how: 'signature checked against Baton’s public keys (JWKS, cached); no call to Baton for this request',
      claims: req.auth,
      notes: [`Hello ${req.auth.sub}: this answer came from the notes API, not from Baton.`],
    });
  }),
);
const apiServer = await listen(createHttpServer(api), apiPort);

// --- One origin in front of both ----------------------------------------------------------
const front = createHttpServer((req, res) => {
  const toApi = req.url === '/demo-api' || req.url?.startsWith('/demo-api/');
  const upstream = httpRequest(
    {
      host: '127.0.0.1',
      port: toApi ? apiPort : batonPort,
      method: req.method,
      path: req.url,
      // Host and Origin pass through unchanged: Baton's CSRF checks compare them with the issuer.
      headers: req.headers,
    },
    (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.rawHeaders);
      answer.pipe(res);
    },
  );
  upstream.on('error', () => {
    if (!res.headersSent) res.writeHead(502, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: 'bad_gateway', error_description: 'The demo could not reach it' }));
  });
  req.pipe(upstream);
});
await listen(front, demoPort);

process.stdout.write(
  [
    `Baton demo: ${origin}/  (open it, then open a second tab)`,
    `  demo lifetimes: access token ${lifetimes.accessTtl} s, reuse grace ${lifetimes.reuseGrace} s (npm start uses 15 min and 10 s)`,
    `  Baton:     http://127.0.0.1:${batonPort} (also behind ${origin})`,
    `  notes API: http://localhost:${apiPort}/demo-api/notes (also behind ${origin}/demo-api/), verifies offline with @baton/verify`,
    `  data:      ${dataDir}`,
    'Ctrl-C stops it.',
    '',
  ].join('\n'),
);

/** @param {import('node:http').Server} server @param {number} p */
function listen(server, p) {
  return new Promise((resolvePromise, reject) => {
    server.once('error', (error) => {
      const inUse = /** @type {{ code?: string }} */ (error).code === 'EADDRINUSE';
      reject(new Error(inUse ? `port ${p} is in use: pick another with --port / --api-port` : String(error)));
    });
    server.listen(p, '127.0.0.1', () => resolvePromise(server));
  });
}

let closing = false;
async function shutdown() {
  if (closing) return;
  closing = true;
  process.stdout.write('Baton demo: stopping\n');
  front.closeAllConnections();
  apiServer.closeAllConnections();
  await Promise.all([
    new Promise((r) => front.close(r)),
    new Promise((r) => apiServer.close(r)),
    baton.close(),
  ]);
  await store.close();
  process.exit(0);
}
process.once('SIGINT', () => void shutdown());
process.once('SIGTERM', () => void shutdown());
