// Security requirements (docs/security.md) that have no narrower home, black-box through HTTP
// (in-process `inject`, a real SQLite file, a moved clock). Each `describe`
// names the item it proves; docs/security.md maps every item to its tests.
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ISSUER, refresh, signUp, type TestApp, tempStore, testApp, testClock } from '../../test/helpers.js';
import { createClient } from '../core/clients.js';
import { createSqliteStore } from '../store/sqlite/sqlite-store.js';
import { createServer } from './app.js';
import { REFRESH_COOKIE } from './cookies.js';

const EMAIL = 'ada@example.com';
const PASSWORD = 'correct horse battery';
const SEC = 1000;
const DAY = 86_400_000;
const NO_LIMITS = { loginFailuresPerAccount: null, requestsPerIpPerMinute: null };
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };
const BROWSER = { origin: ISSUER, 'sec-fetch-site': 'same-origin', 'x-baton-csrf': '1' };

const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;

/** `POST /oauth/token` with the refresh grant for a public client. */
function oauthRefresh(app: FastifyInstance, refreshToken: string, clientId = 'app') {
  return app.inject({
    method: 'POST',
    url: '/oauth/token',
    headers: FORM,
    payload: new URLSearchParams({
      grant_type: 'refresh_token',
      refresh_token: refreshToken,
      client_id: clientId,
    }).toString(),
  });
}

/** The two refresh routes: Baton's own (401 on a bad grant, as the seed) and RFC 6749's (400). */
const ROUTES = [
  { name: '/auth/refresh', call: refresh, failStatus: 401 },
  { name: '/oauth/token', call: oauthRefresh, failStatus: 400 },
] as const;

function expectInvalidGrant(res: LightMyRequestResponse, status: number): void {
  expect({ status: res.statusCode, error: res.json().error }).toEqual({ status, error: 'invalid_grant' });
}

/** Flips one character of a token to a different one of the same alphabet. */
const flipAt = (token: string, i: number) =>
  token.slice(0, i) + (token[i] === 'A' ? 'B' : 'A') + token.slice(i + 1);

/** A metric value from the Prometheus text of `/metrics`. */
async function metric(app: FastifyInstance, line: string): Promise<number> {
  const text = (await app.inject({ url: '/metrics' })).body;
  const found = text.split('\n').find((l) => l.startsWith(`${line} `));
  return found ? Number(found.slice(line.length + 1)) : 0;
}

