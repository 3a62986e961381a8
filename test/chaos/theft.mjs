// Theft control: sessions apart from the "must not sign out" population, whose
// refresh tokens an attacker replays. They talk to the instances directly (the
// attacker is not behind our faulty balancer), spread over the live ones.
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const b64url = (data) => Buffer.from(data).toString('base64url');

/** The claims of a JWT, unverified: only to learn the `sub` and `sid` of our own tokens. */
function claims(jwt) {
  return JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString('utf8'));
}

/**
 * POSTs to the first live instance that answers; a connection error (an
 * instance being killed) moves on to the next one. `body` is sent as JSON,
 * or form-encoded with `form: true` (the `/oauth/*` routes).
 * @param {() => string[]} liveUrls
 */
/**
 * POSTs to a live instance, trying others on a network error. `headers` may be
 * a function: it is called for every attempt, so a DPoP proof is minted anew
 * each time, as a real client does (a proof is spent once its request has
 * reached a server, even if that server died before answering).
 */
async function post(liveUrls, path, body, headers = {}, { form = false } = {}) {
  let lastError;
  for (let attempt = 0; attempt < 6; attempt++) {
    const urls = liveUrls();
    const url = urls[attempt % Math.max(1, urls.length)];
    if (url === undefined) {
      await sleep(500);
      continue;
    }
    try {
      const res = await fetch(`${url}${path}`, {
        method: 'POST',
        headers: {
          'content-type': form ? 'application/x-www-form-urlencoded' : 'application/json',
          ...(typeof headers === 'function' ? headers() : headers),
        },
        body: form ? new URLSearchParams(body).toString() : JSON.stringify(body),
      });
      const text = await res.text();
      let json = {};
      try {
        json = JSON.parse(text);
      } catch {
        // 204s and non-JSON errors
      }
      return { status: res.status, json, headers: res.headers };
    } catch (error) {
      lastError = error;
      await sleep(300);
    }
  }
  throw new Error(`POST ${path} failed on every instance: ${lastError}`);
}

async function newSession(liveUrls, tag, headers) {
  const email = `thief-${tag}-${randomBytes(4).toString('hex')}@example.com`;
  const password = 'a long enough control password';
  const reg = await post(liveUrls, '/auth/register', { email, password });
  if (reg.status !== 201) throw new Error(`control register: ${reg.status} ${reg.json.error}`);
  const login = await post(
    liveUrls,
    '/auth/login',
    { email, password },
    () => headers?.('/auth/login') ?? {},
  );
  if (login.status !== 200) throw new Error(`control login: ${login.status} ${login.json.error}`);
  const { sub, sid } = claims(login.json.access_token);
  return { refreshToken: login.json.refresh_token, userId: sub, sessionId: sid };
}

/**
 * Theft of an unbound session's token, detected after the fact: the owner
 * refreshes, the thief replays the spent token after the grace window. The
 * replay must be refused (`invalid_grant`), and the reuse detected: the
 * session revoked (the owner's newest token fails too) and a
 * `refresh_token_reuse` security event recorded for it.
 * @param {object} opts
 * @param {() => string[]} opts.liveUrls
 * @param {import('@baton/server').Store} opts.store
 * @param {number} opts.graceMs
 */
export async function unboundTheftAttempt(opts) {
  const s = await newSession(opts.liveUrls, 'unbound');
  const owner = await post(opts.liveUrls, '/auth/refresh', { refresh_token: s.refreshToken });
  if (owner.status !== 200) throw new Error(`control refresh: ${owner.status} ${owner.json.error}`);
  await sleep(opts.graceMs + 1500);
  const replay = await post(opts.liveUrls, '/auth/refresh', { refresh_token: s.refreshToken });
  const accepted = replay.status === 200;
  const refused = replay.status === 401 && replay.json.error === 'invalid_grant';
  const newest = await post(opts.liveUrls, '/auth/refresh', { refresh_token: owner.json.refresh_token });
  const revoked = newest.status === 401 && newest.json.error === 'invalid_grant';
  const events = await opts.store.listSecurityEvents({ userId: s.userId, limit: 20 });
  const recorded = events.some((e) => e.type === 'refresh_token_reuse' && e.sessionId === s.sessionId);
  return { accepted, detected: refused && revoked && recorded, refused, revoked, recorded };
}

/** An ES256 key for DPoP proofs. */
function dpopKey() {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const { kty, crv, x, y } = publicKey.export({ format: 'jwk' });
  return { privateKey, jwk: { kty, crv, x, y } };
}

/**
 * A DPoP proof JWT (RFC 9449 §4.2) for one request.
 * @param {{ privateKey: import('node:crypto').KeyObject, jwk: object }} key
 */
function dpopProof(key, htm, htu, nonce) {
  const header = b64url(JSON.stringify({ typ: 'dpop+jwt', alg: 'ES256', jwk: key.jwk }));
  const payload = b64url(
    JSON.stringify({
      jti: randomBytes(16).toString('base64url'),
      htm,
      htu,
      iat: Math.floor(Date.now() / 1000),
      ...(nonce ? { nonce } : {}),
    }),
  );
  const signature = sign('sha256', Buffer.from(`${header}.${payload}`), {
    key: key.privateKey,
    dsaEncoding: 'ieee-p1363',
  });
  return `${header}.${payload}.${b64url(signature)}`;
}

/**
 * POSTs with a DPoP proof, answering one `use_dpop_nonce` challenge (RFC 9449 §8).
 */
