import { readFileSync } from 'node:fs';
import swagger from '@fastify/swagger';
import type { FastifyInstance, RouteOptions } from 'fastify';
import { BatonError, type BatonErrorCode } from '../core/errors.js';
import { CSRF_HEADER } from './cookies.js';
import { type ErrorSurface, renderError } from './error-catalogue.js';
import type { RouteErrorConfig } from './errors.js';
import { errorBody, type JsonSchema } from './openapi-shapes.js';

/** The route groups, as tags of the document. */
export type ApiTag = 'auth' | 'oauth' | 'discovery' | 'operations' | 'legacy' | 'web';

const TAGS: readonly { name: ApiTag; description: string }[] = [
  { name: 'auth', description: 'The first-party API: JSON bodies, token or cookie mode' },
  {
    name: 'oauth',
    description: 'OAuth 2.0 endpoints: form bodies, by the RFCs (RFC 6749, RFC 7009, RFC 7662)',
  },
  { name: 'discovery', description: 'Public documents: the JWKS and the authorization-server metadata' },
  { name: 'operations', description: 'Liveness, readiness, metrics and this document' },
  { name: 'legacy', description: 'The tutorial controller’s route, kept for apps migrating from it' },
  { name: 'web', description: 'The demo page and the client SDK it loads' },
];

/** The security schemes a route may name. */
export type SchemeName = 'bearer' | 'dpop' | 'clientBasic' | 'refreshCookie' | 'metricsToken';

/**
 * How a client may authenticate: client_secret_basic is the `clientBasic`
 * scheme; client_secret_post (RFC 6749 §2.3.1) has no OpenAPI scheme, so it
 * shows as the `client_id`/`client_secret` members of the request body.
 */
const SECURITY_SCHEMES: Readonly<Record<SchemeName, JsonSchema>> = {
  bearer: {
    type: 'http',
    scheme: 'bearer',
    bearerFormat: 'JWT',
    description: 'An access token (RFC 6750 §2.1), from the Authorization header only',
  },
  dpop: {
    type: 'apiKey',
    in: 'header',
    name: 'DPoP',
    description:
      'A DPoP proof (RFC 9449 §4): optional at login and on a first refresh, which then binds the session to its key; required on every refresh of a bound session. Answers carry DPoP-Nonce',
  },
  clientBasic: {
    type: 'http',
    scheme: 'basic',
    description:
      'A confidential client’s credentials (client_secret_basic, RFC 6749 §2.3.1). client_secret_post sends client_id and client_secret in the body instead',
  },
  refreshCookie: {
    type: 'apiKey',
    in: 'cookie',
    name: '__Secure-baton_rt',
    description: `Cookie mode: the refresh token in an HttpOnly cookie (path /auth); counts only with the ${CSRF_HEADER} header and a same-site Origin`,
  },
  metricsToken: {
    type: 'http',
    scheme: 'bearer',
    description: 'BATON_METRICS_TOKEN, when set; without it /metrics is open',
  },
};

/** The headers besides credentials that a route reads. */
export type DocumentedHeader = 'origin' | 'x-baton-csrf';

const HEADERS: Readonly<Record<DocumentedHeader, JsonSchema>> = {
  origin: {
    type: 'string',
    description:
      'Sent by browsers: must be an allowed origin (the server’s or the client’s), or the request is refused (access_denied)',
  },
  [CSRF_HEADER]: {
    type: 'string',
    description:
      'Cookie mode only: any non-empty value proves the request came from the page’s own script (CSRF)',
  },
};

/** One success response of a route. */
export interface DocumentedResponse {
  description: string;
  /** The body's schema; none for an empty body. */
  body?: JsonSchema;
  /** Default `application/json`. */
  contentType?: string;
  headers?: Readonly<Record<string, string>>;
}

/**
 * What a route adds to the document beyond its Fastify schema, under its
 * `config.openapi`: nothing here is seen by validation or serialisation, so
 * documenting a route cannot change how it answers.
 */
export interface RouteDoc {
  tag: ApiTag;
  summary: string;
  description?: string;
  /** Alternatives, each a set of schemes used together; `[]` is "no credentials". */
  security?: readonly (readonly SchemeName[])[];
  headers?: readonly DocumentedHeader[];
  /** Cookies the route reads besides the refresh cookie (a security scheme). */
  cookies?: Readonly<Record<string, JsonSchema>>;
  /** A form-encoded body (the /oauth/* routes read theirs by name, without a Fastify schema). */
  form?: { properties: Readonly<Record<string, JsonSchema>>; required?: readonly string[] };
  responses: Readonly<Record<number, DocumentedResponse>>;
  /** The error codes the route itself throws; the ones every route may answer are added. */
  errors: readonly BatonErrorCode[];
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The route's entry in `/openapi.json` (see {@link RouteDoc}). */
    openapi?: RouteDoc;
  }
}

