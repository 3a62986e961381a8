import type {
  ClientRecord,
  RefreshTokenRecord,
  RevocationReason,
  SecurityEventRecord,
  SessionRecord,
  SigningKeyRecord,
  TrustedDeviceRecord,
  UserRecord,
} from './store.js';

/**
 * Row-to-record mapping shared by the SQL adapters. Both databases return
 * the same column names; the differences are absorbed here: BIGINT arrives
 * from pg as a string, and JSON columns arrive parsed from PostgreSQL (JSONB)
 * but as text from SQLite.
 */

/** A result row as a driver returns it. */
export type Row = Record<string, unknown>;

export const str = (v: unknown): string => v as string;
// BIGINT arrives as a string from pg (it may exceed 2^53); Baton's times and TTLs are well below that.
export const num = (v: unknown): number => Number(v);
export const optNum = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
export const optStr = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));
// PostgreSQL's JSONB arrives parsed; SQLite's TEXT (or a pg pool with custom type parsers) as text.
export const json = <T>(v: unknown): T => (typeof v === 'string' ? JSON.parse(v) : v) as T;

export function toUser(r: Row): UserRecord {
  return {
    id: str(r.id),
    email: str(r.email),
    passwordHash: str(r.password_hash),
    createdAt: num(r.created_at),
    disabledAt: optNum(r.disabled_at),
    passwordChangedAt: optNum(r.password_changed_at),
  };
}

export function toClient(r: Row): ClientRecord {
  return {
    id: str(r.id),
    name: str(r.name),
    type: r.type === 'confidential' ? 'confidential' : 'public',
    secretHash: optStr(r.secret_hash),
    allowedOrigins: json<string[]>(r.allowed_origins),
    allowedScopes: json<string[]>(r.allowed_scopes),
    audience: optStr(r.audience),
    accessTtl: optNum(r.access_ttl),
    refreshIdleTtl: optNum(r.refresh_idle_ttl),
    sessionMaxTtl: optNum(r.session_max_ttl),
    createdAt: num(r.created_at),
  };
}

export function toSession(r: Row, prefix = ''): SessionRecord {
  const g = (k: string) => r[prefix + k];
  return {
    id: str(g('id')),
    userId: str(g('user_id')),
    clientId: str(g('client_id')),
    scope: optStr(g('scope')),
    createdAt: num(g('created_at')),
    lastUsedAt: num(g('last_used_at')),
    idleExpiresAt: num(g('idle_expires_at')),
    expiresAt: num(g('expires_at')),
    userAgent: optStr(g('user_agent')),
    ip: optStr(g('ip')),
    revokedAt: optNum(g('revoked_at')),
    revokedReason: optStr(g('revoked_reason')) as RevocationReason | null,
    // Absent rather than null on unbound sessions: the member exists only where a binding does.
    ...(g('dpop_jkt') === null || g('dpop_jkt') === undefined ? {} : { dpopJkt: str(g('dpop_jkt')) }),
  };
}

export function toToken(r: Row, prefix = ''): RefreshTokenRecord {
  const g = (k: string) => r[prefix + k];
  return {
    id: str(g('id')),
    sessionId: str(g('session_id')),
    secretHash: str(g('secret_hash')),
    parentId: optStr(g('parent_id')),
    successorId: optStr(g('successor_id')),
    createdAt: num(g('created_at')),
    usedAt: optNum(g('used_at')),
  };
}

export function toDevice(r: Row): TrustedDeviceRecord {
  return {
    id: str(r.id),
    userId: str(r.user_id),
    secretHash: str(r.secret_hash),
    createdAt: num(r.created_at),
    lastUsedAt: num(r.last_used_at),
  };
}

export function toKey(r: Row): SigningKeyRecord {
  return {
    kid: str(r.kid),
    alg: r.alg === 'EdDSA' ? 'EdDSA' : 'ES256',
    privateJwk: str(r.private_jwk),
    publicJwk: str(r.public_jwk),
    createdAt: num(r.created_at),
    activatesAt: num(r.activates_at),
    retiredAt: optNum(r.retired_at),
  };
}

export function toEvent(r: Row): SecurityEventRecord {
  return {
    type: str(r.type) as SecurityEventRecord['type'],
    at: num(r.at),
    userId: optStr(r.user_id),
    sessionId: optStr(r.session_id),
    clientId: optStr(r.client_id),
    ip: optStr(r.ip),
    ...(r.detail === null || r.detail === undefined
      ? {}
      : { detail: json<SecurityEventRecord['detail']>(r.detail) }),
  };
}

export const SESSION_COLUMNS = [
  'id',
  'user_id',
  'client_id',
  'scope',
  'created_at',
  'last_used_at',
  'idle_expires_at',
  'expires_at',
  'user_agent',
  'ip',
  'revoked_at',
  'revoked_reason',
  'dpop_jkt',
];
export const TOKEN_COLUMNS = [
  'id',
  'session_id',
  'secret_hash',
  'parent_id',
  'successor_id',
  'created_at',
  'used_at',
];
export const prefixed = (alias: string, cols: string[]) =>
  cols.map((c) => `${alias}.${c} AS ${alias}_${c}`).join(', ');