async function postWithProof(liveUrls, issuer, key, path, body, options = {}) {
  let nonce;
  for (let i = 0; i < 2; i++) {
    const proof = () => ({ dpop: dpopProof(key, 'POST', `${issuer}${path}`, nonce) });
    const res = await post(liveUrls, path, body, proof, options);
    if (res.status === 400 && res.json.error === 'use_dpop_nonce' && res.headers.get('dpop-nonce')) {
      nonce = res.headers.get('dpop-nonce');
      continue;
    }
    return res;
  }
  throw new Error(`${path}: the server kept asking for a DPoP nonce`);
}

/** What each thief request must get: refresh is `invalid_grant` (401 on `/auth/*`), ending the session `invalid_dpop_proof` (400). */
const THIEF_EXPECTS = {
  refresh: { status: 401, error: 'invalid_grant' },
  logout: { status: 400, error: 'invalid_dpop_proof' },
  revoke: { status: 400, error: 'invalid_dpop_proof' },
};

/**
 * Theft of a DPoP-bound session's token (RFC 9449): the thief has the
 * refresh token but not the key. It tries to refresh it (`/auth/refresh`),
 * and to end the session with it (`/auth/logout`, `/oauth/revoke`), each
 * once without a proof and once with a proof by its own key. Every one of
 * the six must be refused with its exact code (docs/dpop.md), each recorded
 * as a security event naming its action (`dpop_proof_missing` without a
 * proof, `dpop_key_mismatch` with the wrong key), and the session must NOT
 * end: it is still live in the store, the owner (with the key) refreshes
 * the stolen token and then its successor, and finally the owner's own
 * signed logout ends it (the logout path works for the key's holder).
 * @param {object} opts
 * @param {() => string[]} opts.liveUrls
 * @param {import('@baton/server').Store} opts.store
 * @param {string} opts.issuer
 */
export async function boundTheftAttempt(opts) {
  const key = dpopKey();
  const email = `bound-${randomBytes(4).toString('hex')}@example.com`;
  const password = 'a long enough control password';
  const reg = await post(opts.liveUrls, '/auth/register', { email, password });
  if (reg.status !== 201) throw new Error(`bound register: ${reg.status} ${reg.json.error}`);
  const login = await postWithProof(opts.liveUrls, opts.issuer, key, '/auth/login', { email, password });
  if (login.status !== 200) throw new Error(`bound login: ${login.status} ${login.json.error}`);
  const { sub, sid } = claims(login.json.access_token);
  const stolen = login.json.refresh_token;

  const thiefKey = dpopKey();
  const routes = {
    refresh: { path: '/auth/refresh', body: { refresh_token: stolen }, form: false },
    logout: { path: '/auth/logout', body: { refresh_token: stolen }, form: false },
    revoke: { path: '/oauth/revoke', body: { token: stolen, client_id: 'app' }, form: true },
  };
  /** @type {Record<string, { status: number, error: unknown }>} */
  const answers = {};
  for (const [action, r] of Object.entries(routes)) {
    const bare = await post(opts.liveUrls, r.path, r.body, {}, { form: r.form });
    const own = await postWithProof(opts.liveUrls, opts.issuer, thiefKey, r.path, r.body, { form: r.form });
    answers[`${action}:bare`] = { status: bare.status, error: bare.json.error };
    answers[`${action}:own-key`] = { status: own.status, error: own.json.error };
  }
  const accepted = Object.values(answers).some((a) => a.status >= 200 && a.status < 300);
  const wrong = Object.entries(answers)
    .filter(([name, a]) => {
      const want = THIEF_EXPECTS[name.split(':')[0]];
      return a.status !== want.status || a.error !== want.error;
    })
    .map(([name, a]) => `${name} ${a.status} ${a.error}`);
  const refused = wrong.length === 0;

  const events = await opts.store.listSecurityEvents({ userId: sub, limit: 50 });
  const missingEvents = Object.keys(routes).flatMap((action) =>
    ['dpop_proof_missing', 'dpop_key_mismatch']
      .filter(
        (type) => !events.some((e) => e.sessionId === sid && e.type === type && e.detail?.action === action),
      )
      .map((type) => `${type}/${action}`),
  );
  const recorded = missingEvents.length === 0;

  // The session outlived all six: live in the store, and the owner's key still drives it.
  const session = await opts.store.findSession(sid);
  const live = session !== null && session.revokedAt === null;
  const owner = await postWithProof(opts.liveUrls, opts.issuer, key, '/auth/refresh', {
    refresh_token: stolen,
  });
  const next =
    owner.status === 200
      ? await postWithProof(opts.liveUrls, opts.issuer, key, '/auth/refresh', {
          refresh_token: owner.json.refresh_token,
        })
      : owner;
  const ownerKept = live && owner.status === 200 && next.status === 200;
  // The key's holder can end it; afterwards its newest token is dead.
  let ownerLoggedOut = false;
  let ownerLogout;
  if (next.status === 200) {
    const out = await postWithProof(opts.liveUrls, opts.issuer, key, '/auth/logout', {
      refresh_token: next.json.refresh_token,
    });
    const after = await postWithProof(opts.liveUrls, opts.issuer, key, '/auth/refresh', {
      refresh_token: next.json.refresh_token,
    });
    ownerLoggedOut = out.status === 204 && after.status === 401 && after.json.error === 'invalid_grant';
    // What the owner got instead, for the report of a miss.
    if (!ownerLoggedOut)
      ownerLogout = { logout: [out.status, out.json.error], refreshAfter: [after.status, after.json.error] };
  }
  return {
    accepted,
    detected: refused && recorded && ownerKept && ownerLoggedOut,
    refused,
    recorded,
    ownerKept,
    ownerLoggedOut,
    ...(ownerLogout ? { ownerLogout } : {}),
    ...(wrong.length > 0 ? { wrong } : {}),
    ...(missingEvents.length > 0 ? { missingEvents } : {}),
  };
}