describe('1: every token response, success or error, is JSON and never cached', () => {
  let t: TestApp;
  let limited: TestApp;
  beforeEach(async () => {
    t = await testApp({ limits: { loginFailuresPerAccount: 2, requestsPerIpPerMinute: null } });
    limited = await testApp({ limits: { loginFailuresPerAccount: null, requestsPerIpPerMinute: 1 } });
  });
  afterEach(async () => {
    await t.close();
    await limited.close();
  });

  /** RFC 6749 §5.1, §5.2. */
  function expectTokenHeaders(res: LightMyRequestResponse, what: string): void {
    expect(res.headers['content-type'], what).toMatch(/^application\/json(;|$)/);
    expect(res.headers['cache-control'], what).toBe('no-store');
    expect(res.headers.pragma, what).toBe('no-cache');
    JSON.parse(res.body);
  }

  it('login, refresh, /oauth/token and the seed route, in every outcome', async () => {
    const a = await signUp(t.app, EMAIL, PASSWORD);
    const big = JSON.stringify({ email: EMAIL, password: 'x'.repeat(100 * 1024) });
    const cookie = await t.app.inject({
      method: 'POST',
      url: '/auth/login',
      headers: BROWSER,
      payload: { email: EMAIL, password: PASSWORD, mode: 'cookie' },
    });
    const rtCookie = cookie.cookies.find((c) => c.name === REFRESH_COOKIE)!.value;
    const cases: [string, number, InjectOptions][] = [
      ['login', 200, { method: 'POST', url: '/auth/login', payload: { email: EMAIL, password: PASSWORD } }],
      ['login, missing password', 400, { method: 'POST', url: '/auth/login', payload: { email: EMAIL } }],
      [
        'login, wrong password',
        401,
        { method: 'POST', url: '/auth/login', payload: { email: EMAIL, password: 'nope nope' } },
      ],
      [
        'login in cookie mode from a foreign origin',
        403,
        {
          method: 'POST',
          url: '/auth/login',
          headers: { ...BROWSER, origin: 'https://evil.example' },
          payload: { email: EMAIL, password: PASSWORD, mode: 'cookie' },
        },
      ],
      ['GET /auth/login', 405, { method: 'GET', url: '/auth/login' }],
      [
        'login, 100 KB body',
        413,
        { method: 'POST', url: '/auth/login', headers: { 'content-type': 'application/json' }, payload: big },
      ],
      [
        'login, text/plain',
        415,
        { method: 'POST', url: '/auth/login', headers: { 'content-type': 'text/plain' }, payload: 'x' },
      ],
      ['refresh', 200, { method: 'POST', url: '/auth/refresh', payload: { refresh_token: a.refresh_token } }],
      [
        'refresh by cookie',
        200,
        { method: 'POST', url: '/auth/refresh', headers: BROWSER, cookies: { [REFRESH_COOKIE]: rtCookie } },
      ],
      ['refresh, wrong type', 400, { method: 'POST', url: '/auth/refresh', payload: { refresh_token: 1 } }],
      [
        'refresh, bad token',
        401,
        { method: 'POST', url: '/auth/refresh', payload: { refresh_token: 'brt_x' } },
      ],
      [
        'refresh by cookie without the CSRF header',
        403,
        { method: 'POST', url: '/auth/refresh', cookies: { [REFRESH_COOKIE]: rtCookie } },
      ],
      ['GET /auth/refresh', 405, { method: 'GET', url: '/auth/refresh' }],
      [
        'refresh, 100 KB body',
        413,
        {
          method: 'POST',
          url: '/auth/refresh',
          headers: { 'content-type': 'application/json' },
          payload: big,
        },
      ],
      [
        '/oauth/token, bad grant',
        400,
        {
          method: 'POST',
          url: '/oauth/token',
          headers: FORM,
          payload: 'grant_type=refresh_token&refresh_token=brt_x&client_id=app',
        },
      ],
      [
        '/oauth/token, JSON body',
        400,
        { method: 'POST', url: '/oauth/token', payload: { grant_type: 'refresh_token' } },
      ],
      [
        '/oauth/token, unknown client',
        401,
        {
          method: 'POST',
          url: '/oauth/token',
          headers: FORM,
          payload: 'grant_type=refresh_token&refresh_token=brt_x&client_id=nobody',
        },
      ],
      ['GET /oauth/token', 405, { method: 'GET', url: '/oauth/token' }],
      [
        '/oauth/token, 100 KB body',
        413,
        { method: 'POST', url: '/oauth/token', headers: FORM, payload: `token=${'x'.repeat(100 * 1024)}` },
      ],
      [
        'seed route, bad token',
        401,
        { method: 'POST', url: '/api/v1/users/refresh-token', payload: { refreshToken: 'nope' } },
      ],
      [
        'seed route, foreign origin',
        403,
        { method: 'POST', url: '/api/v1/users/refresh-token', headers: { origin: 'https://evil.example' } },
      ],
      ['GET seed route', 405, { method: 'GET', url: '/api/v1/users/refresh-token' }],
    ];
    for (const [what, status, request] of cases) {
      const res = await t.app.inject(request);
      expect(res.statusCode, `${what}: ${res.body}`).toBe(status);
      expectTokenHeaders(res, what);
    }
    const { refresh_token } = await signUp(t.app, EMAIL, PASSWORD);
    const ok = await oauthRefresh(t.app, refresh_token);
    expect(ok.statusCode).toBe(200);
    expectTokenHeaders(ok, '/oauth/token success');
    const seed = await t.app.inject({
      method: 'POST',
      url: '/api/v1/users/refresh-token',
      payload: { refreshToken: ok.json().refresh_token },
    });
    expect(seed.statusCode).toBe(200);
    expectTokenHeaders(seed, 'seed route success');
  });

  it('429s from the login-failure and per-IP limits', async () => {
    await signUp(t.app, EMAIL, PASSWORD);
    const wrong = {
      method: 'POST',
      url: '/auth/login',
      payload: { email: EMAIL, password: 'nope nope' },
    } as const;
    await t.app.inject(wrong);
    await t.app.inject(wrong);
    const locked = await t.app.inject(wrong);
    expect(locked.statusCode).toBe(429);
    expectTokenHeaders(locked, 'login locked');
    for (const request of [
      { method: 'POST', url: '/auth/refresh', payload: { refresh_token: 'brt_x' } },
      { method: 'POST', url: '/oauth/token', headers: FORM, payload: 'grant_type=refresh_token' },
      { method: 'POST', url: '/api/v1/users/refresh-token', payload: {} },
      { method: 'POST', url: '/auth/login', payload: { email: EMAIL, password: PASSWORD } },
    ] as InjectOptions[]) {
      await limited.app.inject({ ...request, remoteAddress: '10.7.7.7' });
      const res = await limited.app.inject({ ...request, remoteAddress: '10.7.7.7' });
      expect(res.statusCode, request.url as string).toBe(429);
      expectTokenHeaders(res, `${request.url} over the per-IP limit`);
      await limited.close();
      limited = await testApp({ limits: { loginFailuresPerAccount: null, requestsPerIpPerMinute: 1 } });
    }
  });
});

