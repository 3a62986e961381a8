import { BatonError } from './errors.js';

/** Where a page of a user's sessions ends: the last session's position in the listing's order. */
export interface SessionPosition {
  lastUsedAt: number;
  id: string;
}

const DECODED = /^(0|[1-9]\d{0,15}):([A-Za-z0-9_-]{1,100})$/;
const ENCODED = /^[A-Za-z0-9_-]{1,200}$/;

/**
 * The opaque `cursor` of `GET /auth/sessions`: base64url of the position of
 * the page's last session. It is no secret and grants nothing: the listing
 * it continues is still only the caller's own sessions.
 */
export function encodeSessionCursor(position: SessionPosition): string {
  return Buffer.from(`${position.lastUsedAt}:${position.id}`).toString('base64url');
}

/** Reads a cursor made by {@link encodeSessionCursor}; anything else is `invalid_request`. */
export function decodeSessionCursor(cursor: unknown): SessionPosition {
  const bad = () => new BatonError('invalid_request', 'cursor is not a cursor this server issued');
  if (typeof cursor !== 'string' || !ENCODED.test(cursor)) throw bad();
  const m = DECODED.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  const lastUsedAt = Number(m?.[1]);
  if (!m || !Number.isSafeInteger(lastUsedAt)) throw bad();
  return { lastUsedAt, id: m[2]! };
}
