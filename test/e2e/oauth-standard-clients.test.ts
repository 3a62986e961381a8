// Baton's OAuth 2.0 surface driven by independent, standard client libraries against a running
// process: oauth4webapi for discovery, the refresh grant, revocation and introspection, and jose
// (plus oauth4webapi's RFC 9068 validator) for the access tokens via the published JWKS.
import { execFileSync } from 'node:child_process';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import * as oauth from 'oauth4webapi';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, type RunningBaton, startBaton } from './support/baton.js';

const USER = { email: 'grace@example.com', password: 'correct horse battery' };
// Baton's issuer in tests is plain http on localhost; production issuers are https.
const insecure = { [oauth.allowInsecureRequests]: true } as const;

let baton: RunningBaton;
let as: oauth.AuthorizationServer;
let backendSecret: string;
let rsSecret: string;

function createClient(args: string[]): string {
  const out = execFileSync(process.execPath, [CLI, 'clients', 'create', ...args], {
    env: { ...process.env, BATON_DATABASE_URL: baton.databaseUrl, BATON_ISSUER: baton.url },
    encoding: 'utf8',
  });
  return /^client_secret: (\S+)$/m.exec(out)?.[1] ?? '';
}

async function logIn(
  headers: Record<string, string> = {},
): Promise<{ access_token: string; refresh_token: string }> {
  const res = await fetch(`${baton.url}/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(USER),
  });
  expect(res.status).toBe(200);
  return (await res.json()) as { access_token: string; refresh_token: string };
}

const basicHeader = (id: string, secret: string) => ({
  authorization: `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`,
});

/** Runs an oauth4webapi call that should fail and returns what it threw. */
async function failure(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => {
      throw new Error('expected the call to fail');
    },
    (e: unknown) => e,
  );
}

beforeAll(async () => {
  baton = await startBaton({ env: { BATON_LIMIT_IP_PER_MIN: 'off' } });
  backendSecret = createClient(['--id', 'backend', '--type', 'confidential']);
  rsSecret = createClient(['--id', 'rs', '--type', 'confidential']);
  createClient(['--id', 'mobile', '--type', 'public', '--scope', 'read write']);
  expect(backendSecret).toMatch(/^bcs_/);
  const registered = await fetch(`${baton.url}/auth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(USER),
  });
  expect(registered.status).toBe(201);
  // RFC 8414 discovery (`oauth2`), not OpenID Connect's: Baton is not an OpenID provider.
  const issuer = new URL(baton.url);
  as = await oauth.processDiscoveryResponse(
    issuer,
    await oauth.discoveryRequest(issuer, { ...insecure, algorithm: 'oauth2' }),
  );
});
afterAll(async () => {
  await baton?.stop();
});