describe('refresh-token rotation and reuse through HTTP (9–12)', () => {
  let t: TestApp;
  beforeEach(async () => {
    t = await testApp({ limits: NO_LIMITS });
  });
  afterEach(() => t.close());

  it('9: RT1 → RT2 ≠ RT1; the secret half is 256 bits, fresh every time', async () => {
    const seen = new Set<string>();
    let rt = (await signUp(t.app, EMAIL, PASSWORD)).refresh_token;
    for (let i = 0; i < 20; i++) {
      const match = /^brt_([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{43})$/.exec(rt);
      expect(match).not.toBeNull();
      expect(Buffer.from(match![2]!, 'base64url')).toHaveLength(32);
      expect(seen.has(match![2]!)).toBe(false);
      seen.add(match![2]!);
      const next = await (i % 2 ? oauthRefresh(t.app, rt) : refresh(t.app, rt));
      expect(next.statusCode).toBe(200);
      expect(next.json().refresh_token).not.toBe(rt);
      rt = next.json().refresh_token;
    }
  });

  for (const { name, call, failStatus } of ROUTES) {
    it(`10: on ${name}, a replay after the grace window fails and revokes the whole session`, async () => {
      const { refresh_token: rt1, access_token } = await signUp(t.app, EMAIL, PASSWORD);
      const rt2 = (await call(t.app, rt1)).json().refresh_token;
      // Inside the window the same successor comes back (concurrent tabs).
      t.clock.advance(9 * SEC);
      expect((await call(t.app, rt1)).json().refresh_token).toBe(rt2);
      t.clock.advance(1 * SEC + 1);
      expectInvalidGrant(await call(t.app, rt1), failStatus);
      // The newest token of the session fails too, by either route, and so does its access token.
      expectInvalidGrant(await call(t.app, rt2), failStatus);
      expectInvalidGrant(await refresh(t.app, rt2), 401);
      const me = await t.app.inject({
        url: '/auth/me',
        headers: { authorization: `Bearer ${access_token}` },
      });
      expect(me.statusCode).toBe(401);
    });

    it(`11: on ${name}, attacker rotates first, victim replays after the window: both fail`, async () => {
      const { refresh_token: stolen } = await signUp(t.app, EMAIL, PASSWORD);
      const attackers = await call(t.app, stolen);
      expect(attackers.statusCode).toBe(200);
      t.clock.advance(30 * SEC);
      expectInvalidGrant(await call(t.app, stolen), failStatus);
      expectInvalidGrant(await call(t.app, attackers.json().refresh_token), failStatus);
    });

    it(`12: on ${name}, every one-character change of an RT is invalid_grant and revokes nothing`, async () => {
      const { refresh_token } = await signUp(t.app, EMAIL, PASSWORD);
      for (let i = 'brt_'.length; i < refresh_token.length; i++) {
        if (refresh_token[i] === '.') continue;
        expectInvalidGrant(await call(t.app, flipAt(refresh_token, i)), failStatus);
      }
      // The genuine token still *rotates* (not a grace replay): nothing above touched it.
      expect((await call(t.app, refresh_token)).statusCode).toBe(200);
      expect(await metric(t.app, 'baton_refresh_total{outcome="rotated"}')).toBe(1);
      expect(await metric(t.app, 'baton_refresh_total{outcome="reuse_detected"}')).toBe(0);
    });
  }
});

describe('13: N parallel refreshes of one RT — at most one successor is ever valid', () => {
  /** Two server instances on one SQLite file (two connections), sharing a clock. */
  async function twoInstances() {
    const { store, file, dispose } = await tempStore();
    const other = createSqliteStore({ filename: file });
    const clock = testClock();
    const rsClient = await createClient(store, { id: 'rs', type: 'confidential' }, clock());
    const apps = [
      await createServer({ store, issuer: ISSUER, now: clock, limits: NO_LIMITS }),
      await createServer({ store: other, issuer: ISSUER, now: clock, limits: NO_LIMITS }),
    ];
    for (const app of apps) await app.ready();
    return {
      apps,
      clock,
      /** Tokens of `candidates` that introspection calls active (= the family's current token). */
      async active(candidates: Iterable<string>): Promise<string[]> {
        const out: string[] = [];
        for (const token of new Set(candidates)) {
          const res = await apps[0]!.inject({
            method: 'POST',
            url: '/oauth/introspect',
            headers: { ...FORM, authorization: basic('rs', rsClient.secret!) },
            payload: new URLSearchParams({ token }).toString(),
          });
          if (res.json().active === true) out.push(token);
        }
        return out;
      },
      async close() {
        for (const app of apps) await app.close();
        await other.close();
        await dispose();
      },
    };
  }

  /** One refresh by route `i % 3` on instance `i % 2`: Baton's, RFC 6749's and the seed's. */
  async function anyRoute(
    apps: FastifyInstance[],
    rt: string,
    i: number,
  ): Promise<[number, string | undefined]> {
    const app = apps[i % 2]!;
    if (i % 3 === 0) {
      const res = await refresh(app, rt);
      return [res.statusCode, res.json().refresh_token];
    }
    if (i % 3 === 1) {
      const res = await oauthRefresh(app, rt);
      return [res.statusCode, res.json().refresh_token];
    }
    const res = await app.inject({
      method: 'POST',
      url: '/api/v1/users/refresh-token',
      payload: { refreshToken: rt },
    });
    return [res.statusCode, res.json().data?.refreshToken];
  }

  const N = 30;

  it('inside the grace window every caller gets the one and the same successor', async () => {
    const x = await twoInstances();
    try {
      const { refresh_token: rt1 } = await signUp(x.apps[0]!, EMAIL, PASSWORD);
      const results = await Promise.all(Array.from({ length: N }, (_, i) => anyRoute(x.apps, rt1, i)));
      expect(results.map(([status]) => status)).toEqual(Array(N).fill(200));
      const successors = new Set(results.map(([, rt]) => rt));
      expect(successors.size).toBe(1);
      expect(await x.active([rt1, ...successors] as string[])).toEqual([...successors]);
      // Exactly one rotation happened, whichever instance won it.
      const rotated = await Promise.all(
        x.apps.map((app) => metric(app, 'baton_refresh_total{outcome="rotated"}')),
      );
      expect(rotated[0]! + rotated[1]!).toBe(1);
    } finally {
      await x.close();
    }
  });

  it('racing the parent against its successor never leaves two live tokens; the thief’s race kills the session', async () => {
    const x = await twoInstances();
    try {
      const { refresh_token: rt1 } = await signUp(x.apps[0]!, EMAIL, PASSWORD);
      const rt2 = (await refresh(x.apps[0]!, rt1)).json().refresh_token as string;
      // Some callers still hold RT1, one has moved on to RT2: all at once.
      const results = await Promise.all(
        Array.from({ length: N }, (_, i) => anyRoute(x.apps, i === N / 2 ? rt2 : rt1, i)),
      );
      const issued = results.flatMap(([status, rt]) => (status === 200 && rt ? [rt] : []));
      expect((await x.active([rt1, rt2, ...issued])).length).toBeLessThanOrEqual(1);
      // RT2 was used while RT1 replays kept coming: those are reuse, and the session is gone.
      x.clock.advance(11 * SEC);
      const after = await Promise.all(Array.from({ length: N }, (_, i) => anyRoute(x.apps, rt1, i)));
      expect(after.every(([status]) => status === 400 || status === 401)).toBe(true);
      expect(await x.active([rt1, rt2, ...issued])).toEqual([]);
      for (const rt of new Set([rt2, ...issued]))
        expect((await refresh(x.apps[1]!, rt)).statusCode).toBe(401);
    } finally {
      await x.close();
    }
  });

  it('after the grace window N parallel replays all fail and the newest token dies with them', async () => {
    const x = await twoInstances();
    try {
      const { refresh_token: rt1 } = await signUp(x.apps[0]!, EMAIL, PASSWORD);
      const rt2 = (await oauthRefresh(x.apps[1]!, rt1)).json().refresh_token as string;
      x.clock.advance(10 * SEC + 1);
      const results = await Promise.all(Array.from({ length: N }, (_, i) => anyRoute(x.apps, rt1, i)));
      expect(results.filter(([status]) => status === 200)).toEqual([]);
      expect(await x.active([rt1, rt2])).toEqual([]);
      expectInvalidGrant(await refresh(x.apps[0]!, rt2), 401);
    } finally {
      await x.close();
    }
  });
});

describe('14: idle and absolute expiry through HTTP, with a moved clock', () => {
  for (const { name, call, failStatus } of ROUTES) {
    it(`on ${name}: a session dies after 14 days unused; each use slides that deadline`, async () => {
      // A long absolute lifetime, so only the idle rule can end the session here.
      const t = await testApp({ limits: NO_LIMITS, sessionMaxTtl: 90 * DAY });
      try {
        const { refresh_token: rt1 } = await signUp(t.app, EMAIL, PASSWORD);
        t.clock.advance(10 * DAY);
        const rt2 = (await call(t.app, rt1)).json().refresh_token;
        // Day 23: past the first idle deadline (day 14), but only 13 days after the last use.
        t.clock.advance(13 * DAY);
        const r3 = await call(t.app, rt2);
        expect(r3.statusCode).toBe(200);
        t.clock.advance(14 * DAY);
        expectInvalidGrant(await call(t.app, r3.json().refresh_token), failStatus);
      } finally {
        await t.close();
      }
    });

    it(`on ${name}: sliding refresh never extends past the 30-day absolute limit`, async () => {
      const t = await testApp({ limits: NO_LIMITS });
      try {
        let rt = (await signUp(t.app, EMAIL, PASSWORD)).refresh_token;
        for (const step of [13 * DAY, 13 * DAY, 4 * DAY - 10 * SEC]) {
          t.clock.advance(step);
          const res = await call(t.app, rt);
          expect(res.statusCode).toBe(200);
          rt = res.json().refresh_token;
          // An access token never outlives its session.
          expect(res.json().expires_in).toBeLessThanOrEqual(900);
        }
        // Ten seconds before the end: the access token is cut to what is left.
        const last = await call(t.app, rt);
        expect(last.json().expires_in).toBeLessThanOrEqual(10);
        t.clock.advance(10 * SEC);
        expectInvalidGrant(await call(t.app, last.json().refresh_token), failStatus);
      } finally {
        await t.close();
      }
    });
  }
});

describe('15 and 16: disabled accounts; fresh logins', () => {
  let t: TestApp;
  beforeEach(async () => {
    t = await testApp({ limits: NO_LIMITS });
  });
  afterEach(() => t.close());

  it('15: disabling an account makes every refresh token of the user fail, by every route', async () => {
    const a = await signUp(t.app, EMAIL, PASSWORD);
    const b = await signUp(t.app, EMAIL, PASSWORD);
    const c = (await refresh(t.app, b.refresh_token)).json();
    const eve = await signUp(t.app, 'eve@example.com', PASSWORD);
    const user = (await t.store.findUserByEmail(EMAIL))!;
    // Baton has no HTTP route to disable a user: the store's operation is what an admin tool calls.
    await t.store.setUserDisabled({ userId: user.id, disabled: true, now: t.clock() });
    for (const rt of [a.refresh_token, c.refresh_token]) {
      expectInvalidGrant(await refresh(t.app, rt), 401);
      expectInvalidGrant(await oauthRefresh(t.app, rt), 400);
    }
    const me = await t.app.inject({
      url: '/auth/me',
      headers: { authorization: `Bearer ${c.access_token}` },
    });
    expect(me.statusCode).toBe(401);
    const login = await t.app.inject({
      method: 'POST',
      url: '/auth/login',
      payload: { email: EMAIL, password: PASSWORD },
    });
    expect(login.statusCode).toBe(401);
    expect((await refresh(t.app, eve.refresh_token)).statusCode).toBe(200);
  });

  it('16: a login always starts a new session; a planted refresh cookie is neither reused nor kept', async () => {
    const before = await signUp(t.app, EMAIL, PASSWORD);
    const again = (
      await t.app.inject({
        method: 'POST',
        url: '/auth/login',
        payload: { email: EMAIL, password: PASSWORD },
      })
    ).json();
    expect(again.session_id).not.toBe(before.session_id);
    expect(again.refresh_token).not.toBe(before.refresh_token);
    const claims = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString());
    expect(claims(again.access_token).sid).toBe(again.session_id);
    expect(claims(again.access_token).jti).not.toBe(claims(before.access_token).jti);

    // Session fixation: a cookie planted before login (here: someone else's live token) plays no part.
    const eve = await signUp(t.app, 'eve@example.com', PASSWORD);
    const res = await t.app.inject({
      method: 'POST',
      url: '/auth/login',
      headers: BROWSER,
      cookies: { [REFRESH_COOKIE]: eve.refresh_token },
      payload: { email: EMAIL, password: PASSWORD, mode: 'cookie' },
    });
    expect(res.statusCode).toBe(200);
    const cookie = res.cookies.find((c) => c.name === REFRESH_COOKIE)!;
    expect(cookie.value).not.toBe(eve.refresh_token);
    expect(res.json().session_id).not.toBe(eve.session_id);
    expect(claims(res.json().access_token).sub).toBe(claims(before.access_token).sub);
    const viaCookie = await t.app.inject({
      method: 'POST',
      url: '/auth/refresh',
      headers: BROWSER,
      cookies: { [REFRESH_COOKIE]: cookie.value },
    });
    expect(claims(viaCookie.json().access_token).sid).toBe(res.json().session_id);
  });
});

