// How a virtual client talks to each target: how it gets its session during setup, and one
// refresh (which returns the refresh token to send next time). Each function gets the
// client's own undici Client (one keep-alive connection).

const PASSWORD = 'bench-password-long-enough';
const JSON_HEADERS = { 'content-type': 'application/json' };
const FORM_HEADERS = { 'content-type': 'application/x-www-form-urlencoded' };

async function call(client, path, body, headers = JSON_HEADERS) {
  const res = await client.request({
    path,
    method: 'POST',
    headers,
    body: headers === JSON_HEADERS ? JSON.stringify(body) : new URLSearchParams(body).toString(),
  });
  const text = await res.body.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {
    // Not JSON: the status decides.
  }
  return { status: res.statusCode, json };
}

function expectOk(what, res) {
  if (res.status < 200 || res.status > 299)
    throw new Error(`${what}: HTTP ${res.status} ${res.json?.error ?? res.json?.message ?? ''}`);
  return res.json;
}

/** Register + log in (Argon2 on both), token mode: the refresh token comes in the body. */
async function batonLogin(client, i, tag) {
  const email = `bench-${tag}-${i}@example.com`;
  expectOk('register', await call(client, '/auth/register', { email, password: PASSWORD }));
  const out = expectOk('login', await call(client, '/auth/login', { email, password: PASSWORD }));
  return out.refresh_token;
}

/** `refresh(client, token)` → `{ status, next }`, where `next` is the new refresh token, if any. */
export const protocols = {
  'baton-auth': {
    setup: batonLogin,
    async refresh(client, token) {
      const r = await call(client, '/auth/refresh', { refresh_token: token });
      return { status: r.status, next: r.json?.refresh_token };
    },
  },
  'baton-oauth': {
    setup: batonLogin,
    async refresh(client, token) {
      const r = await call(
        client,
        '/oauth/token',
        { grant_type: 'refresh_token', refresh_token: token, client_id: 'app' },
        FORM_HEADERS,
      );
      return { status: r.status, next: r.json?.refresh_token };
    },
  },
  'baton-seed': {
    setup: batonLogin,
    async refresh(client, token) {
      const r = await call(client, '/api/v1/users/refresh-token', { refreshToken: token });
      return { status: r.status, next: r.json?.data?.refreshToken };
    },
  },
  seed: {
    async setup(client, i, tag) {
      const out = expectOk('login', await call(client, '/api/v1/users/login', { username: `${tag}-${i}` }));
      return out.data.refreshToken;
    },
    async refresh(client, token) {
      const r = await call(client, '/api/v1/users/refresh-token', { refreshToken: token });
      // As written, the response has `newRefreshToken: undefined`: the client keeps what it has.
      return { status: r.status, next: r.json?.data?.newRefreshToken };
    },
  },
  floor: {
    async setup(client, i, tag) {
      return expectOk('session', await call(client, '/session', { sub: `${tag}-${i}` })).refresh_token;
    },
    async refresh(client, token) {
      const r = await call(client, '/refresh', { refresh_token: token });
      return { status: r.status, next: r.json?.refresh_token };
    },
  },
  'oidc-provider': {
    // Minted inside the provider process at start (see its server.mjs): handed in, not fetched.
    setup: null,
    async refresh(client, token) {
      const r = await call(
        client,
        '/token',
        { grant_type: 'refresh_token', refresh_token: token, client_id: 'app' },
        FORM_HEADERS,
      );
      return { status: r.status, next: r.json?.refresh_token };
    },
  },
};
