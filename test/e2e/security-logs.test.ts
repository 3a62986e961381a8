// docs/security.md item 36: nothing secret in logs. The real CLI runs with
// BATON_LOG_LEVEL=trace (the most verbose setting); the test drives login,
// refresh, cookie mode, the OAuth endpoints with a confidential client,
// logout, password change, reuse detection and hostile requests, then reads
// everything the process wrote and looks for every secret it handled.
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, type RunningBaton, startBaton } from './support/baton.js';

let baton: RunningBaton;
/** Every secret the server saw during the run. */
const secrets = new Set<string>();
/** Paths requested, to check the log really recorded the traffic. */
const paths = new Set<string>();
let log = '';

const keep = (value: string | undefined): string => {
  if (value) secrets.add(value);
  return value ?? '';
};
/** A token and its pieces: a leak of the signature or secret half is a leak too. */
const keepToken = (token: string | undefined): string => {
  if (token) for (const piece of [token, ...token.split('.').slice(1)]) if (piece.length >= 16) keep(piece);
  return token ?? '';
};

async function call(
  method: string,
  path: string,
  options: {
    json?: unknown;
    form?: Record<string, string>;
    body?: string;
    headers?: Record<string, string>;
  } = {},
): Promise<Response> {
  paths.add(path.split('?')[0]!);
  const headers: Record<string, string> = { ...options.headers };
  let body: string | undefined = options.body;
  if (options.json !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(options.json);
  } else if (options.form) {
    headers['content-type'] = 'application/x-www-form-urlencoded';
    body = new URLSearchParams(options.form).toString();
  }
  return fetch(`http://127.0.0.1:${baton.port}${path}`, { method, headers, body });
}

const basic = (id: string, secret: string) => ({
  authorization: keep(`Basic ${keep(Buffer.from(`${id}:${secret}`).toString('base64'))}`),
});

async function tokens(res: Response): Promise<{ access_token: string; refresh_token: string }> {
  expect(res.status).toBe(200);
  const body = (await res.json()) as { access_token: string; refresh_token: string; device_token?: string };
  keepToken(body.access_token);
  keepToken(body.refresh_token);
  keepToken(body.device_token);
  return body;
}