describe('29 and 30: methods and CSRF on the remaining routes', () => {
  let t: TestApp;
  beforeEach(async () => {
    t = await testApp({ limits: NO_LIMITS });
    await signUp(t.app, EMAIL, PASSWORD);
  });
  afterEach(() => t.close());

  it('29: GET on every POST route is 405 with Allow: POST', async () => {
    for (const url of [
      '/auth/register',
      '/auth/login',
      '/auth/refresh',
      '/auth/logout',
      '/auth/logout-all',
      '/auth/password',
      '/oauth/token',
      '/oauth/revoke',
      '/oauth/introspect',
      '/api/v1/users/refresh-token',
    ]) {
      const res = await t.app.inject({ method: 'GET', url });
      expect(res.statusCode, url).toBe(405);
      expect(res.headers.allow).toBe('POST');
      expect(res.json().error).toBe('method_not_allowed');
    }
  });

  it('30: a cookie-mode login cross-site or without the custom header is refused and sets no cookie', async () => {
    const refusals = [
      { ...BROWSER, 'sec-fetch-site': 'cross-site' },
      { origin: ISSUER, 'sec-fetch-site': 'same-origin' },
      { ...BROWSER, origin: 'null' },
    ];
    for (const headers of refusals) {
      const res = await t.app.inject({
        method: 'POST',
        url: '/auth/login',
        headers,
        payload: { email: EMAIL, password: PASSWORD, mode: 'cookie' },
      });
      expect(res.statusCode).toBe(403);
      expect(res.json().error).toBe('access_denied');
      expect(res.headers['set-cookie']).toBeUndefined();
    }
    const sessions = await t.store.listActiveSessions((await t.store.findUserByEmail(EMAIL))!.id, t.clock());
    expect(sessions).toHaveLength(1);
  });
});

