// Test support: a real issuer on 127.0.0.1 (metadata, JWKS, RFC 7662 introspection)
// that counts every request it gets, plus a token minter that can write any header,
// payload or signature, canonical or not. Not part of the published package.
import { createPrivateKey, type KeyObject, randomUUID, sign } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, type JWK } from 'jose';

/** A local HTTP server on port 0 that records the path of each request. */
export interface LocalServer {
  readonly url: string;
  readonly requests: string[];
  close(): Promise<void>;
}

/** Start `handler` on 127.0.0.1, port 0. */
export async function startLocalServer(
  handler: (req: IncomingMessage, res: ServerResponse, body: string) => void,
): Promise<LocalServer> {
  const requests: string[] = [];
  const server = createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => handler(req, res, Buffer.concat(chunks).toString('utf8')));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
}

/** A server that answers 200 `{}` to everything: a stand-in for an attacker's URL. */
export function startDecoy(): Promise<LocalServer> {
  return startLocalServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"keys":[]}');
  });
}

export type TestAlg = 'ES256' | 'EdDSA';

/** A signing key of the test issuer. */
export interface TestKey {
  readonly kid: string;
  readonly alg: TestAlg;
  readonly privateKey: KeyObject;
  readonly publicJwk: JWK;
}

/** Generate a key pair; `publicJwk` carries kid, alg and use like Baton's JWKS. */
export async function generateTestKey(alg: TestAlg = 'ES256', kid = `k-${randomUUID()}`): Promise<TestKey> {
  const pair = await generateKeyPair(alg, { extractable: true });
  const publicJwk = { ...(await exportJWK(pair.publicKey)), kid, alg, use: 'sig' };
  const privateKey = createPrivateKey({ key: await exportJWK(pair.privateKey), format: 'jwk' });
  return { kid, alg, privateKey, publicJwk };
}

export const b64url = (data: string | Buffer) => Buffer.from(data).toString('base64url');

const P256_N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;

/** Rewrites an ES256 signature `(r, s)` as `(r, n − s)`: the other, equally valid spelling. */
export function flipS(sig: Buffer): Buffer {
  const out = Buffer.from(sig);
  const s = BigInt(`0x${sig.subarray(32, 64).toString('hex')}`);
  Buffer.from((P256_N - s).toString(16).padStart(64, '0'), 'hex').copy(out, 32);
  return out;
}

/**
 * Sign `header.payload` bytes with `key` as JWS `key.alg` (raw r||s for ES256,
 * RFC 7518 §3.4), in low-s form as Baton signs.
 */
export function signWith(key: TestKey, signingInput: string): Buffer {
  if (key.alg !== 'ES256') return sign(null, Buffer.from(signingInput), key.privateKey);
  const sig = sign('sha256', Buffer.from(signingInput), { key: key.privateKey, dsaEncoding: 'ieee-p1363' });
  const s = BigInt(`0x${sig.subarray(32, 64).toString('hex')}`);
  return s > P256_N >> 1n ? flipS(sig) : sig;
}

/** Build a compact JWS from already-encoded segments. */
export function compact(
  header: Record<string, unknown>,
  payload: Record<string, unknown>,
  key: TestKey,
): string {
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}`;
  return `${input}.${b64url(signWith(key, input))}`;
}

export interface TestIssuer {
  /** Issuer identifier, e.g. http://127.0.0.1:PORT */
  readonly url: string;
  readonly jwksUri: string;
  readonly audience: string;
  /** Every request the issuer got, as "METHOD /path". */
  readonly requests: string[];
  /** Keys currently published in the JWKS; the first one signs by default. */
  keys: TestKey[];
  /** What the metadata endpoint does: publish, answer 404, or name another issuer. */
  metadata: 'ok' | 'missing' | 'wrong-issuer' | 'insecure-jwks';
  /** What the JWKS endpoint does: publish the keys, fail, send 300 KB, or redirect to itself. */
  jwks: 'ok' | 'error' | 'huge' | 'redirect';
  /** Introspection answer for a token (default: active). */
  introspect: (token: string, authorization: string | undefined) => { status: number; body: unknown };
  /** The clock tokens are minted by, in ms; tests move it. */
  now: number;
  count(path: string): number;
  claims(extra?: Record<string, unknown>): Record<string, unknown>;
  header(extra?: Record<string, unknown>, key?: TestKey): Record<string, unknown>;
  /** A valid access token; `claims`/`header` entries override (undefined deletes). */
  mint(opts?: { claims?: Record<string, unknown>; header?: Record<string, unknown>; key?: TestKey }): string;
  close(): Promise<void>;
}

function merge(base: Record<string, unknown>, extra: Record<string, unknown> | undefined) {
  const out = { ...base, ...extra };
  for (const [k, v] of Object.entries(out)) if (v === undefined) delete out[k];
  return out;
}

/** Start a test issuer with one ES256 key. */
export async function startTestIssuer(): Promise<TestIssuer> {
  const first = await generateTestKey('ES256');
  let issuer: TestIssuer;
  const server = await startLocalServer((req, res, body) => {
    const path = (req.url ?? '').split('?')[0];
    const json = (status: number, value: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(value));
    };
    if (path === '/.well-known/oauth-authorization-server') {
      if (issuer.metadata === 'missing') return json(404, { error: 'not_found' });
      return json(200, {
        issuer: issuer.metadata === 'wrong-issuer' ? `${issuer.url}/` : issuer.url,
        jwks_uri: issuer.metadata === 'insecure-jwks' ? 'http://keys.example.com/jwks.json' : issuer.jwksUri,
        introspection_endpoint: `${issuer.url}/oauth/introspect`,
      });
    }
    if (path === '/.well-known/jwks.json') {
      if (issuer.jwks === 'error') return json(500, { error: 'server_error' });
      if (issuer.jwks === 'huge')
        return json(200, { keys: issuer.keys.map((k) => k.publicJwk), pad: 'x'.repeat(300_000) });
      if (issuer.jwks === 'redirect') {
        res.writeHead(302, { location: issuer.jwksUri });
        return res.end();
      }
      return json(200, { keys: issuer.keys.map((k) => k.publicJwk) });
    }
    if (path === '/oauth/introspect' && req.method === 'POST') {
      const token = new URLSearchParams(body).get('token') ?? '';
      const answer = issuer.introspect(token, req.headers.authorization);
      return json(answer.status, answer.body);
    }
    return json(404, { error: 'not_found' });
  });
  const audience = 'https://api.test';
  issuer = {
    url: server.url,
    jwksUri: `${server.url}/.well-known/jwks.json`,
    audience,
    requests: server.requests,
    keys: [first],
    metadata: 'ok',
    jwks: 'ok',
    introspect: () => ({ status: 200, body: { active: true } }),
    now: Date.UTC(2030, 0, 1),
    count: (path) => server.requests.filter((r) => r.split(' ')[1]?.split('?')[0] === path).length,
    claims(extra) {
      const iat = Math.floor(issuer.now / 1000);
      return merge(
        {
          iss: issuer.url,
          sub: 'usr_1',
          aud: audience,
          exp: iat + 900,
          iat,
          jti: randomUUID(),
          sid: 'ses_1',
          client_id: 'app',
          scope: 'read write',
        },
        extra,
      );
    },
    header(extra, key = issuer.keys[0]!) {
      return merge({ alg: key.alg, typ: 'at+jwt', kid: key.kid }, extra);
    },
    mint(opts = {}) {
      const key = opts.key ?? issuer.keys[0]!;
      return compact(issuer.header(opts.header, key), issuer.claims(opts.claims), key);
    },
    close: server.close,
  };
  return issuer;
}