beforeAll(async () => {
  const metricsToken = keep('metrics-bearer-token-0123456789');
  baton = await startBaton({
    env: { BATON_LOG_LEVEL: 'trace', BATON_LIMIT_IP_PER_MIN: 'off', BATON_METRICS_TOKEN: metricsToken },
  });
  // The metrics token travels in Authorization like any bearer token: it must not reach the log either.
  expect(
    (await call('GET', '/metrics', { headers: { authorization: `Bearer ${metricsToken}` } })).status,
  ).toBe(200);
  expect(
    (await call('GET', '/metrics', { headers: { authorization: `Bearer ${metricsToken}x` } })).status,
  ).toBe(401);
  const created = execFileSync(
    process.execPath,
    [CLI, 'clients', 'create', '--id', 'backend', '--type', 'confidential'],
    {
      env: { ...process.env, BATON_DATABASE_URL: baton.databaseUrl, BATON_ISSUER: baton.url },
      encoding: 'utf8',
    },
  );
  const backendSecret = keep(/^client_secret: (\S+)$/m.exec(created)?.[1]);
  expect(backendSecret).toMatch(/^bcs_/);
  keep(backendSecret.slice('bcs_'.length));

  const email = 'logs@example.com';
  const password = keep('correct horse battery staple');
  const newPassword = keep('a different long passphrase');
  const wrong = keep('not-the-password-0451');
  expect((await call('POST', '/auth/register', { json: { email, password } })).status).toBe(201);

  // Token mode: login, failures, refresh by body and at the token endpoint, reuse detection.
  const first = await tokens(await call('POST', '/auth/login', { json: { email, password } }));
  expect((await call('POST', '/auth/login', { json: { email, password: wrong } })).status).toBe(401);
  // A device token (SECURITY 32) sent back by body and by cookie, with a right and a wrong password.
  const device = (first as { device_token?: string }).device_token;
  expect(device).toMatch(/^bdv_/);
  await tokens(await call('POST', '/auth/login', { json: { email, password, device_token: device } }));
  expect(
    (
      await call('POST', '/auth/login', {
        json: { email, password: wrong },
        headers: { cookie: `__Host-baton_device=${device}` },
      })
    ).status,
  ).toBe(401);
  expect(
    (await call('POST', '/auth/login', { json: { email: 'nobody@example.com', password: wrong } })).status,
  ).toBe(401);
  const second = await tokens(
    await call('POST', '/auth/refresh', { json: { refresh_token: first.refresh_token } }),
  );
  await tokens(
    await call('POST', '/oauth/token', {
      form: { grant_type: 'refresh_token', refresh_token: second.refresh_token, client_id: 'app' },
    }),
  );
  // RT1's successor has been used: presenting RT1 again is reuse, and revokes the session.
  expect((await call('POST', '/auth/refresh', { json: { refresh_token: first.refresh_token } })).status).toBe(
    401,
  );
  await tokens(
    await call('POST', '/api/v1/users/refresh-token', {
      json: {
        refreshToken: (await tokens(await call('POST', '/auth/login', { json: { email, password } })))
          .refresh_token,
      },
    }),
  );

  // Cookie mode: the refresh token travels only in a cookie.
  const browser = { origin: baton.url, 'sec-fetch-site': 'same-origin', 'x-baton-csrf': '1' };
  const cookieLogin = await call('POST', '/auth/login', {
    json: { email, password, mode: 'cookie' },
    headers: browser,
  });
  expect(cookieLogin.status).toBe(200);
  keepToken(((await cookieLogin.json()) as { access_token: string }).access_token);
  const cookie = keep(cookieLogin.headers.getSetCookie()[0]?.split(';')[0]);
  keepToken(cookie.split('=')[1]);
  // The device cookie of cookie mode (the token is in no body there).
  keepToken(keep(cookieLogin.headers.getSetCookie()[1]?.split(';')[0]).split('=')[1]);
  const cookieRefresh = await call('POST', '/auth/refresh', { headers: { ...browser, cookie } });
  expect(cookieRefresh.status).toBe(200);
  keepToken(((await cookieRefresh.json()) as { access_token: string }).access_token);
  const cookie2 = keep(cookieRefresh.headers.getSetCookie()[0]?.split(';')[0]);
  keepToken(cookie2.split('=')[1]);
  expect((await call('POST', '/auth/logout', { headers: { ...browser, cookie: cookie2 } })).status).toBe(204);

  // A confidential client: login, token endpoint, introspection, revocation, a wrong secret.
  const backend = await tokens(
    await call('POST', '/auth/login', {
      json: { email, password },
      headers: basic('backend', backendSecret),
    }),
  );
  const rotated = await tokens(
    await call('POST', '/oauth/token', {
      form: { grant_type: 'refresh_token', refresh_token: backend.refresh_token },
      headers: basic('backend', backendSecret),
    }),
  );
  const introspection = await call('POST', '/oauth/introspect', {
    form: { token: rotated.access_token },
    headers: basic('backend', backendSecret),
  });
  expect(((await introspection.json()) as { active: boolean }).active).toBe(true);
  expect(
    (
      await call('POST', '/oauth/token', {
        form: {
          grant_type: 'refresh_token',
          refresh_token: rotated.refresh_token,
          client_id: 'backend',
          client_secret: keep(`${backendSecret}x`),
        },
      })
    ).status,
  ).toBe(401);
  expect(
    (
      await call('POST', '/oauth/revoke', {
        form: { token: rotated.refresh_token },
        headers: basic('backend', backendSecret),
      })
    ).status,
  ).toBe(200);

  // Secrets where they do not belong: query strings, a password as a JSON object, broken JSON.
  const live = await tokens(await call('POST', '/auth/login', { json: { email, password } }));
  expect(
    (
      await call('GET', `/auth/me?access_token=${live.access_token}`, {
        headers: { authorization: `Bearer ${live.access_token}` },
      })
    ).status,
  ).toBe(200);
  expect(
    (await call('GET', `/oauth/token?refresh_token=${live.refresh_token}&client_secret=${backendSecret}`))
      .status,
  ).toBe(405);
  expect((await call('POST', '/auth/login', { json: { email, password: { $ne: password } } })).status).toBe(
    400,
  );
  expect(
    (
      await call('POST', '/auth/login', {
        body: `{"email": "${email}", "password": "${password}"`,
        headers: { 'content-type': 'application/json' },
      })
    ).status,
  ).toBe(400);
  expect(
    (await call('GET', '/auth/me', { headers: { authorization: `Bearer ${live.access_token}x` } })).status,
  ).toBe(401);

  // Password change (wrong, then right), logout by refresh token, logout-all by access token.
  const change = (current_password: string) =>
    call('POST', '/auth/password', {
      json: { current_password, new_password: newPassword },
      headers: { authorization: `Bearer ${live.access_token}` },
    });
  expect((await change(wrong)).status).toBe(403);
  expect((await change(password)).status).toBe(204);
  const last = await tokens(await call('POST', '/auth/login', { json: { email, password: newPassword } }));
  expect((await call('POST', '/auth/logout', { json: { refresh_token: last.refresh_token } })).status).toBe(
    204,
  );
  expect(
    (await call('POST', '/auth/logout-all', { headers: { authorization: `Bearer ${live.access_token}` } }))
      .status,
  ).toBe(204);

  // Stop the process so every buffered line is flushed, then read all it wrote.
  await baton.stop();
  log = baton.output();
});
afterAll(() => baton?.stop());

describe('36: logs at trace level hold no tokens, passwords, client secrets or hashes', () => {
  it('the run was logged: a request line for every path the test called', () => {
    const lines = log.split('\n').filter((l) => l.startsWith('{'));
    const logged = new Set(lines.map((l) => (JSON.parse(l) as { req?: { path?: string } }).req?.path));
    for (const path of paths) expect(logged, path).toContain(path);
  });

  it('no secret the server handled appears anywhere in its output', () => {
    expect(secrets.size).toBeGreaterThan(20);
    const leaked = [...secrets].filter((secret) => log.includes(secret));
    // Report which kinds leaked, not the secrets themselves.
    expect(leaked.map((s) => `${s.slice(0, 4)}… (${s.length} chars)`)).toEqual([]);
  });

  it('nor anything shaped like one: JWTs, brt_/bdv_/bcs_ tokens, Argon2 hashes, Basic or Bearer credentials', () => {
    for (const shape of [
      /eyJ[A-Za-z0-9_-]{10,}/,
      /brt_[A-Za-z0-9_-]{10,}/,
      /bdv_[A-Za-z0-9_-]{10,}/,
      /bcs_[A-Za-z0-9_-]{10,}/,
      /\$argon2/,
      /Basic [A-Za-z0-9+/]{8,}/,
      /Bearer [A-Za-z0-9._-]{8,}/,
    ]) {
      expect(shape.test(log), String(shape)).toBe(false);
    }
  });
});
