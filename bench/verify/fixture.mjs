// A Baton-shaped access token, a local JWKS server and the verifier variants that check it:
// shared by jose-vs-node-crypto.mjs and the verifications/s figure of `npm run bench`.
import { createPublicKey, verify as nodeVerify } from 'node:crypto';
import { createServer } from 'node:http';
import * as jose from 'jose';
import { createVerifier } from '../../packages/verify/dist/index.js';

// Half the order of P-256, big-endian: the verify package no longer exports a low-s check
// (it accepts high-s since RFC 7518 has no low-s rule), so the fixture keeps its own.
const P256_HALF_N = Buffer.from('7fffffff800000007fffffffffffffffde737d56d38bcf4279dce5617e3192a8', 'hex');
const isLowS = (sig) => sig.length === 64 && Buffer.compare(sig.subarray(32), P256_HALF_N) <= 0;

/** Builds the token, serves its JWKS, and returns the warmed-up variants and `close()`. */
export async function verifyFixture(alg) {
  const { publicKey, privateKey } = await jose.generateKeyPair(alg, { extractable: true });
  const jwk = { ...(await jose.exportJWK(publicKey)), kid: `bench-${alg}`, alg, use: 'sig' };
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ keys: [jwk] }));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const now = Math.floor(Date.now() / 1000);
  // A Baton-shaped access token (RFC 9068 claims as the server issues them). Baton signs
  // ES256 in low-s form: re-sign until the signature is low-s, so the token is one Baton could issue.
  let token;
  do {
    token = await new jose.SignJWT({
      sid: 'ses_dsSC-fofU6YqqZaU4V7s0g',
      client_id: 'app',
      jti: '5Z59povNGszBaV2_Ok_nAw',
    })
      .setProtectedHeader({ alg, typ: 'at+jwt', kid: jwk.kid })
      .setIssuer(issuer)
      .setSubject('usr_M2lfTXBRDrW_wc67-gHhWQ')
      .setAudience(issuer)
      .setIssuedAt(now)
      .setExpirationTime(now + 3600)
      .sign(privateKey);
  } while (alg === 'ES256' && !isLowS(Buffer.from(token.split('.')[2], 'base64url')));
  const verifier = createVerifier({
    issuer,
    audience: issuer,
    jwksUri: `${issuer}/jwks`,
    algorithms: [alg],
    jwksCacheMaxAge: 86_400,
  });
  const keyObject = createPublicKey({ key: jwk, format: 'jwk' });
  const [h, p, s] = token.split('.');
  const hash = alg === 'ES256' ? 'sha256' : null;
  const nodeKey = alg === 'ES256' ? { key: keyObject, dsaEncoding: 'ieee-p1363' } : keyObject;
  // Each variant does the same work per call: decode the signature, verify over header.payload.
  const variants = {
    package: () => verifier.verify(token),
    jose: () => jose.compactVerify(token, publicKey, { algorithms: [alg] }),
    'node-sync': async () => {
      if (!nodeVerify(hash, Buffer.from(`${h}.${p}`), nodeKey, Buffer.from(s, 'base64url')))
        throw new Error('bad');
    },
    'node-cb': () =>
      new Promise((resolve, reject) =>
        nodeVerify(hash, Buffer.from(`${h}.${p}`), nodeKey, Buffer.from(s, 'base64url'), (err, ok) =>
          err || !ok ? reject(err ?? new Error('bad')) : resolve(),
        ),
      ),
  };
  // Warm-up doubles as a correctness check: every variant must accept the token.
  for (const fn of Object.values(variants)) for (let i = 0; i < 200; i++) await fn();
  return {
    variants,
    close: () => {
      server.closeAllConnections();
      return new Promise((r) => server.close(r));
    },
  };
}
