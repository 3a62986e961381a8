// Signing-key rotation across processes: two `baton serve` processes share one SQLite file and
// `baton keys rotate` runs as a third process. No restart: the servers poll the store.
import { execFileSync } from 'node:child_process';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { CLI, type RunningBaton, startPairWithUser } from './support/baton.js';

const USER = { email: 'kim@example.com', password: 'correct horse battery' };
const POLL = '1s';

let a: RunningBaton;
let b: RunningBaton;

function keys(...args: string[]): string {
  return execFileSync(process.execPath, [CLI, 'keys', ...args], {
    env: { ...process.env, BATON_DATABASE_URL: a.databaseUrl, BATON_KEY_POLL_INTERVAL: POLL },
    encoding: 'utf8',
  });
}

async function logIn(on: RunningBaton): Promise<{ access_token: string; refresh_token: string }> {
  const res = await fetch(`http://127.0.0.1:${on.port}/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(USER),
  });
  expect(res.status).toBe(200);
  return (await res.json()) as { access_token: string; refresh_token: string };
}

const kidOf = (token: string) => decodeProtectedHeader(token).kid;
const published = async (on: RunningBaton) =>
  (
    (await (await fetch(`http://127.0.0.1:${on.port}/.well-known/jwks.json`)).json()) as {
      keys: { kid: string }[];
    }
  ).keys.map((k) => k.kid);
/** A fresh remote key set per check, so jose's own cache cannot answer for the server. */
const verifyAt = (on: RunningBaton, token: string) =>
  jwtVerify(token, createRemoteJWKSet(new URL(`http://127.0.0.1:${on.port}/.well-known/jwks.json`)), {
    issuer: a.url,
    audience: a.url,
    typ: 'at+jwt',
  });
const me = (on: RunningBaton, token: string) =>
  fetch(`http://127.0.0.1:${on.port}/auth/me`, { headers: { authorization: `Bearer ${token}` } });

beforeAll(async () => {
  [a, b] = await startPairWithUser({ BATON_LIMIT_IP_PER_MIN: 'off', BATON_KEY_POLL_INTERVAL: POLL }, USER);
});
afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
});

describe('baton keys rotate with two running servers', () => {
  it('a rotated key is published by both servers before it signs, and every instance picks it up by polling', async () => {
    const before = await logIn(b);
    const firstKid = kidOf(before.access_token);

    // Default rotation: published now, signing only after the JWKS max-age + poll interval (301 s here).
    const pendingOut = keys('rotate');
    const pendingKid = /Added key (\S+)/.exec(pendingOut)?.[1] ?? '';
    expect(pendingKid).not.toBe('');
    expect(pendingOut).toMatch(/it signs from \S+/);
    await vi.waitFor(
      async () => {
        expect(await published(a)).toContain(pendingKid);
        expect(await published(b)).toContain(pendingKid);
      },
      { timeout: 15_000, interval: 200 },
    );
    expect(kidOf((await logIn(a)).access_token)).toBe(firstKid);
    expect(kidOf((await logIn(b)).access_token)).toBe(firstKid);
    expect(keys('list')).toMatch(new RegExp(`${pendingKid}\\s+ES256\\s+pending`));

    // Emergency rotation: signs at once. The second server switches after its poll interval.
    const nowKid = /Added key (\S+)/.exec(keys('rotate', '--now'))?.[1] ?? '';
    expect(nowKid).not.toBe('');
    await vi.waitFor(async () => expect(kidOf((await logIn(b)).access_token)).toBe(nowKid), {
      timeout: 15_000,
      interval: 200,
    });
    await vi.waitFor(async () => expect(kidOf((await logIn(a)).access_token)).toBe(nowKid), {
      timeout: 15_000,
      interval: 200,
    });

    // A token signed before the rotation still verifies, at both servers and with jose over their JWKS.
    for (const server of [a, b]) {
      expect((await verifyAt(server, before.access_token)).protectedHeader.kid).toBe(firstKid);
      expect((await me(server, before.access_token)).status).toBe(200);
    }
    // A new-key token from one server is accepted by the other.
    const fresh = await logIn(b);
    expect((await verifyAt(a, fresh.access_token)).protectedHeader.kid).toBe(nowKid);
    expect((await me(a, fresh.access_token)).status).toBe(200);

    // The superseded keys are retired, still published for the tokens they signed.
    const listed = keys('list');
    expect(listed).toMatch(new RegExp(`${firstKid}\\s+ES256\\s+retired`));
    expect(listed).toMatch(new RegExp(`${pendingKid}\\s+ES256\\s+retired`));
    expect(listed).toMatch(new RegExp(`${nowKid}\\s+ES256\\s+signing`));
    expect(await published(a)).toEqual(expect.arrayContaining([firstKid, nowKid]));

    // The signing key cannot be retired while it is the only one.
    expect(() => keys('retire', nowKid)).toThrow(/No other key is active/);
  });
});
