import { afterEach, describe, expect, it } from 'vitest';
import type { FetchLike } from './http.js';
import { memoryStorage, type TokenStorage } from './storage.js';
import {
  clientFor,
  credentials,
  disposeAll,
  fakeServer,
  recordEvents,
  until,
} from './test-support/harness.js';

// The device token (docs/http-api.md, "Device tokens"; docs/security.md item 32): in
// token mode the client keeps the server's `device_token` through sign-outs
// and presents it on its next logins, so an account locked by strangers'
// failed logins still opens for a device that logged in to it before.
afterEach(disposeAll);

const minutes = (n: number) => n * 60_000;
const KEY = 'session';

/** The state stored under {@link KEY}, as JSON. */
function stored(storage: TokenStorage): Record<string, unknown> {
  const raw = storage.get(KEY);
  if (typeof raw !== 'string') throw new Error('nothing stored');
  return JSON.parse(raw) as Record<string, unknown>;
}

describe('device token (token mode)', () => {
  it('is stored after a login, kept through refreshes, and sent on the next login', async () => {
    const server = fakeServer();
    const storage = memoryStorage();
    const client = clientFor(server, { storage, storageKey: KEY });
    await client.login(credentials);
    expect(server.presentedDeviceTokens).toEqual([undefined]);
    const deviceToken = stored(storage)['deviceToken'];
    expect(deviceToken).toMatch(/^bdv_/);

    server.clock.advance(minutes(20));
    expect((await client.fetch('/auth/me')).status).toBe(200);
    expect(server.refreshCount).toBe(1);
    expect(stored(storage)['deviceToken']).toBe(deviceToken);

    await client.login(credentials);
    expect(server.presentedDeviceTokens).toEqual([undefined, deviceToken]);
  });

  it('survives logout: a later client on the same storage gets into an account locked by an attacker', async () => {
    const server = fakeServer();
    const storage = memoryStorage();
    const before = clientFor(server, { storage, storageKey: KEY });
    await before.login(credentials);
    const deviceToken = stored(storage)['deviceToken'];
    expect(await before.logout()).toEqual({ revoked: true });
    expect(stored(storage)).toMatchObject({ kind: 'signed_out', reason: 'logout', deviceToken });
    before.dispose();

    server.locked.add(credentials.email);
    // A device that never logged in is locked out …
    const stranger = clientFor(server, { storage: memoryStorage(), storageKey: 'another-device' });
    await expect(stranger.login(credentials)).rejects.toMatchObject({ code: 'too_many_requests' });
    // … the owner's (a new process reading the same storage) is not.
    const owner = clientFor(server, { storage, storageKey: KEY });
    await owner.login(credentials);
    expect(server.presentedDeviceTokens.at(-1)).toBe(deviceToken);
    expect((await owner.fetch('/auth/me')).status).toBe(200);
  });

  it('survives the server ending the session (invalid_grant) and is sent on the next login', async () => {
    const server = fakeServer();
    const storage = memoryStorage();
    const client = clientFor(server, { storage, storageKey: KEY });
    const { sessionId } = await client.login(credentials);
    const deviceToken = stored(storage)['deviceToken'];
    server.revokeSession(sessionId!);
    server.clock.advance(minutes(20));
    await expect(client.fetch('/auth/me')).rejects.toMatchObject({
      code: 'signed_out',
      reason: 'invalid_grant',
    });
    expect(stored(storage)).toMatchObject({ kind: 'signed_out', reason: 'invalid_grant', deviceToken });

    server.locked.add(credentials.email);
    await client.login(credentials);
    expect(server.presentedDeviceTokens).toEqual([undefined, deviceToken]);
  });

  it('is replaced by a newer one from a later login, which is then the one sent', async () => {
    const server = fakeServer();
    const storage = memoryStorage();
    const client = clientFor(server, { storage, storageKey: KEY });
    await client.login(credentials);
    const first = stored(storage)['deviceToken'];
    server.forgetDevices(); // the old one expired server-side: the next login issues another
    await client.login(credentials);
    const second = stored(storage)['deviceToken'];
    expect(second).toMatch(/^bdv_/);
    expect(second).not.toBe(first);

    await client.logout();
    await client.login(credentials);
    expect(server.presentedDeviceTokens).toEqual([undefined, first, second]);
  });

  it('keeps the one it has when a login response carries none (a server without device trust)', async () => {
    const server = fakeServer();
    const storage = memoryStorage();
    let strip = false;
    const fetch: FetchLike = async (input, init) => {
      const response = await server.fetch(input, init);
      if (!strip || !String(input).endsWith('/auth/login')) return response;
      const { device_token: _dropped, ...body } = (await response.json()) as Record<string, unknown>;
      return new Response(JSON.stringify(body), { status: response.status, headers: response.headers });
    };
    const client = clientFor(server, { storage, storageKey: KEY, fetch });
    await client.login(credentials);
    const deviceToken = stored(storage)['deviceToken'];
    strip = true;
    await client.login(credentials);
    expect(stored(storage)['deviceToken']).toBe(deviceToken);
    await client.login(credentials);
    expect(server.presentedDeviceTokens).toEqual([undefined, deviceToken, deviceToken]);
  });

  it('never appears in events, errors or getSession()', async () => {
    const server = fakeServer();
    const storage = memoryStorage();
    const client = clientFor(server, { storage, storageKey: KEY });
    const events = recordEvents(client);
    await client.login(credentials);
    const deviceToken = String(stored(storage)['deviceToken']);
    server.clock.advance(minutes(20));
    await client.fetch('/auth/me'); // tokenRefreshed
    const session = JSON.stringify(client.getSession());
    await client.logout(); // signedOut, sessionChanged
    await client.login(credentials);
    server.revokeSession(client.getSession()!.sessionId!);
    server.clock.advance(minutes(20));
    const signedOut = await client.fetch('/auth/me').catch((e: unknown) => e);
    server.failNext('/auth/login', { kind: 'status', status: 503 });
    const failed = await client.login(credentials).catch((e: unknown) => e);
    const wrong = await client.login({ ...credentials, password: 'wrong' }).catch((e: unknown) => e);

    expect(events.map((e) => e.name)).toContain('tokenRefreshed');
    expect(events.map((e) => e.name)).toContain('signedOut');
    expect(server.presentedDeviceTokens).toContain(deviceToken);
    const seen = JSON.stringify({ events, session, errors: [signedOut, failed, wrong].map(describeError) });
    expect(seen).not.toContain(deviceToken);
    expect(seen).not.toContain('bdv_');
  });

  it('is shared with a tab opened later (no storage: over the channel), which then sends it', async () => {
    const server = fakeServer();
    const tab1 = clientFor(server);
    await tab1.login(credentials);
    await tab1.logout();
    const tab2 = clientFor(server);
    const events = recordEvents(tab2);
    await tab2.login(credentials);
    expect(server.issuedDeviceTokens).toHaveLength(1);
    expect(server.presentedDeviceTokens).toEqual([undefined, server.issuedDeviceTokens[0]]);
    // tab1 follows tab2's login and would send the same token on its own next login.
    await until(() => tab1.getSession() !== null, 'tab1 follows the login');
    await tab1.logout();
    await tab1.login(credentials);
    expect(server.presentedDeviceTokens.at(-1)).toBe(server.issuedDeviceTokens[0]);
    expect(JSON.stringify(events)).not.toContain('bdv_');
  });

  it('loads a storage written before device tokens existed, and starts keeping one at the next login', async () => {
    const server = fakeServer();
    const storage = memoryStorage();
    const writer = clientFor(server, { storage, storageKey: KEY });
    await writer.login(credentials);
    writer.dispose();
    // Rewrite the entry exactly as the previous version stored it: no deviceToken.
    const { deviceToken: _dropped, ...old } = stored(storage);
    storage.set(KEY, JSON.stringify(old));

    const client = clientFor(server, { storage, storageKey: KEY });
    expect((await client.fetch('/auth/me')).status).toBe(200);
    await client.login(credentials);
    expect(server.presentedDeviceTokens).toEqual([undefined, undefined]);
    expect(stored(storage)['deviceToken']).toMatch(/^bdv_/);
  });
});

describe('device token (cookie mode)', () => {
  it('is neither sent nor kept, even if a login response carried one', async () => {
    const server = fakeServer();
    const storage = memoryStorage();
    const fetch: FetchLike = async (input, init) => {
      const response = await server.fetch(input, init);
      if (!String(input).endsWith('/auth/login') || !response.ok) return response;
      // A misconfigured server putting it in the body: JavaScript must not keep it.
      const body = { ...((await response.json()) as object), device_token: 'bdv_leaked' };
      return new Response(JSON.stringify(body), { status: response.status, headers: response.headers });
    };
    const client = clientFor(server, { mode: 'cookie', storage, storageKey: KEY, fetch });
    await client.login(credentials);
    expect(JSON.stringify(stored(storage))).not.toContain('bdv_');
    await client.logout();
    await client.login(credentials);
    expect(server.presentedDeviceTokens).toEqual([undefined, undefined]);
    expect((await client.fetch('/auth/me')).status).toBe(200);
  });
});

/** Everything an error exposes: message, code, cause chain. */
function describeError(error: unknown): unknown {
  if (!(error instanceof Error)) return error;
  return { ...error, message: error.message, stack: error.stack, cause: describeError(error.cause) };
}
