import type { IncomingMessage } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { BatonError } from '../core/errors.js';

/** A form body: each parameter with its value, or all values when it was repeated. */
export type FormBody = Record<string, string | string[]>;

/** Beyond this many bytes an oversized body is no longer drained but the connection is closed. */
const MAX_DRAIN = 16 * 1024 * 1024;
const MAX_DEPTH = 32;
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * Reads a body up to `limit` bytes. An oversized body is read to its end
 * and dropped before the 413 is sent: answering while the client is still
 * sending makes the server close the socket under it, and the client sees a
 * connection reset instead of the JSON error.
 */
function readBody(stream: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(stream.headers['content-length']);
    if (Number.isFinite(declared) && declared > MAX_DRAIN) {
      // Too big to be worth draining: refuse now; the connection will be closed.
      stream.resume();
      reject(new BatonError('payload_too_large', `The request body exceeds ${limit} bytes`));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    stream.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) chunks.push(chunk);
      else if (size > MAX_DRAIN) stream.destroy();
    });
    stream.on('end', () => {
      if (size > limit)
        reject(new BatonError('payload_too_large', `The request body exceeds ${limit} bytes`));
      else resolve(Buffer.concat(chunks, size));
    });
    stream.on('error', () => reject(new BatonError('invalid_request', 'The request body could not be read')));
  });
}

/** Strict UTF-8; without `stream`, every decode call stands alone, so one decoder serves all requests. */
const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

function decodeUtf8(bytes: Buffer): string {
  try {
    return UTF8.decode(bytes);
  } catch {
    throw new BatonError('invalid_request', 'The request body is not valid UTF-8');
  }
}

/** Refuses prototype-pollution keys and absurd nesting anywhere in a parsed JSON value. */
function assertSafe(value: unknown, depth: number): void {
  if (depth > MAX_DEPTH) throw new BatonError('invalid_request', 'The JSON body is nested too deeply');
  if (Array.isArray(value)) {
    for (const v of value) assertSafe(v, depth + 1);
  } else if (typeof value === 'object' && value !== null) {
    for (const [k, v] of Object.entries(value)) {
      if (FORBIDDEN_KEYS.has(k))
        throw new BatonError('invalid_request', 'The JSON body contains a forbidden key');
      assertSafe(v, depth + 1);
    }
  }
}

/** Parses a JSON body: UTF-8 only, an object at the top, no `__proto__`; empty counts as `{}`. */
export function parseJsonBody(bytes: Buffer): Record<string, unknown> {
  const text = decodeUtf8(bytes).trim();
  if (text === '') return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    // JSON.parse's message quotes the input: never pass it on.
    throw new BatonError('invalid_request', 'The request body is not valid JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new BatonError('invalid_request', 'The JSON body must be an object');
  }
  assertSafe(value, 0);
  return value as Record<string, unknown>;
}

/** Parses `application/x-www-form-urlencoded`, keeping repeated parameters visible (RFC 6749 §3.2 forbids them). */
export function parseFormBody(bytes: Buffer): FormBody {
  const text = decodeUtf8(bytes);
  const out: FormBody = Object.create(null);
  for (const [k, v] of new URLSearchParams(text)) {
    if (FORBIDDEN_KEYS.has(k))
      throw new BatonError('invalid_request', 'The form body contains a forbidden key');
    const prev = out[k];
    out[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
  }
  return { ...out };
}

/**
 * Replaces Fastify's body parsers with ours: JSON and form bodies only,
 * size-limited with draining, strict UTF-8, safe keys. Any other content
 * type is a 415.
 */
export function registerBodyParsers(app: FastifyInstance, limit: number): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', (_req, payload, done) => {
    // Parse inside the chain so a parse error rejects instead of escaping as an unhandled throw.
    readBody(payload, limit)
      .then(parseJsonBody)
      .then(
        (body) => done(null, body),
        (err: Error) => done(err, undefined),
      );
  });
  app.addContentTypeParser('application/x-www-form-urlencoded', (_req, payload, done) => {
    // Parse inside the chain so a parse error rejects instead of escaping as an unhandled throw.
    readBody(payload, limit)
      .then(parseFormBody)
      .then(
        (body) => done(null, body),
        (err: Error) => done(err, undefined),
      );
  });
}
