import { Validator } from '@seriousme/openapi-schema-validator';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type TestApp, testApp } from '../../test/helpers.js';
import { ERROR_CATALOGUE } from './error-catalogue.js';

type Operation = {
  tags?: string[];
  summary?: string;
  security?: Record<string, string[]>[];
  parameters?: { in: string; name: string }[];
  requestBody?: { required: boolean; content: Record<string, unknown> };
  responses: Record<
    string,
    { content?: Record<string, { schema: { properties?: { error?: { enum?: string[] } } } }> }
  >;
};
type Document = {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
  components: { securitySchemes: Record<string, unknown> };
};

/** A Fastify route pattern as an OpenAPI path: `:id` → `{id}`, `*` → `{*}`. */
const openApiPath = (url: string) => url.replace(/:([A-Za-z0-9_]+)/g, '{$1}').replace(/\*$/, '{*}');

let t: TestApp;
let doc: Document;

beforeAll(async () => {
  t = await testApp();
  const res = await t.app.inject({ method: 'GET', url: '/openapi.json' });
  expect(res.statusCode).toBe(200);
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  expect(res.headers['cache-control']).toBe('public, max-age=300');
  doc = res.json() as Document;
});
afterAll(() => t.close());

describe('GET /openapi.json', () => {
  test('is a valid OpenAPI 3.1 document', async () => {
    expect(doc.openapi).toBe('3.1.0');
    const validator = new Validator();
    const result = await validator.validate(structuredClone(doc));
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(validator.version).toBe('3.1');
  });

  test('describes every route the app registered, with a tag and a summary', () => {
    const registered = t.app.batonRoutes.filter((r) => r.method !== 'HEAD');
    expect(registered.length).toBeGreaterThan(15);
    for (const { method, url } of registered) {
      const operation = doc.paths[openApiPath(url)]?.[method.toLowerCase()];
      expect(operation, `${method} ${url}`).toBeDefined();
      expect(operation!.tags?.length, `${method} ${url}`).toBe(1);
      expect(operation!.summary, `${method} ${url}`).toBeTruthy();
    }
    const documented = Object.values(doc.paths).reduce((n, ops) => n + Object.keys(ops).length, 0);
    expect(documented).toBe(registered.length);
  });

  test('every documented error status and code is one the catalogue answers', () => {
    const wire = new Map<string, Set<number>>();
    for (const [code, entry] of Object.entries(ERROR_CATALOGUE)) {
      const statuses = [
        entry.status,
        ...Object.values(entry.surfaces ?? {}).map((s) => s.status ?? entry.status),
      ];
      const set = wire.get(entry.error ?? code) ?? new Set();
      for (const s of statuses) set.add(s);
      wire.set(entry.error ?? code, set);
    }
    let errors = 0;
    for (const [path, operations] of Object.entries(doc.paths)) {
      for (const [method, operation] of Object.entries(operations)) {
        for (const [status, response] of Object.entries(operation.responses)) {
          if (Number(status) < 400 || path === '/readyz') continue;
          const codes = response.content?.['application/json']?.schema.properties?.error?.enum;
          expect(codes?.length, `${method} ${path} ${status}`).toBeGreaterThan(0);
          for (const code of codes!) {
            expect(wire.get(code)?.has(Number(status)), `${method} ${path} ${status} ${code}`).toBe(true);
            errors++;
          }
        }
      }
    }
    expect(errors).toBeGreaterThan(50);
  });

  test('the OAuth routes take forms, the auth routes JSON, with the client and bearer schemes', () => {
    const token = doc.paths['/oauth/token']!.post!;
    expect(Object.keys(token.requestBody!.content)).toEqual(['application/x-www-form-urlencoded']);
    expect(token.requestBody!.required).toBe(true);
    expect(token.security).toContainEqual({ clientBasic: [] });
    // RFC 6749 §5.2: a bad grant is a 400 here, a 401 on /auth/*.
    expect(token.responses['400']!.content!['application/json']!.schema.properties!.error!.enum).toContain(
      'invalid_grant',
    );
    const refresh = doc.paths['/auth/refresh']!.post!;
    expect(Object.keys(refresh.requestBody!.content)).toEqual(['application/json']);
    expect(refresh.requestBody!.required).toBe(false);
    expect(refresh.security).toContainEqual({ refreshCookie: [] });
    expect(refresh.responses['401']!.content!['application/json']!.schema.properties!.error!.enum).toContain(
      'invalid_grant',
    );
    expect(refresh.parameters?.map((p) => `${p.in}:${p.name}`)).toContain('header:x-baton-csrf');
    expect(doc.paths['/auth/me']!.get!.security).toEqual([{ bearer: [] }]);
    expect(doc.paths['/auth/sessions']!.get!.parameters?.map((p) => `${p.in}:${p.name}`)).toContain(
      'query:cursor',
    );
    expect(Object.keys(doc.components.securitySchemes).sort()).toEqual(
      ['bearer', 'clientBasic', 'dpop', 'metricsToken', 'refreshCookie'].sort(),
    );
  });

  test('documentation is not serialisation: the routes still send every member', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/healthz' });
    expect(res.json()).toEqual({ status: 'ok' });
    const meta = await t.app.inject({ method: 'GET', url: '/.well-known/oauth-authorization-server' });
    expect(Object.keys(meta.json())).toContain('dpop_signing_alg_values_supported');
  });
});
