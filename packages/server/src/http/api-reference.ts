import { openStore } from '../store/open-store.js';
import { createServer } from './app.js';

/** A JSON schema as the reference reads it. */
interface Schema {
  type?: string | string[];
  enum?: unknown[];
  description?: string;
  format?: string;
  maxLength?: number;
  pattern?: string;
  required?: string[];
  properties?: Record<string, Schema>;
  items?: Schema;
  oneOf?: Schema[];
}

interface Operation {
  tags?: string[];
  summary?: string;
  description?: string;
  security?: Record<string, string[]>[];
  parameters?: { in: string; name: string; required?: boolean; description?: string; schema?: Schema }[];
  requestBody?: { required?: boolean; content: Record<string, { schema?: Schema }> };
  responses: Record<
    string,
    { description?: string; headers?: Record<string, unknown>; content?: Record<string, { schema?: Schema }> }
  >;
}

/** The parts of an OpenAPI 3.1 document the reference renders. */
export interface OpenApiDocument {
  info: { title: string; version: string };
  tags?: { name: string; description?: string }[];
  paths: Record<string, Record<string, Operation>>;
  components?: {
    securitySchemes?: Record<
      string,
      { type: string; scheme?: string; in?: string; name?: string; description?: string }
    >;
  };
}

/** Table cells hold no pipes or line breaks. */
const cell = (text: string | undefined) => (text ?? '').replaceAll('|', '\\|').replaceAll('\n', ' ');

function typeOf(schema: Schema | undefined): string {
  if (!schema) return '';
  if (schema.oneOf) return schema.oneOf.map(typeOf).join(' or ');
  if (schema.enum) return schema.enum.map((v) => `\`${JSON.stringify(v)}\``).join(', ');
  const type = Array.isArray(schema.type) ? schema.type.join(' or ') : (schema.type ?? 'any');
  if (type === 'array') return `array of ${typeOf(schema.items)}`;
  const limits = [
    schema.format,
    schema.maxLength !== undefined ? `≤ ${schema.maxLength} chars` : undefined,
    schema.pattern ? `\`${schema.pattern}\`` : undefined,
  ].filter(Boolean);
  return limits.length > 0 ? `${type} (${limits.join(', ')})` : type;
}

function membersTable(schema: Schema): string[] {
  const required = new Set(schema.required ?? []);
  return [
    '| member | type | required | description |',
    '|---|---|---|---|',
    ...Object.entries(schema.properties ?? {}).map(
      ([name, s]) =>
        `| \`${name}\` | ${cell(typeOf(s))} | ${required.has(name) ? 'yes' : 'no'} | ${cell(s.description)} |`,
    ),
  ];
}

/** What a success or error body holds, in one cell. */
function bodyCell(content: Record<string, { schema?: Schema }> | undefined): string {
  const [type, media] = Object.entries(content ?? {})[0] ?? [];
  if (type === undefined) return 'empty';
  const schema = media?.schema;
  const members = schema?.oneOf ?? [schema];
  const names = members.map((s) =>
    Object.keys(s?.properties ?? {})
      .map((n) => `\`${n}\``)
      .join(', '),
  );
  const listed = names.filter(Boolean).join(' or ');
  return listed === '' ? `\`${type}\`` : `\`${type}\`: ${listed}`;
}

function securityLine(security: Record<string, string[]>[] | undefined): string | undefined {
  if (!security) return undefined;
  const ways = security.map((alt) => {
    const names = Object.keys(alt);
    return names.length === 0 ? 'none' : names.map((n) => `\`${n}\``).join(' + ');
  });
  return `Credentials: ${ways.join(', or ')}.`;
}

function renderOperation(method: string, path: string, op: Operation): string[] {
  const lines = [`### \`${method.toUpperCase()} ${path}\``, '', cell(op.summary), ''];
  if (op.description) lines.push(op.description, '');
  const security = securityLine(op.security);
  if (security) lines.push(security, '');
  if (op.parameters?.length) {
    lines.push('| parameter | in | type | required | description |', '|---|---|---|---|---|');
    for (const p of op.parameters)
      lines.push(
        `| \`${p.name}\` | ${p.in} | ${cell(typeOf(p.schema))} | ${p.required ? 'yes' : 'no'} | ${cell(p.description)} |`,
      );
    lines.push('');
  }
  for (const [type, media] of Object.entries(op.requestBody?.content ?? {})) {
    const optional = op.requestBody?.required === false ? ', optional' : '';
    lines.push(`Request body (\`${type}\`${optional}):`, '', ...membersTable(media.schema ?? {}), '');
  }
  lines.push('| status | description | body |', '|---|---|---|');
  for (const [status, r] of Object.entries(op.responses))
    lines.push(`| ${status} | ${cell(r.description)} | ${cell(bodyCell(r.content))} |`);
  lines.push('');
  return lines;
}

/**
 * The OpenAPI document as markdown: the security schemes, then one section
 * per tag with a table per route. `docs/api-reference.md` is this, written
 * by `npm run docs:api`.
 */
export function renderApiReference(document: OpenApiDocument): string {
  const lines = [
    `# HTTP API reference (${document.info.title} ${document.info.version})`,
    '',
    '<!-- Generated from GET /openapi.json by `npm run docs:api`: do not edit by hand. -->',
    '',
    'Every route as the server describes itself at `GET /openapi.json` (OpenAPI 3.1). What the',
    'routes mean and how to use them is in [http-api.md](http-api.md) and [oauth.md](oauth.md).',
    'Every error body is `{"error": "<code>", "error_description": "<text>"}` with',
    '`Cache-Control: no-store`; the codes each status carries are listed per route.',
    '',
    '## Credentials',
    '',
    '| scheme | kind | description |',
    '|---|---|---|',
  ];
  for (const [name, s] of Object.entries(document.components?.securitySchemes ?? {})) {
    const kind = s.type === 'http' ? `HTTP ${s.scheme}` : `${s.type} in ${s.in} \`${s.name}\``;
    lines.push(`| \`${name}\` | ${kind} | ${cell(s.description)} |`);
  }
  lines.push('');
  for (const tag of document.tags ?? []) {
    lines.push(`## ${tag.name}`, '', tag.description ?? '', '');
    for (const [path, operations] of Object.entries(document.paths)) {
      for (const [method, op] of Object.entries(operations))
        if (op.tags?.includes(tag.name)) lines.push(...renderOperation(method, path, op));
    }
  }
  return `${lines.join('\n').trimEnd()}\n`;
}

/** Builds a throwaway server (in-memory SQLite) and renders its document. */
export async function buildApiReference(): Promise<string> {
  const store = await openStore('sqlite::memory:');
  try {
    await store.migrate();
    const app = await createServer({ store, issuer: 'http://localhost:3000', logger: false });
    try {
      const res = await app.inject({ method: 'GET', url: '/openapi.json' });
      return renderApiReference(res.json() as OpenApiDocument);
    } finally {
      await app.close();
    }
  } finally {
    await store.close();
  }
}