describe('33 and 34: password storage and rules', () => {
  let t: TestApp;
  beforeEach(async () => {
    t = await testApp({ limits: NO_LIMITS });
  });
  afterEach(() => t.close());

  const register = (email: string, password: string) =>
    t.app.inject({ method: 'POST', url: '/auth/register', payload: { email, password } });
  const login = (email: string, password: string) =>
    t.app.inject({ method: 'POST', url: '/auth/login', payload: { email, password } });

  it('33: registration and a password change both store Argon2id with m=19456, t=2, p=1', async () => {
    const { access_token } = await signUp(t.app, EMAIL, PASSWORD);
    const phc = /^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/;
    expect((await t.store.findUserByEmail(EMAIL))!.passwordHash).toMatch(phc);
    const change = await t.app.inject({
      method: 'POST',
      url: '/auth/password',
      headers: { authorization: `Bearer ${access_token}` },
      payload: { current_password: PASSWORD, new_password: 'another long secret' },
    });
    expect(change.statusCode).toBe(204);
    expect((await t.store.findUserByEmail(EMAIL))!.passwordHash).toMatch(phc);
  });

  it('34: minimum 8 characters (code points, not UTF-16 units), no composition rules', async () => {
    expect((await register('a@example.com', 'aaaaaaa')).statusCode).toBe(400);
    expect((await register('b@example.com', 'aaaaaaaa')).statusCode).toBe(201);
    expect((await register('c@example.com', '12345678')).statusCode).toBe(201);
    // Seven emoji are fourteen UTF-16 units but seven characters.
    expect((await register('d@example.com', '🔑'.repeat(7))).statusCode).toBe(400);
    expect((await register('e@example.com', '🔑'.repeat(8))).statusCode).toBe(201);
    expect((await login('e@example.com', '🔑'.repeat(8))).statusCode).toBe(200);
  });

  it('34: a generous maximum (1024 ≥ 128), and long passwords work end to end', async () => {
    for (const [email, length] of [
      ['p128@example.com', 128],
      ['p1024@example.com', 1024],
    ] as const) {
      const password = 'x'.repeat(length - 1) + 'y';
      expect((await register(email, password)).statusCode).toBe(201);
      expect((await login(email, password)).statusCode).toBe(200);
      expect((await login(email, 'x'.repeat(length))).statusCode).toBe(401);
    }
    expect((await register('p1025@example.com', 'x'.repeat(1025))).statusCode).toBe(400);
  });

  it('34: no truncation — passwords that differ only after 72 bytes are different passwords', async () => {
    // bcrypt reads 72 bytes: ASCII at character 73, and a 72-byte prefix of two-byte characters.
    for (const [email, prefix] of [
      ['ascii@example.com', 'x'.repeat(72)],
      ['utf8@example.com', 'é'.repeat(36)],
    ] as const) {
      expect(Buffer.byteLength(prefix)).toBe(72);
      expect((await register(email, `${prefix}A`)).statusCode).toBe(201);
      expect((await login(email, `${prefix}B`)).statusCode).toBe(401);
      expect((await login(email, prefix)).statusCode).toBe(401);
      expect((await login(email, `${prefix}A`)).statusCode).toBe(200);
    }
  });

  it('34: the same rules hold for a new password', async () => {
    const { access_token } = await signUp(t.app, EMAIL, PASSWORD);
    const change = (new_password: string) =>
      t.app.inject({
        method: 'POST',
        url: '/auth/password',
        headers: { authorization: `Bearer ${access_token}` },
        payload: { current_password: PASSWORD, new_password },
      });
    expect((await change('short')).statusCode).toBe(400);
    expect((await change('x'.repeat(1025))).statusCode).toBe(400);
    // Nothing changed: the old password still logs in.
    expect((await login(EMAIL, PASSWORD)).statusCode).toBe(200);
  });
});

