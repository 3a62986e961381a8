import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { makeProof, type ProofKey, type ProofOptions, proofKey } from '../../test/dpop.js';
import { ISSUER, type TestApp, tempStore, testApp, testClock } from '../../test/helpers.js';
import { createClient } from '../core/clients.js';
import { createSqliteStore } from '../store/sqlite/sqlite-store.js';
import { createServer } from './app.js';
import { REFRESH_COOKIE } from './cookies.js';

/** RFC 9449 DPoP-bound sessions, over HTTP: proofs, nonces, binding and the rotation rules for bound sessions. */
describe('DPoP-bound sessions', () => {
  let t: TestApp;
  let key: ProofKey;
  const credentials = { email: 'ada@example.com', password: 'correct horse battery' };

  beforeEach(async () => {
    t = await testApp();
    key = proofKey();
    const reg = await t.app.inject({ method: 'POST', url: '/auth/register', payload: credentials });
    expect(reg.statusCode).toBe(201);
  });
  afterEach(() => t.close());

  /** A proof for `path` on the server's clock, unless the options say otherwise. */
  const proof = (path: string, opts: ProofOptions = {}, k: ProofKey = key) =>
    makeProof(k, { htu: `${ISSUER}${path}`, iat: Math.floor(t.clock() / 1000), ...opts });

  async function login(headers: Record<string, string> = { dpop: proof('/auth/login') }) {
    const res = await t.app.inject({ method: 'POST', url: '/auth/login', headers, payload: credentials });
    expect(res.statusCode).toBe(200);
    return res.json() as { refresh_token: string; access_token: string; session_id: string };
  }

  const refresh = (
    refreshToken: string,
    headers: Record<string, string> = { dpop: proof('/auth/refresh') },
  ) =>
    t.app.inject({ method: 'POST', url: '/auth/refresh', headers, payload: { refresh_token: refreshToken } });

  async function sessions(accessToken: string) {
    const res = await t.app.inject({
      url: '/auth/sessions',
      headers: { authorization: `Bearer ${accessToken}` },
    });
    expect(res.statusCode).toBe(200);
    return res.json().sessions as { id: string; dpop_bound: boolean }[];
  }

  it('a login with a proof binds the session; one without does not', async () => {
    const bound = await login();
    expect(await sessions(bound.access_token)).toEqual([
      expect.objectContaining({ id: bound.session_id, dpop_bound: true }),
    ]);
    const plain = await login({});
    const listed = await sessions(plain.access_token);
    expect(listed.find((s) => s.id === plain.session_id)?.dpop_bound).toBe(false);
    // The access token stays a Bearer token (RFC 9449 §5 lets the AS keep it unbound).
    const r = await refresh(bound.refresh_token);
    expect(r.statusCode).toBe(200);
    expect(r.json().token_type).toBe('Bearer');
  });

  it('a bound session rotates with its key’s proof, and every successor is bound too', async () => {
    const first = await login();
    const r1 = await refresh(first.refresh_token);
    expect(r1.statusCode).toBe(200);
    const rt2 = r1.json().refresh_token;
    expect(rt2).not.toBe(first.refresh_token);
    const without = await refresh(rt2, {});
    expect(without.statusCode).toBe(401);
    expect(without.json().error).toBe('invalid_grant');
    const r2 = await refresh(rt2);
    expect(r2.statusCode).toBe(200);
  });

  describe('a refresh of a bound session is refused, and revokes nothing, with', () => {
    const at = (s: number) => ({ iat: s });
    const cases: {
      name: string;
      header: (now: number) => string | undefined;
      status: number;
      error: string;
      event?: string;
    }[] = [
      {
        name: 'no proof',
        header: () => undefined,
        status: 401,
        error: 'invalid_grant',
        event: 'dpop_proof_missing',
      },
      {
        name: 'a proof by another key',
        header: () => proof('/auth/refresh', {}, proofKey()),
        status: 401,
        error: 'invalid_grant',
        event: 'dpop_key_mismatch',
      },
      {
        name: 'the wrong htm',
        header: () => proof('/auth/refresh', { htm: 'GET' }),
        status: 400,
        error: 'invalid_dpop_proof',
      },
      {
        name: 'a lower-case htm',
        header: () => proof('/auth/refresh', { htm: 'post' }),
        status: 400,
        error: 'invalid_dpop_proof',
      },
      {
        name: 'an htu of another path',
        header: () => proof('/auth/login'),
        status: 400,
        error: 'invalid_dpop_proof',
      },
      {
        name: 'an htu of another host',
        header: () => proof('/auth/refresh', { htu: 'http://evil.example/auth/refresh' }),
        status: 400,
        error: 'invalid_dpop_proof',
      },
      {
        name: 'an htu of another scheme',
        header: () => proof('/auth/refresh', { htu: 'https://localhost:3000/auth/refresh' }),
        status: 400,
        error: 'invalid_dpop_proof',
      },
      {
        name: 'an htu with user information',
        header: () => proof('/auth/refresh', { htu: 'http://ada@localhost:3000/auth/refresh' }),
        status: 400,
        error: 'invalid_dpop_proof',
      },
      {
        name: 'an htu that is not a URI',
        header: () => proof('/auth/refresh', { htu: '/auth/refresh' }),
        status: 400,
        error: 'invalid_dpop_proof',
      },
      {
        name: 'an iat two minutes old',
        header: (n) => proof('/auth/refresh', at(n - 120)),
        status: 400,
        error: 'use_dpop_nonce',
      },
      {
        name: 'an iat a minute ahead',
        header: (n) => proof('/auth/refresh', at(n + 60)),
        status: 400,
        error: 'use_dpop_nonce',
      },
      {
        name: 'a nonce the server never issued',
        header: () =>
          proof('/auth/refresh', { nonce: 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' }),
        status: 400,
        error: 'use_dpop_nonce',
      },
      {
        name: 'alg none',
        header: () => {
          const [h, p] = proof('/auth/refresh', { header: { alg: 'none' } }).split('.');
          return `${h}.${p}.`;
        },
        status: 400,
        error: 'invalid_dpop_proof',
      },
      {
        name: 'alg NONE',
        header: () => proof('/auth/refresh', { header: { alg: 'NONE' } }),
        status: 400,
        error: 'invalid_dpop_proof',
      },
      {
        name: 'alg HS256',
        header: () => proof('/auth/refresh', { header: { alg: 'HS256' } }),
        status: 400,
        error: 'invalid_dpop_proof',
      },
      {
        name: 'alg RS256',
        header: () => proof('/auth/refresh', { header: { alg: 'RS256' } }),
        status: 400,
        error: 'invalid_dpop_proof',
      },
      {
        name: 'a private key in the jwk',
        header: () => proof('/auth/refresh', { header: { jwk: { ...key.jwk, d: 'AAAA' } } }),
        status: 400,
        error: 'invalid_dpop_proof',
      },
      {
        name: 'a symmetric key in the jwk',
        header: () => proof('/auth/refresh', { header: { jwk: { kty: 'oct', k: 'c2VjcmV0' } } }),
        status: 400,
        error: 'invalid_dpop_proof',
      },
      {
        name: 'a jwk of another curve',
        header: () => proof('/auth/refresh', { header: { jwk: { ...key.jwk, crv: 'P-384' } } }),
        status: 400,
        error: 'invalid_dpop_proof',
      },
      {
        name: 'no jwk',
        header: () => proof('/auth/refresh', { header: { jwk: undefined } }),
        status: 400,
        error: 'invalid_dpop_proof',
      },
      {
        name: 'no typ',
        header: () => proof('/auth/refresh', { header: { typ: undefined } }),
        status: 400,
        error: 'invalid_dpop_proof',
      },
      {
        name: 'typ JWT',
        header: () => proof('/auth/refresh', { header: { typ: 'JWT' } }),
        status: 400,
        error: 'invalid_dpop_proof',
      },
      {
        name: 'a crit header',
        header: () => proof('/auth/refresh', { header: { crit: ['exp'] } }),
        status: 400,
        error: 'invalid_dpop_proof',
      },
      {
        name: 'no jti',
        header: () => proof('/auth/refresh', { payload: { jti: undefined } }),
        status: 400,
        error: 'invalid_dpop_proof',
      },
      {
        name: 'no iat',
        header: () => proof('/auth/refresh', { payload: { iat: undefined } }),
        status: 400,
        error: 'invalid_dpop_proof',
      },
      {
        name: 'a bad signature',
        header: () => {
          const parts = proof('/auth/refresh').split('.');
          const sig = Buffer.from(parts[2]!, 'base64url');
          sig[10] = sig[10]! ^ 1;
          return `${parts[0]}.${parts[1]}.${sig.toString('base64url')}`;
        },
        status: 400,
        error: 'invalid_dpop_proof',
      },
      {
        name: 'a signature over other claims',
        header: () => {
          const [h] = proof('/auth/refresh').split('.');
          const [, p, s] = proof('/auth/refresh', { jti: 'other' }).split('.');
          return `${h}.${p}x.${s}`;
        },
        status: 400,
        error: 'invalid_dpop_proof',
      },
      { name: 'a malformed proof', header: () => 'not-a-jwt', status: 400, error: 'invalid_dpop_proof' },
      { name: 'an empty header', header: () => '', status: 400, error: 'invalid_dpop_proof' },
      {
        name: 'an oversized proof',
        header: () => proof('/auth/refresh', { payload: { pad: 'x'.repeat(5000) } }),
        status: 400,
        error: 'invalid_dpop_proof',
      },
    ];

    it.each(cases)('$name → $status $error', async ({ header, status, error, event }) => {
      const { refresh_token } = await login();
      const value = header(Math.floor(t.clock() / 1000));
      const res = await refresh(refresh_token, value === undefined ? {} : { dpop: value });
      expect(res.statusCode).toBe(status);
      expect(res.json().error).toBe(error);
      expect(res.headers['dpop-nonce']).toMatch(/^[A-Za-z0-9_-]{40,}$/);
      // Nothing of the proof comes back.
      if (value) expect(res.body).not.toContain(value.slice(0, 40));
      const events = await t.store.listSecurityEvents();
      if (event)
        expect(events[0]).toMatchObject({
          type: event,
          ip: '127.0.0.1',
          sessionId: expect.stringMatching(/^ses_/),
        });
      else expect(events.filter((e) => e.type.startsWith('dpop_'))).toEqual([]);
      // The owner, with the key, still refreshes the very same (unrotated) token.
      const owner = await refresh(refresh_token);
      expect(owner.statusCode).toBe(200);
      expect((await refresh(owner.json().refresh_token)).statusCode).toBe(200);
    });
  });

  it.each([
    ['the query stripped (RFC 9449 §4.3: query and fragment are ignored)', `${ISSUER}/auth/refresh?x=1#f`],
    ['scheme and host in upper case', 'HTTP://LOCALHOST:3000/auth/refresh'],
    ['the default port spelled out', 'http://localhost:80/auth/refresh'],
    ['a dot segment', `${ISSUER}/auth/./x/../refresh`],
    ['an unreserved character percent-encoded', `${ISSUER}/auth/%72efresh`],
  ])('an htu equal after normalisation is accepted: %s', async (_name, htu) => {
    await t.close();
    // An issuer on the default port, so the port case compares like for like.
    t = await testApp(htu.includes(':80/') ? { issuer: 'http://localhost' } : {});
    await t.app.inject({ method: 'POST', url: '/auth/register', payload: credentials });
    const base = htu.includes(':80/') ? 'http://localhost' : ISSUER;
    const res = await t.app.inject({
      method: 'POST',
      url: '/auth/login',
      headers: { dpop: makeProof(key, { htu: `${base}/auth/login`, iat: Math.floor(t.clock() / 1000) }) },
      payload: credentials,
    });
    expect(res.statusCode).toBe(200);
    const r = await refresh(res.json().refresh_token, { dpop: proof('/auth/refresh', { htu }) });
    expect(r.statusCode).toBe(200);
  });

  it('a lost response is recovered at any age: the used token with a fresh proof gets the same successor', async () => {
    const { refresh_token: rt1 } = await login();
    const lost = await refresh(rt1);
    expect(lost.statusCode).toBe(200);
    const rt2 = lost.json().refresh_token;
    // Far beyond the 10 s grace window that unbound sessions have.
    t.clock.advance(3 * 86_400_000);
    const again = await refresh(rt1);
    expect(again.statusCode).toBe(200);
    expect(again.json().refresh_token).toBe(rt2);
    const next = await refresh(rt2);
    expect(next.statusCode).toBe(200);
  });

  it('an unbound session keeps the grace limit: the same late replay is reuse', async () => {
    const { refresh_token: rt1 } = await login({});
    expect((await refresh(rt1, {})).statusCode).toBe(200);
    t.clock.advance(60_000);
    const late = await refresh(rt1, {});
    expect(late.statusCode).toBe(401);
    expect((await t.store.listSecurityEvents())[0]?.type).toBe('refresh_token_reuse');
  });

  it('a used token whose successor was used is reuse even with a valid proof: the session is revoked', async () => {
    const { refresh_token: rt1 } = await login();
    const rt2 = (await refresh(rt1)).json().refresh_token;
    const rt3 = (await refresh(rt2)).json().refresh_token;
    const reuse = await refresh(rt1);
    expect(reuse.statusCode).toBe(401);
    expect(reuse.json().error).toBe('invalid_grant');
    expect((await t.store.listSecurityEvents())[0]?.type).toBe('refresh_token_reuse');
    expect((await refresh(rt3)).statusCode).toBe(401);
  });

  it('a verbatim replay of a captured request is refused and revokes nothing', async () => {
    const { refresh_token: rt1 } = await login();
    const captured = { dpop: proof('/auth/refresh') };
    const first = await refresh(rt1, captured);
    expect(first.statusCode).toBe(200);
    const replay = await refresh(rt1, captured);
    expect(replay.statusCode).toBe(400);
    expect(replay.json().error).toBe('invalid_dpop_proof');
    expect(replay.body).not.toContain(first.json().refresh_token);
    // The owner goes on with the successor and a proof of its own.
    expect((await refresh(first.json().refresh_token)).statusCode).toBe(200);
  });

  it('a proof for an unbound session is checked but does not bind it', async () => {
    const plain = await login({});
    const bad = await refresh(plain.refresh_token, { dpop: proof('/auth/refresh', { htm: 'GET' }) });
    expect(bad.statusCode).toBe(400);
    const r = await refresh(plain.refresh_token);
    expect(r.statusCode).toBe(200);
    const after = await sessions(r.json().access_token);
    expect(after[0]).toMatchObject({ dpop_bound: false });
    expect((await refresh(r.json().refresh_token, {})).statusCode).toBe(200);
  });

  describe('server nonces (RFC 9449 §8)', () => {
    it.each([
      ['10 minutes fast', 600],
      ['10 minutes slow', -600],
    ])('a client whose clock is %s logs in and refreshes after one round trip each', async (_name, skew) => {
      const skewed = (path: string, nonce?: string) =>
        proof(path, { iat: Math.floor(t.clock() / 1000) + skew, ...(nonce ? { nonce } : {}) });
      const first = await t.app.inject({
        method: 'POST',
        url: '/auth/login',
        headers: { dpop: skewed('/auth/login') },
        payload: credentials,
      });
      expect(first.statusCode).toBe(400);
      expect(first.json().error).toBe('use_dpop_nonce');
      const nonce = first.headers['dpop-nonce'] as string;
      expect(nonce).toMatch(/^[A-Za-z0-9_-]+$/);
      const second = await t.app.inject({
        method: 'POST',
        url: '/auth/login',
        headers: { dpop: skewed('/auth/login', nonce) },
        payload: credentials,
      });
      expect(second.statusCode).toBe(200);
      const r = await refresh(second.json().refresh_token, { dpop: skewed('/auth/refresh', nonce) });
      expect(r.statusCode).toBe(200);
      // Without the nonce the skewed clock is refused again.
      const stale = await refresh(r.json().refresh_token, { dpop: skewed('/auth/refresh') });
      expect(stale.json().error).toBe('use_dpop_nonce');
    });

    it('a nonce is renewed after a minute and expires after five', async () => {
      const a = await t.app.inject({ method: 'POST', url: '/auth/refresh', payload: {} });
      const nonce = a.headers['dpop-nonce'] as string;
      t.clock.advance(30_000);
      const b = await t.app.inject({ method: 'POST', url: '/auth/refresh', payload: {} });
      expect(b.headers['dpop-nonce']).toBe(nonce);
      t.clock.advance(31_000);
      const c = await t.app.inject({ method: 'POST', url: '/auth/refresh', payload: {} });
      expect(c.headers['dpop-nonce']).not.toBe(nonce);
      const { refresh_token } = await login();
      const stillValid = await refresh(refresh_token, { dpop: proof('/auth/refresh', { nonce, iat: 0 }) });
      expect(stillValid.statusCode).toBe(200);
      t.clock.advance(5 * 60_000);
      const expired = await refresh(stillValid.json().refresh_token, {
        dpop: proof('/auth/refresh', { nonce, iat: 0 }),
      });
      expect(expired.json().error).toBe('use_dpop_nonce');
      expect(expired.headers['dpop-nonce']).not.toBe(nonce);
    });

    it('every DPoP-aware route sends a nonce; others do not', async () => {
      const token = await t.app.inject({
        method: 'POST',
        url: '/oauth/token',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        payload: 'grant_type=refresh_token',
      });
      expect(token.statusCode).toBe(400);
      expect(token.headers['dpop-nonce']).toBeDefined();
      const loginRes = await t.app.inject({ method: 'POST', url: '/auth/login', payload: { email: 'x' } });
      expect(loginRes.statusCode).toBe(400);
      expect(loginRes.headers['dpop-nonce']).toBeDefined();
      const health = await t.app.inject({ url: '/healthz' });
      expect(health.headers['dpop-nonce']).toBeUndefined();
    });
  });

  it('/oauth/token refreshes a bound session only with its key’s proof (400 invalid_grant without)', async () => {
    const { refresh_token } = await login();
    const form = (rt: string, dpop?: string) =>
      t.app.inject({
        method: 'POST',
        url: '/oauth/token',
        headers: { 'content-type': 'application/x-www-form-urlencoded', ...(dpop ? { dpop } : {}) },
        payload: `grant_type=refresh_token&client_id=app&refresh_token=${encodeURIComponent(rt)}`,
      });
    const without = await form(refresh_token);
    expect(without.statusCode).toBe(400);
    expect(without.json().error).toBe('invalid_grant');
    const wrongPath = await form(refresh_token, proof('/auth/refresh'));
    expect(wrongPath.json().error).toBe('invalid_dpop_proof');
    const ok = await form(refresh_token, proof('/oauth/token'));
    expect(ok.statusCode).toBe(200);
    expect(ok.json().token_type).toBe('Bearer');
  });

  it('the legacy tutorial route refuses a bound session’s token (401) and revokes nothing', async () => {
    const { refresh_token } = await login();
    const legacy = await t.app.inject({
      method: 'POST',
      url: '/api/v1/users/refresh-token',
      payload: { refreshToken: refresh_token },
    });
    expect(legacy.statusCode).toBe(401);
    expect(legacy.json()).toMatchObject({ error: 'invalid_grant', success: false });
    expect((await t.store.listSecurityEvents())[0]?.type).toBe('dpop_proof_missing');
    expect((await refresh(refresh_token)).statusCode).toBe(200);
  });

  describe('ending a bound session needs its key’s proof (logout, RFC 7009 revoke)', () => {
    const browser = { origin: ISSUER, 'sec-fetch-site': 'same-origin', 'x-baton-csrf': '1' };
    /** A session as a client holds it: the token in a body, or in the refresh cookie. */
    interface Held {
      token: string;
      cookie: boolean;
    }
    interface Ender {
      name: string;
      path: '/auth/logout' | '/oauth/revoke';
      cookie: boolean;
      hint?: string;
      ok: number;
    }
    const enders: Ender[] = [
      { name: '/auth/logout, token in the body', path: '/auth/logout', cookie: false, ok: 204 },
      { name: '/auth/logout, token in the cookie', path: '/auth/logout', cookie: true, ok: 204 },
      {
        name: '/oauth/revoke, token_type_hint=refresh_token',
        path: '/oauth/revoke',
        cookie: false,
        hint: 'refresh_token',
        ok: 200,
      },
      { name: '/oauth/revoke, no hint', path: '/oauth/revoke', cookie: false, ok: 200 },
    ];

    async function hold(cookie: boolean, headers: Record<string, string> = { dpop: proof('/auth/login') }) {
      const res = await t.app.inject({
        method: 'POST',
        url: '/auth/login',
        headers: cookie ? { ...browser, ...headers } : headers,
        payload: cookie ? { ...credentials, mode: 'cookie' } : credentials,
      });
      expect(res.statusCode).toBe(200);
      const token = cookie
        ? res.cookies.find((c) => c.name === REFRESH_COOKIE)!.value
        : res.json().refresh_token;
      return { token, cookie } as Held;
    }

    function end(e: Ender, held: Held, dpop?: string) {
      const extra: Record<string, string> = dpop === undefined ? {} : { dpop };
      if (e.path === '/oauth/revoke') {
        const hint = e.hint === undefined ? '' : `&token_type_hint=${e.hint}`;
        return t.app.inject({
          method: 'POST',
          url: '/oauth/revoke',
          headers: { 'content-type': 'application/x-www-form-urlencoded', ...extra },
          payload: `client_id=app&token=${encodeURIComponent(held.token)}${hint}`,
        });
      }
      return held.cookie
        ? t.app.inject({
            method: 'POST',
            url: '/auth/logout',
            headers: { ...browser, ...extra },
            cookies: { [REFRESH_COOKIE]: held.token },
          })
        : t.app.inject({
            method: 'POST',
            url: '/auth/logout',
            headers: extra,
            payload: { refresh_token: held.token },
          });
    }

    /** A bound refresh by the owner, with its key: 200 while the session lives. */
    const refreshHeld = (held: Held, headers: Record<string, string> = { dpop: proof('/auth/refresh') }) =>
      held.cookie
        ? t.app.inject({
            method: 'POST',
            url: '/auth/refresh',
            headers: { ...browser, ...headers },
            cookies: { [REFRESH_COOKIE]: held.token },
          })
        : refresh(held.token, headers);

    const dpopEvents = async () =>
      (await t.store.listSecurityEvents()).filter((e) => e.type.startsWith('dpop_')).map((e) => e.type);

    describe.each(enders)('$name', (e) => {
      it('without a proof: 400 invalid_dpop_proof, dpop_proof_missing recorded, the session lives on', async () => {
        const held = await hold(e.cookie);
        const res = await end(e, held);
        expect(res.statusCode).toBe(400);
        expect(res.json()).toEqual({
          error: 'invalid_dpop_proof',
          error_description: 'This session is bound to a DPoP key: send a DPoP proof by that key to end it',
        });
        expect(res.headers['dpop-nonce']).toMatch(/^[A-Za-z0-9_-]{40,}$/);
        expect(res.body).not.toContain(held.token);
        // The refresh cookie is not cleared: the session was not ended.
        expect(res.cookies.find((c) => c.name === REFRESH_COOKIE)).toBeUndefined();
        const events = await t.store.listSecurityEvents();
        expect(events[0]).toMatchObject({
          type: 'dpop_proof_missing',
          ip: '127.0.0.1',
          sessionId: expect.stringMatching(/^ses_/),
        });
        expect(events.some((x) => x.type === 'session_revoked')).toBe(false);
        expect((await refreshHeld(held)).statusCode).toBe(200);
      });

      it('with another key’s proof: 400 invalid_dpop_proof, dpop_key_mismatch recorded, the session lives on', async () => {
        const held = await hold(e.cookie);
        const res = await end(e, held, proof(e.path, {}, proofKey()));
        expect(res.statusCode).toBe(400);
        expect(res.json().error).toBe('invalid_dpop_proof');
        expect(await dpopEvents()).toEqual(['dpop_key_mismatch']);
        expect((await refreshHeld(held)).statusCode).toBe(200);
      });

      it('with its key’s proof: the session ends, and its token no longer refreshes', async () => {
        const held = await hold(e.cookie);
        const res = await end(e, held, proof(e.path));
        expect(res.statusCode).toBe(e.ok);
        expect(await dpopEvents()).toEqual([]);
        const after = await refreshHeld(held);
        expect(after.statusCode).toBe(401);
        expect(after.json().error).toBe('invalid_grant');
      });

      it('a proof for another endpoint, or a replayed one, is refused and ends nothing', async () => {
        const held = await hold(e.cookie);
        const other = await end(e, held, proof(e.path === '/auth/logout' ? '/oauth/revoke' : '/auth/logout'));
        expect(other.statusCode).toBe(400);
        expect(other.json().error).toBe('invalid_dpop_proof');
        const captured = proof(e.path);
        // Spent on a request for an unknown token (a proof that is sent is always checked)...
        const spent = await end(e, { ...held, token: 'brt_unknown.token' }, captured);
        expect(spent.statusCode).toBe(e.ok);
        // ...and replayed with the live token.
        const replay = await end(e, held, captured);
        expect(replay.statusCode).toBe(400);
        expect(replay.json().error).toBe('invalid_dpop_proof');
        expect((await refreshHeld(held)).statusCode).toBe(200);
      });

      it('a stale proof gets use_dpop_nonce with a nonce, and a proof with that nonce ends the session', async () => {
        const held = await hold(e.cookie);
        const stale = await end(e, held, proof(e.path, { iat: Math.floor(t.clock() / 1000) - 600 }));
        expect(stale.statusCode).toBe(400);
        expect(stale.json().error).toBe('use_dpop_nonce');
        const nonce = stale.headers['dpop-nonce'] as string;
        expect(nonce).toMatch(/^[A-Za-z0-9_-]{40,}$/);
        const retried = await end(e, held, proof(e.path, { iat: Math.floor(t.clock() / 1000) - 600, nonce }));
        expect(retried.statusCode).toBe(e.ok);
        expect((await refreshHeld(held)).statusCode).toBe(401);
      });

      it('an unbound session ends without a proof, and with a valid one (checked, then ignored)', async () => {
        const plain = await hold(e.cookie, {});
        expect((await end(e, plain)).statusCode).toBe(e.ok);
        expect((await refreshHeld(plain, {})).statusCode).toBe(401);
        const other = await hold(e.cookie, {});
        const bad = await end(e, other, proof(e.path, { htm: 'GET' }));
        expect(bad.statusCode).toBe(400);
        expect(bad.json().error).toBe('invalid_dpop_proof');
        expect((await end(e, other, proof(e.path))).statusCode).toBe(e.ok);
        expect((await refreshHeld(other, {})).statusCode).toBe(401);
        expect(await dpopEvents()).toEqual([]);
      });
    });

    it('logout by access token still ends a bound session without a proof (access tokens are not bound yet)', async () => {
      const { access_token, refresh_token } = await login();
      const res = await t.app.inject({
        method: 'POST',
        url: '/auth/logout',
        headers: { authorization: `Bearer ${access_token}` },
      });
      expect(res.statusCode).toBe(204);
      expect((await refresh(refresh_token)).statusCode).toBe(401);
    });
  });

  it('cookie mode binds the cookie-held token: the proof travels in the header', async () => {
    const browser = { origin: ISSUER, 'sec-fetch-site': 'same-origin', 'x-baton-csrf': '1' };
    const res = await t.app.inject({
      method: 'POST',
      url: '/auth/login',
      headers: { ...browser, dpop: proof('/auth/login') },
      payload: { ...credentials, mode: 'cookie' },
    });
    expect(res.statusCode).toBe(200);
    const cookie = res.cookies.find((c) => c.name === REFRESH_COOKIE)!;
    const byCookie = (headers: Record<string, string>) =>
      t.app.inject({
        method: 'POST',
        url: '/auth/refresh',
        headers: { ...browser, ...headers },
        cookies: { [REFRESH_COOKIE]: cookie.value },
      });
    const without = await byCookie({});
    expect(without.statusCode).toBe(401);
    const ok = await byCookie({ dpop: proof('/auth/refresh') });
    expect(ok.statusCode).toBe(200);
    expect(ok.cookies.find((c) => c.name === REFRESH_COOKIE)?.value).toMatch(/^brt_/);
  });

  it('an EdDSA key binds and refreshes too', async () => {
    key = proofKey('EdDSA');
    const { refresh_token } = await login();
    expect((await refresh(refresh_token)).statusCode).toBe(200);
    expect((await refresh(refresh_token, { dpop: proof('/auth/refresh', {}, proofKey()) })).statusCode).toBe(
      401,
    );
  });

  it('a repeated DPoP header is a 400, like other single-valued headers', async () => {
    const { refresh_token } = await login();
    const res = await t.app.inject({
      method: 'POST',
      url: '/auth/refresh',
      headers: { dpop: [proof('/auth/refresh'), proof('/auth/refresh')] },
      payload: { refresh_token },
    });
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toBe('invalid_request');
  });

  it('a bad proof at login is a 400 before any password check, and creates no session', async () => {
    const otherRoute = await t.app.inject({
      method: 'POST',
      url: '/auth/login',
      headers: { dpop: proof('/auth/refresh') },
      payload: credentials,
    });
    expect(otherRoute.statusCode).toBe(400);
    expect(otherRoute.json().error).toBe('invalid_dpop_proof');
    const direct = await t.app.inject({
      method: 'POST',
      url: '/auth/login',
      headers: { dpop: proof('/auth/login', { htm: 'PUT' }) },
      payload: { ...credentials, password: 'wrong password!' },
    });
    expect(direct.statusCode).toBe(400);
    expect(direct.json().error).toBe('invalid_dpop_proof');
  });

  it('a confidential client’s session is not bound (RFC 9449 §5): its own authentication constrains it', async () => {
    const secret = (await createClient(t.store, { id: 'backend', type: 'confidential' }, t.clock())).secret!;
    const basic = `Basic ${Buffer.from(`backend:${encodeURIComponent(secret)}`).toString('base64')}`;
    const res = await t.app.inject({
      method: 'POST',
      url: '/auth/login',
      headers: { authorization: basic, dpop: proof('/auth/login') },
      payload: credentials,
    });
    expect(res.statusCode).toBe(200);
    const { refresh_token, session_id } = res.json();
    expect((await t.store.findSession(session_id))?.dpopJkt).toBeUndefined();
    const token = await t.app.inject({
      method: 'POST',
      url: '/oauth/token',
      headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' },
      payload: `grant_type=refresh_token&refresh_token=${encodeURIComponent(refresh_token)}`,
    });
    expect(token.statusCode).toBe(200);
  });

  it('the metadata lists the DPoP algorithms', async () => {
    const res = await t.app.inject({ url: '/.well-known/oauth-authorization-server' });
    expect(res.json().dpop_signing_alg_values_supported).toEqual(['ES256', 'EdDSA']);
  });
});

describe('DPoP across instances sharing one database', () => {
  it('each accepts the other’s nonces and refuses the other’s replayed proofs', async () => {
    const db = await tempStore();
    const secondStore = createSqliteStore({ filename: db.file });
    const clock = testClock();
    const a = await createServer({ store: db.store, issuer: ISSUER, now: clock, logger: false });
    const b = await createServer({ store: secondStore, issuer: ISSUER, now: clock, logger: false });
    try {
      await a.ready();
      await b.ready();
      const key = proofKey();
      const credentials = { email: 'ada@example.com', password: 'correct horse battery' };
      await a.inject({ method: 'POST', url: '/auth/register', payload: credentials });
      // A client 10 minutes slow: A hands out the nonce, B honours it.
      const slow = (path: string, nonce?: string) =>
        makeProof(key, {
          htu: `${ISSUER}${path}`,
          iat: Math.floor(clock() / 1000) - 600,
          ...(nonce ? { nonce } : {}),
        });
      const asked = await a.inject({
        method: 'POST',
        url: '/auth/login',
        headers: { dpop: slow('/auth/login') },
        payload: credentials,
      });
      expect(asked.json().error).toBe('use_dpop_nonce');
      const nonce = asked.headers['dpop-nonce'] as string;
      const loggedIn = await b.inject({
        method: 'POST',
        url: '/auth/login',
        headers: { dpop: slow('/auth/login', nonce) },
        payload: credentials,
      });
      expect(loggedIn.statusCode).toBe(200);
      // A proof spent at B is a replay at A.
      const captured = slow('/auth/refresh', nonce);
      const rt = loggedIn.json().refresh_token;
      const atB = await b.inject({
        method: 'POST',
        url: '/auth/refresh',
        headers: { dpop: captured },
        payload: { refresh_token: rt },
      });
      expect(atB.statusCode).toBe(200);
      const atA = await a.inject({
        method: 'POST',
        url: '/auth/refresh',
        headers: { dpop: captured },
        payload: { refresh_token: rt },
      });
      expect(atA.statusCode).toBe(400);
      expect(atA.json().error).toBe('invalid_dpop_proof');
      // And the lost response is recovered at the other instance with a proof of its own.
      const recovered = await a.inject({
        method: 'POST',
        url: '/auth/refresh',
        headers: { dpop: slow('/auth/refresh', nonce) },
        payload: { refresh_token: rt },
      });
      expect(recovered.statusCode).toBe(200);
      expect(recovered.json().refresh_token).toBe(atB.json().refresh_token);
    } finally {
      await a.close();
      await b.close();
      await secondStore.close();
      await db.dispose();
    }
  });
});
