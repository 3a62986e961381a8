import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { BatonError } from '../../core/errors.js';
import type { RouteDoc } from '../openapi.js';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
};

/** The demo page folder (`packages/server/web`), the same from `src/` and `dist/`. */
const WEB_ROOT = fileURLToPath(new URL('../../../web/', import.meta.url));

function clientRoot(): string | null {
  try {
    return dirname(createRequire(import.meta.url).resolve('@baton/client'));
  } catch {
    return null;
  }
}

const PLACEHOLDER = `<!doctype html><meta charset="utf-8"><title>Baton</title>
<h1>Baton</h1><p>The token service is running. The demo page has not been built into this copy.</p>`;

// The demo page loads only its own scripts and talks only to this origin.
const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

async function sendFile(reply: FastifyReply, root: string, relative: string): Promise<FastifyReply> {
  const base = resolve(root);
  const file = resolve(join(base, relative));
  // Refuse anything that escapes the folder (`..`, encoded or not).
  if (!file.startsWith(base + sep)) throw new BatonError('not_found', 'Not found');
  const type = TYPES[extname(file)];
  if (!type) throw new BatonError('not_found', 'Not found');
  let body: Buffer;
  try {
    body = await readFile(file);
  } catch {
    throw new BatonError('not_found', 'Not found');
  }
  return reply
    .header('content-type', type)
    .header('cache-control', 'no-cache')
    .header('content-security-policy', CSP)
    .send(body);
}

/** A demo-page route's `/openapi.json` entry. */
const page = (summary: string, description: string): { config: { openapi: RouteDoc } } => ({
  config: {
    openapi: {
      tag: 'web',
      summary,
      responses: {
        200: {
          description,
          body: { type: 'string' },
          contentType: 'text/html; charset=utf-8',
          headers: { 'content-security-policy': 'Only its own scripts, styles and origin' },
        },
      },
      errors: ['not_found'],
    },
  },
});

/** `GET /` (the demo page), `/web/*` (its assets) and `/web/client/*` (the built client SDK). */
export function registerWebRoutes(app: FastifyInstance): void {
  const client = clientRoot();
  app.get(
    '/',
    page('The demo page', 'The demo page (or a placeholder when not built)'),
    async (_request, reply) => {
      try {
        return await sendFile(reply, WEB_ROOT, 'index.html');
      } catch {
        return reply
          .header('content-type', TYPES['.html']!)
          .header('content-security-policy', CSP)
          .send(PLACEHOLDER);
      }
    },
  );
  app.get<{ Params: { '*': string } }>(
    '/web/client/*',
    page('The built client SDK, for the demo page', 'A module of @baton/client (JavaScript or a source map)'),
    async (request, reply) => {
      if (!client) throw new BatonError('not_found', 'The client SDK is not built');
      return sendFile(reply, client, request.params['*']);
    },
  );
  app.get<{ Params: { '*': string } }>(
    '/web/*',
    page('The demo page’s assets', 'A file of the demo page (script, style, image)'),
    async (request, reply) => sendFile(reply, WEB_ROOT, request.params['*']),
  );
}
