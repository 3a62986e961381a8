#!/usr/bin/env node
// The floor: the least a rotating-refresh-token server can do per refresh with the same
// guarantees, to show how much of Baton's cost is the job and how much is Baton.
// node:http + better-sqlite3 + Ed25519 (node:crypto KeyObject, synchronous sign). Opaque
// refresh tokens (256 random bits), stored only as SHA-256; rotation with reuse detection in
// two prepared statements in one transaction on the hot path. The successor of a token is
// HMAC(key, token), so a retry inside the grace window gets the same successor again without
// any plaintext being stored.
//
//   PORT=... DB_PATH=... [REUSE_GRACE_MS=10000] node bench/baselines/floor/server.mjs
//
// Setup only: `POST /session` opens a session without a password (logins are not measured).
import { createHash, createHmac, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { createServer } from 'node:http';
import Database from 'better-sqlite3';
import { readJson, send } from '../json-http.mjs';

const PORT = Number(process.env.PORT ?? 0);
const ISSUER = `http://127.0.0.1:${PORT}`;
const GRACE_MS = Number(process.env.REUSE_GRACE_MS ?? 10_000);
const ACCESS_TTL_S = 900;
const SESSION_TTL_MS = 30 * 86_400_000;
const MAX_BODY = 4096;

const { privateKey } = generateKeyPairSync('ed25519');
const successorKey = randomBytes(32);
const KID = randomBytes(8).toString('base64url');
const HEADER = Buffer.from(JSON.stringify({ alg: 'EdDSA', typ: 'at+jwt', kid: KID })).toString('base64url');

const db = new Database(process.env.DB_PATH ?? ':memory:');
db.pragma('journal_mode = WAL');
db.pragma('synchronous = NORMAL');
db.exec(`
  CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY, user_id TEXT NOT NULL, expires_at INTEGER NOT NULL, revoked_at INTEGER);
  CREATE TABLE IF NOT EXISTS tokens (
    hash BLOB PRIMARY KEY, session_id INTEGER NOT NULL, used_at INTEGER) WITHOUT ROWID;`);

// Hot path: statement 1 claims the token (the conditional update is the linearisation point:
// of two concurrent rotations exactly one sees used_at IS NULL), statement 2 stores the successor.
const claim = db.prepare(`UPDATE tokens SET used_at = @now WHERE hash = @hash AND used_at IS NULL
  AND session_id IN (SELECT id FROM sessions WHERE revoked_at IS NULL AND expires_at > @now)
  RETURNING session_id AS sid, (SELECT user_id FROM sessions WHERE id = session_id) AS sub`);
const store = db.prepare('INSERT INTO tokens (hash, session_id) VALUES (?, ?)');
// Slow path only (unknown, used or revoked token).
const lookup = db.prepare(`SELECT t.session_id AS sid, t.used_at AS usedAt, s.user_id AS sub,
  s.revoked_at AS revokedAt, s.expires_at AS expiresAt FROM tokens t JOIN sessions s ON s.id = t.session_id
  WHERE t.hash = ?`);
const usedAtOf = db.prepare('SELECT used_at AS usedAt FROM tokens WHERE hash = ?');
const revoke = db.prepare('UPDATE sessions SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL');
const openSession = db.prepare('INSERT INTO sessions (user_id, expires_at) VALUES (?, ?) RETURNING id');

const sha256 = (token) => createHash('sha256').update(token).digest();
const successorOf = (token) => createHmac('sha256', successorKey).update(token).digest('base64url');

function accessToken(sub, sid, nowS) {
  const claims = {
    iss: ISSUER,
    sub,
    aud: ISSUER,
    exp: nowS + ACCESS_TTL_S,
    iat: nowS,
    jti: randomBytes(16).toString('base64url'),
    sid: String(sid),
    client_id: 'app',
  };
  const data = `${HEADER}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
  return `${data}.${sign(null, Buffer.from(data), privateKey).toString('base64url')}`;
}

/** Rotation per the usual rules: current → successor; used within grace → same successor; else revoke. */
const rotate = db.transaction((token, now) => {
  const hash = sha256(token);
  const next = successorOf(token);
  const won = claim.get({ now, hash });
  if (won) {
    store.run(sha256(next), won.sid);
    return { next, sid: won.sid, sub: won.sub };
  }
  const row = lookup.get(hash);
  if (!row || row.revokedAt !== null || row.expiresAt <= now) return null;
  const successorUsed = usedAtOf.get(sha256(next))?.usedAt ?? null;
  if (now - row.usedAt <= GRACE_MS && successorUsed === null) return { next, sid: row.sid, sub: row.sub };
  revoke.run(now, row.sid);
  return null;
});

const invalidGrant = { error: 'invalid_grant', error_description: 'The refresh token is invalid' };

const server = createServer(async (req, res) => {
  if (req.method === 'GET' && req.url === '/healthz') return send(res, 200, { ok: true });
  if (req.method !== 'POST') return send(res, 404, { error: 'not_found' });
  const body = await readJson(req, MAX_BODY);
  const now = Date.now();
  if (req.url === '/session') {
    const sub = typeof body?.sub === 'string' && body.sub.length <= 64 ? body.sub : null;
    if (sub === null)
      return send(res, 400, { error: 'invalid_request', error_description: 'sub is required' });
    const token = randomBytes(32).toString('base64url');
    const { id } = openSession.get(sub, now + SESSION_TTL_MS);
    store.run(sha256(token), id);
    return send(res, 200, { refresh_token: token });
  }
  if (req.url !== '/refresh') return send(res, 404, { error: 'not_found' });
  const token = body?.refresh_token;
  if (typeof token !== 'string' || token.length > 200)
    return send(res, 400, { error: 'invalid_request', error_description: 'refresh_token is required' });
  const out = rotate(token, now);
  if (!out) return send(res, 400, invalidGrant);
  return send(res, 200, {
    access_token: accessToken(out.sub, out.sid, Math.floor(now / 1000)),
    token_type: 'Bearer',
    expires_in: ACCESS_TTL_S,
    refresh_token: out.next,
  });
});
server.keepAliveTimeout = 60_000;
server.listen(PORT, '127.0.0.1', () => console.log(`listening ${server.address().port}`));
const shutdown = () => server.close(() => process.exit(0));
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