describe('OAuth 2.0 with oauth4webapi', () => {
  it('discovers the server (RFC 8414): issuer matches exactly, endpoints listed', async () => {
    expect(as.issuer).toBe(baton.url);
    expect(as).toMatchObject({
      token_endpoint: `${baton.url}/oauth/token`,
      revocation_endpoint: `${baton.url}/oauth/revoke`,
      introspection_endpoint: `${baton.url}/oauth/introspect`,
      jwks_uri: `${baton.url}/.well-known/jwks.json`,
      grant_types_supported: ['refresh_token'],
      scopes_supported: ['read', 'write'],
    });
  });

  it('refresh grant for a public client (none); the access token verifies with jose and as RFC 9068', async () => {
    const client: oauth.Client = { client_id: 'app' };
    const { refresh_token } = await logIn();
    const res = await oauth.refreshTokenGrantRequest(as, client, oauth.None(), refresh_token, insecure);
    const tokens = await oauth.processRefreshTokenResponse(as, client, res);
    expect(tokens.token_type).toBe('bearer');
    expect(tokens.refresh_token).toMatch(/^brt_/);
    expect(tokens.refresh_token).not.toBe(refresh_token);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.headers.get('pragma')).toBe('no-cache');

    const jwks = createRemoteJWKSet(new URL(as.jwks_uri ?? ''));
    const { payload, protectedHeader } = await jwtVerify(tokens.access_token, jwks, {
      issuer: as.issuer,
      audience: as.issuer,
      typ: 'at+jwt',
    });
    expect(protectedHeader.alg).toBe('ES256');
    expect(payload.client_id).toBe('app');

    const request = new Request(`${baton.url}/resource`, {
      headers: { authorization: `Bearer ${tokens.access_token}` },
    });
    const claims = await oauth.validateJwtAccessToken(as, request, as.issuer, insecure);
    expect(claims).toMatchObject({ iss: as.issuer, client_id: 'app', sub: payload.sub });

    // The rotated token works again with the library; a foreign client's use of it is invalid_grant.
    const foreign = await failure(
      oauth
        .refreshTokenGrantRequest(
          as,
          { client_id: 'mobile' },
          oauth.None(),
          tokens.refresh_token ?? '',
          insecure,
        )
        .then((r) => oauth.processRefreshTokenResponse(as, { client_id: 'mobile' }, r)),
    );
    expect(foreign).toBeInstanceOf(oauth.ResponseBodyError);
    expect((foreign as oauth.ResponseBodyError).error).toBe('invalid_grant');
    expect((foreign as oauth.ResponseBodyError).status).toBe(400);
  });

  it('refresh grant for a confidential client, by client_secret_basic and client_secret_post', async () => {
    const client: oauth.Client = { client_id: 'backend' };
    const { refresh_token } = await logIn(basicHeader('backend', backendSecret));
    const first = await oauth.processRefreshTokenResponse(
      as,
      client,
      await oauth.refreshTokenGrantRequest(
        as,
        client,
        oauth.ClientSecretBasic(backendSecret),
        refresh_token,
        insecure,
      ),
    );
    const second = await oauth.processRefreshTokenResponse(
      as,
      client,
      await oauth.refreshTokenGrantRequest(
        as,
        client,
        oauth.ClientSecretPost(backendSecret),
        first.refresh_token ?? '',
        insecure,
      ),
    );
    expect(second.access_token).toEqual(expect.any(String));

    // A wrong secret: 401 with a Basic challenge, which oauth4webapi surfaces as such.
    const wrong = await failure(
      oauth
        .refreshTokenGrantRequest(
          as,
          client,
          oauth.ClientSecretBasic('bcs_wrong'),
          second.refresh_token ?? '',
          insecure,
        )
        .then((r) => oauth.processRefreshTokenResponse(as, client, r)),
    );
    expect(wrong).toBeInstanceOf(oauth.WWWAuthenticateChallengeError);
    const challenge = wrong as oauth.WWWAuthenticateChallengeError;
    expect(challenge.status).toBe(401);
    expect(challenge.cause[0]?.scheme).toBe('basic');
  });

  it('introspection with client_secret_basic, then revocation (RFC 7662, RFC 7009)', async () => {
    const rs: oauth.Client = { client_id: 'rs' };
    const app: oauth.Client = { client_id: 'app' };
    const { access_token, refresh_token } = await logIn();
    const introspect = async (token: string) =>
      oauth.processIntrospectionResponse(
        as,
        rs,
        await oauth.introspectionRequest(as, rs, oauth.ClientSecretBasic(rsSecret), token, insecure),
      );

    const active = await introspect(access_token);
    expect(active).toMatchObject({ active: true, client_id: 'app', iss: baton.url, aud: baton.url });
    expect(typeof active.exp).toBe('number');
    expect(typeof active.sid).toBe('string');
    expect((await introspect(refresh_token)).active).toBe(true);

    // A public client cannot introspect.
    const denied = await failure(
      oauth
        .introspectionRequest(as, app, oauth.None(), access_token, insecure)
        .then((r) => oauth.processIntrospectionResponse(as, app, r)),
    );
    expect((denied as oauth.WWWAuthenticateChallengeError).status).toBe(401);

    // Revoking the refresh token ends the session: both tokens are now inactive.
    await oauth.processRevocationResponse(
      await oauth.revocationRequest(as, app, oauth.None(), refresh_token, insecure),
    );
    expect(await introspect(access_token)).toEqual({ active: false });
    expect(await introspect(refresh_token)).toEqual({ active: false });
    const refused = await failure(
      oauth
        .refreshTokenGrantRequest(as, app, oauth.None(), refresh_token, insecure)
        .then((r) => oauth.processRefreshTokenResponse(as, app, r)),
    );
    expect((refused as oauth.ResponseBodyError).error).toBe('invalid_grant');

    // Revoking garbage is fine.
    await oauth.processRevocationResponse(
      await oauth.revocationRequest(as, app, oauth.None(), 'garbage', insecure),
    );
  });

  it('revoking an access token ends its session too', async () => {
    const app: oauth.Client = { client_id: 'app' };
    const { access_token, refresh_token } = await logIn();
    await oauth.processRevocationResponse(
      await oauth.revocationRequest(as, app, oauth.None(), access_token, {
        ...insecure,
        additionalParameters: { token_type_hint: 'access_token' },
      }),
    );
    const me = await fetch(`${baton.url}/auth/me`, { headers: { authorization: `Bearer ${access_token}` } });
    expect(me.status).toBe(401);
    const refused = await failure(
      oauth
        .refreshTokenGrantRequest(as, app, oauth.None(), refresh_token, insecure)
        .then((r) => oauth.processRefreshTokenResponse(as, app, r)),
    );
    expect((refused as oauth.ResponseBodyError).error).toBe('invalid_grant');
  });
});