/** A route's Fastify `config`: its error surface and its documentation. */
export interface DocumentedConfig extends RouteErrorConfig {
  openapi?: RouteDoc;
}

/** The success responses' headers, described once. */
const RESPONSE_HEADERS: Readonly<Record<string, string>> = {
  'cache-control': 'no-store on every token response and every error (RFC 6749 §5.1)',
  'dpop-nonce': 'The server’s current DPoP nonce, for the next proof (RFC 9449 §8)',
  'set-cookie': 'The refresh cookie (cookie mode) and the device cookie',
  'www-authenticate': 'The challenge (RFC 6750 §3, RFC 6749 §5.2)',
  'retry-after': 'Seconds to wait before trying again',
};

/** Where the route-independent errors come from. */
interface CommonErrors {
  /** Whether a path counts against the per-IP limit (429). */
  limited(url: string): boolean;
}

/** The errors a route may answer besides its own, from the hooks and parsers every request passes. */
function commonErrors(method: string, url: string, common: CommonErrors): BatonErrorCode[] {
  // A repeated single-valued header or a failed schema check; the drain refusal; an unexpected failure.
  const codes: BatonErrorCode[] = ['invalid_request', 'temporarily_unavailable', 'server_error'];
  if (common.limited(url)) codes.push('too_many_requests');
  if (method === 'POST') codes.push('payload_too_large', 'unsupported_media_type');
  return codes;
}

/** A response header as @fastify/swagger reads it: a JSON schema, its description moved out. */
const header = (description: string) => ({ type: 'string', description });

/** The error responses of a route, one per status, each naming the codes it carries. */
function errorResponses(codes: readonly BatonErrorCode[], surface: ErrorSurface): Record<string, JsonSchema> {
  const byStatus = new Map<number, { codes: Set<string>; headers: Set<string> }>();
  for (const code of codes) {
    const rendered = renderError(new BatonError(code, code, { retryAfter: 1 }), surface);
    const entry = byStatus.get(rendered.status) ?? { codes: new Set(), headers: new Set(['cache-control']) };
    entry.codes.add(rendered.body.error as string);
    if (rendered.headers['www-authenticate'] !== undefined) entry.headers.add('www-authenticate');
    if (rendered.status === 429 || rendered.status === 503) entry.headers.add('retry-after');
    byStatus.set(rendered.status, entry);
  }
  const out: Record<string, JsonSchema> = {};
  for (const [status, { codes: wire, headers }] of [...byStatus].sort(([a], [b]) => a - b)) {
    out[status] = {
      description: `Error: ${[...wire].join(', ')}`,
      headers: Object.fromEntries([...headers].map((h) => [h, header(RESPONSE_HEADERS[h]!)])),
      content: { 'application/json': { schema: errorBody([...wire], surface === 'legacy') } },
    };
  }
  return out;
}

/** A success response as @fastify/swagger reads it. */
function successResponse(r: DocumentedResponse): JsonSchema {
  return {
    description: r.description,
    ...(r.headers
      ? { headers: Object.fromEntries(Object.entries(r.headers).map(([h, d]) => [h, header(d)])) }
      : {}),
    ...(r.body
      ? { content: { [r.contentType ?? 'application/json']: { schema: r.body } } }
      : { type: 'null' }),
  };
}

/**
 * The document's view of one route: its Fastify schema (body, query string
 * and params exactly as validated, response schemas exactly as serialised)
 * plus its `config.openapi`.
 */