describe('35: spoofed X-Forwarded-* and duplicate headers', () => {
  let t: TestApp;
  beforeEach(async () => {
    t = await testApp({ limits: NO_LIMITS });
  });
  afterEach(() => t.close());

  const MARKER = 'zq9MARKERzq9';
  const spoofed = {
    host: `${MARKER}.example`,
    'x-forwarded-host': `${MARKER}.example`,
    'x-forwarded-proto': 'https',
    'x-forwarded-for': `${MARKER}, 198.51.100.1`,
    forwarded: `for=198.51.100.1;host=${MARKER}.example;proto=https`,
  };

  async function snapshot(): Promise<string> {
    const users = await t.store.listUsers();
    const sessions = await Promise.all(users.map((u) => t.store.listActiveSessions(u.id, t.clock())));
    return JSON.stringify({ users: users.map((u) => [u.id, u.passwordHash, u.disabledAt]), sessions });
  }

  it('documents built from the issuer ignore Host and X-Forwarded-Host/Proto', async () => {
    for (const url of ['/.well-known/oauth-authorization-server', '/.well-known/jwks.json']) {
      const plain = await t.app.inject({ url });
      const forged = await t.app.inject({ url, headers: spoofed });
      expect(forged.body).toBe(plain.body);
      expect(forged.body).not.toContain(MARKER);
    }
  });

  it('a spoofed forwarded host does not make a foreign Origin same-origin', async () => {
    await signUp(t.app, EMAIL, PASSWORD);
    const res = await t.app.inject({
      method: 'POST',
      url: '/auth/login',
      headers: { ...spoofed, ...BROWSER, origin: `https://${MARKER}.example` },
      payload: { email: EMAIL, password: PASSWORD, mode: 'cookie' },
    });
    expect(res.statusCode).toBe(403);
    expect(res.body).not.toContain(MARKER);
  });

  it('X-Forwarded-For is ignored from an untrusted peer, and a trusted proxy’s own hop wins over a forged one', async () => {
    const direct = await signUp(t.app, EMAIL, PASSWORD);
    await t.app.inject({
      method: 'POST',
      url: '/auth/login',
      headers: spoofed,
      remoteAddress: '10.0.0.9',
      payload: { email: EMAIL, password: PASSWORD },
    });
    const list = await t.app.inject({
      url: '/auth/sessions',
      headers: { authorization: `Bearer ${direct.access_token}` },
    });
    const ips = (list.json().sessions as { ip: string }[]).map((s) => s.ip).sort();
    expect(ips).toEqual(['10.0.0.9', '127.0.0.1']);

    const proxied = await testApp({ limits: NO_LIMITS, trustProxy: ['127.0.0.1'] });
    try {
      const { access_token } = await signUp(proxied.app, EMAIL, PASSWORD);
      // The client forged the first entry; the trusted proxy appended the address it saw.
      await proxied.app.inject({
        method: 'POST',
        url: '/auth/login',
        headers: { 'x-forwarded-for': `${MARKER}, 203.0.113.7` },
        payload: { email: EMAIL, password: PASSWORD },
      });
      const sessions = await proxied.app.inject({
        url: '/auth/sessions',
        headers: { authorization: `Bearer ${access_token}` },
      });
      expect(sessions.body).toContain('203.0.113.7');
      expect(sessions.body).not.toContain(MARKER);
    } finally {
      await proxied.close();
    }
  });

  it('a repeated Authorization, Host, Content-Type, Origin, Sec-Fetch-Site or CSRF header is 400, whichever copy is good', async () => {
    const { access_token } = await signUp(t.app, EMAIL, PASSWORD);
    const good = `Bearer ${access_token}`;
    const repeated: [string, Record<string, string | string[]>][] = [
      ['/auth/me', { authorization: [good, good] }],
      ['/auth/me', { authorization: [good, 'Bearer x'] }],
      ['/auth/me', { authorization: good, host: ['localhost:3000', 'localhost:3000'] }],
      ['/auth/me', { authorization: good, origin: [ISSUER, ISSUER] }],
      ['/auth/me', { authorization: good, 'sec-fetch-site': ['same-origin', 'same-origin'] }],
      ['/auth/me', { authorization: good, 'x-baton-csrf': ['1', '1'] }],
      ['/auth/me', { authorization: good, 'content-type': ['application/json', 'application/json'] }],
      ['/healthz', { host: ['localhost:3000', 'other.example'] }],
    ];
    for (const [url, headers] of repeated) {
      const res = await t.app.inject({ url, headers: headers as InjectOptions['headers'] });
      expect(res.statusCode, `${url} ${Object.keys(headers).join(' ')}`).toBe(400);
      expect(res.json().error).toBe('invalid_request');
      expect(res.headers['cache-control']).toBe('no-store');
    }
    // Headers that are lists by definition may repeat.
    const listed = await t.app.inject({
      url: '/auth/me',
      headers: {
        authorization: good,
        accept: ['application/json', 'text/plain'],
      } as InjectOptions['headers'],
    });
    expect(listed.statusCode).toBe(200);
  });

  it('duplicated Authorization, Origin, Cookie, CSRF and Content-Type headers: a 4xx JSON error, no echo, no change', async () => {
    const a = await signUp(t.app, EMAIL, PASSWORD);
    const cookieLogin = await t.app.inject({
      method: 'POST',
      url: '/auth/login',
      headers: BROWSER,
      payload: { email: EMAIL, password: PASSWORD, mode: 'cookie' },
    });
    const rt = cookieLogin.cookies.find((c) => c.name === REFRESH_COOKIE)!.value;
    const before = await snapshot();
    // Arrays are repeated header lines; Node's types only allow that for some headers, hence the cast below.
    type Repeated = Omit<InjectOptions, 'headers'> & { headers: Record<string, string | string[]> };
    const cases: Repeated[] = [
      // Node keeps the first copy of some headers and joins others; a proxy may read another copy.
      { url: '/auth/me', headers: { authorization: [`Bearer ${a.access_token}`, `Bearer ${MARKER}`] } },
      {
        method: 'POST',
        url: '/auth/logout-all',
        headers: { authorization: [`Bearer ${a.access_token}`, `Bearer ${MARKER}`] },
      },
      {
        method: 'POST',
        url: '/auth/refresh',
        headers: { ...BROWSER, 'x-baton-csrf': ['', ''] },
        cookies: { [REFRESH_COOKIE]: rt },
      },
      {
        method: 'POST',
        url: '/auth/refresh',
        headers: { ...BROWSER, 'sec-fetch-site': ['same-origin', 'cross-site'] },
        cookies: { [REFRESH_COOKIE]: rt },
      },
      {
        method: 'POST',
        url: '/auth/login',
        headers: { host: ['localhost:3000', `${MARKER}.example`], 'content-type': 'application/json' },
        payload: JSON.stringify({ email: EMAIL, password: PASSWORD }),
      },
      { url: '/auth/me', headers: { authorization: [`Bearer ${MARKER}`, `Bearer ${a.access_token}`] } },
      {
        method: 'POST',
        url: '/auth/logout-all',
        headers: { authorization: [`Bearer ${MARKER}`, `Bearer ${a.access_token}`] },
      },
      {
        method: 'POST',
        url: '/auth/refresh',
        headers: { ...BROWSER, origin: [ISSUER, `https://${MARKER}.example`] },
        cookies: { [REFRESH_COOKIE]: rt },
      },
      {
        method: 'POST',
        url: '/auth/logout',
        headers: { ...BROWSER, origin: [`https://${MARKER}.example`, ISSUER] },
        cookies: { [REFRESH_COOKIE]: rt },
      },
      {
        method: 'POST',
        url: '/auth/refresh',
        headers: { ...BROWSER, cookie: [`${REFRESH_COOKIE}=${MARKER}`, `${REFRESH_COOKIE}=${MARKER}2`] },
      },
      {
        method: 'POST',
        url: '/oauth/token',
        headers: { 'content-type': ['application/x-www-form-urlencoded', 'application/json'] },
        payload: `grant_type=refresh_token&refresh_token=${MARKER}&client_id=app`,
      },
      {
        method: 'POST',
        url: '/oauth/token',
        headers: { ...FORM, authorization: [basic('app', MARKER), basic('rs', MARKER)] },
        payload: `grant_type=refresh_token&refresh_token=${MARKER}`,
      },
    ];
    for (const request of cases) {
      const res = await t.app.inject({ ...request, headers: request.headers as InjectOptions['headers'] });
      const what = `${request.method ?? 'GET'} ${request.url as string}`;
      expect(res.statusCode, `${what}: ${res.body}`).toBeGreaterThanOrEqual(400);
      expect(res.statusCode, what).toBeLessThan(500);
      expect(Object.keys(res.json())).toEqual(expect.arrayContaining(['error', 'error_description']));
      expect(res.body).not.toContain(MARKER);
    }
    expect(await snapshot()).toBe(before);
    // The cookie session was neither rotated nor revoked: it still *rotates*.
    const ok = await t.app.inject({
      method: 'POST',
      url: '/auth/refresh',
      headers: BROWSER,
      cookies: { [REFRESH_COOKIE]: rt },
    });
    expect(ok.statusCode).toBe(200);
    expect(await metric(t.app, 'baton_refresh_total{outcome="grace_replay"}')).toBe(0);
  });
});