function describeRoute(route: RouteOptions, common: CommonErrors): Record<string, unknown> {
  const schema = (route.schema ?? {}) as Record<string, unknown>;
  const config = (route.config ?? {}) as DocumentedConfig;
  const doc = config.openapi;
  if (doc === undefined) return schema;
  const method = Array.isArray(route.method) ? route.method[0]! : route.method;
  const surface = config.surface ?? 'baton';
  const own = (schema.response ?? {}) as Record<string, JsonSchema>;
  const response: Record<string, JsonSchema> = errorResponses(
    [...new Set([...doc.errors, ...commonErrors(method, route.url, common)])],
    surface,
  );
  for (const [status, r] of Object.entries(doc.responses)) {
    const error = response[status] as {
      description: string;
      content: Record<string, { schema: JsonSchema }>;
    };
    // /readyz answers 503 itself (unready) and as every route does (draining): either body.
    response[status] =
      error === undefined || r.body === undefined
        ? successResponse(r)
        : successResponse({
            ...r,
            description: `${r.description}; or ${error.description}`,
            body: { oneOf: [r.body, error.content['application/json']!.schema] },
          });
  }
  // A response schema the route really serialises with is what it sends: it wins over the annotation.
  for (const [status, real] of Object.entries(own))
    response[status] = { description: doc.responses[Number(status)]?.description, ...real };
  return {
    ...schema,
    tags: [doc.tag],
    summary: doc.summary,
    ...(doc.description ? { description: doc.description } : {}),
    ...(doc.security
      ? { security: doc.security.map((set) => Object.fromEntries(set.map((name) => [name, []]))) }
      : {}),
    ...(doc.headers
      ? {
          headers: {
            type: 'object',
            properties: Object.fromEntries(doc.headers.map((h) => [h, HEADERS[h]])),
          },
        }
      : {}),
    ...(doc.cookies ? { cookies: { type: 'object', properties: doc.cookies } } : {}),
    ...(doc.form
      ? {
          body: {
            type: 'object',
            properties: doc.form.properties,
            ...(doc.form.required ? { required: [...doc.form.required] } : {}),
          },
          consumes: ['application/x-www-form-urlencoded'],
        }
      : {}),
    response,
  };
}

/** The part of the document {@link optionalBodies} walks. */
interface OpenApiObject {
  paths?: Record<
    string,
    Record<
      string,
      { requestBody?: { required?: boolean; content: Record<string, { schema?: { required?: unknown } }> } }
    >
  >;
}

/**
 * @fastify/swagger marks every request body required; a body without
 * required members may be left out (a POST without one validates as `{}`:
 * logout by access token, refresh by cookie).
 */
function optionalBodies(document: OpenApiObject): OpenApiObject {
  for (const operations of Object.values(document.paths ?? {})) {
    for (const operation of Object.values(operations)) {
      const body = operation.requestBody;
      if (body && Object.values(body.content).every((media) => media.schema?.required === undefined))
        body.required = false;
    }
  }
  return document;
}

/** This package's version, from the package.json beside `src/` and `dist/` alike. */
function packageVersion(): string {
  const url = new URL('../../package.json', import.meta.url);
  return (JSON.parse(readFileSync(url, 'utf8')) as { version: string }).version;
}

/** What the document needs from the app. */
export interface OpenApiOptions extends CommonErrors {
  issuer: string;
}

/**
 * Registers the OpenAPI 3.1 document, generated from the routes as they are
 * registered (so it must come before them), and serves it at
 * `GET /openapi.json`. The document describes the deployment, so caches may
 * keep it a few minutes.
 * @see https://spec.openapis.org/oas/v3.1.0
 */
export async function registerOpenApi(app: FastifyInstance, options: OpenApiOptions): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Baton',
        version: packageVersion(),
        description:
          'Sessions with rotating refresh tokens (reuse detection, grace window), RFC 9068 access tokens and the OAuth 2.0 token, revocation and introspection endpoints. Every error is `{error, error_description}` with Cache-Control: no-store.',
        license: { name: 'MIT', identifier: 'MIT' },
      },
      servers: [{ url: options.issuer.replace(/\/+$/, '') }],
      tags: TAGS.map((t) => ({ ...t })),
      components: { securitySchemes: { ...SECURITY_SCHEMES } as never },
    },
    // The issuer may name a path the proxy adds: the routes' own paths are what they are.
    stripBasePath: false,
    transform: ({ route, url }) => ({ schema: describeRoute(route, options) as never, url }),
    transformObject: (document) =>
      optionalBodies((document as { openapiObject: OpenApiObject }).openapiObject) as never,
  });

  app.get(
    '/openapi.json',
    {
      config: {
        openapi: {
          tag: 'operations',
          summary: 'This document (OpenAPI 3.1)',
          responses: {
            200: {
              description: 'The OpenAPI 3.1 document, generated from the route schemas',
              body: { type: 'object' },
              headers: { 'cache-control': 'public, max-age=300' },
            },
          },
          errors: [],
        },
      } satisfies DocumentedConfig,
    },
    async (_request, reply) =>
      reply.header('cache-control', 'public, max-age=300').type('application/json').send(app.swagger()),
  );
}
