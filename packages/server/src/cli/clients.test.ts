import type { FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ISSUER, signUp, tempStore } from '../../test/helpers.js';
import { createServer } from '../http/app.js';
import type { Store } from '../store/store.js';
import { runClients } from './clients.js';

const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;

describe('baton clients', () => {
  let store: Store;
  let file: string;
  let dispose: () => Promise<void>;
  let app: FastifyInstance;

  beforeEach(async () => {
    ({ store, file, dispose } = await tempStore());
    app = await createServer({ store, issuer: ISSUER });
    await app.ready();
  });
  afterEach(async () => {
    await app.close();
    await dispose();
  });

  const clients = async (...args: string[]) => {
    let text = '';
    await runClients([...args, '--database-url', `sqlite:${file}`], {}, (s) => (text += s));
    return text;
  };
  const introspect = (token: string, authorization: string) =>
    app.inject({
      method: 'POST',
      url: '/oauth/introspect',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization },
      payload: new URLSearchParams({ token }).toString(),
    });

  it('create prints a confidential client’s secret once; it authenticates; list never shows it', async () => {
    const created = await clients(
      'create',
      '--id',
      'rs',
      '--name',
      'Resource server',
      '--scope',
      'read write',
    );
    const secret = /client_secret: (\S+)/.exec(created)?.[1] ?? '';
    expect(created).toContain('client_id: rs');
    expect(secret).toMatch(/^bcs_[A-Za-z0-9_-]{43}$/);

    const { access_token } = await signUp(app);
    expect((await introspect(access_token, basic('rs', secret))).json().active).toBe(true);
    expect((await introspect(access_token, basic('rs', `${secret}x`))).statusCode).toBe(401);

    const stored = await store.findClient('rs');
    const listed = await clients('list');
    expect(listed).toContain('rs  confidential  "Resource server"');
    expect(listed).toContain('scopes: read write');
    expect(listed).not.toContain(secret);
    expect(listed).not.toContain(stored?.secretHash);
  });

  it('create takes per-client origins, audience and lifetimes; public clients get no secret', async () => {
    const created = await clients(
      'create',
      '--id',
      'spa',
      '--type',
      'public',
      '--origin',
      'https://app.example',
      '--audience',
      'https://api.example',
      '--access-ttl',
      '5m',
      '--session-max-ttl',
      '7d',
    );
    expect(created).not.toContain('client_secret');
    expect(await store.findClient('spa')).toMatchObject({
      type: 'public',
      secretHash: null,
      allowedOrigins: ['https://app.example'],
      audience: 'https://api.example',
      accessTtl: 300_000,
      sessionMaxTtl: 7 * 86_400_000,
      refreshIdleTtl: null,
    });
    await signUp(app);
    // Logins through this client get its access-token lifetime.
    const again = await app.inject({
      method: 'POST',
      url: '/auth/login',
      payload: { email: 'ada@example.com', password: 'correct horse battery', client_id: 'spa' },
    });
    expect(again.json().expires_in).toBe(300);
    await expect(clients('create', '--id', 'bad', '--type', 'secretive')).rejects.toThrow(/--type/);
    await expect(clients('create', '--id', 'spa', '--type', 'public')).rejects.toThrow(/already exists/);
  });

  it('delete revokes the client’s sessions; the default client cannot be deleted', async () => {
    const secret = /client_secret: (\S+)/.exec(await clients('create', '--id', 'backend'))?.[1] ?? '';
    await signUp(app);
    const login = await app.inject({
      method: 'POST',
      url: '/auth/login',
      headers: { authorization: basic('backend', secret) },
      payload: { email: 'ada@example.com', password: 'correct horse battery' },
    });
    expect(login.statusCode).toBe(200);
    expect(await clients('delete', 'backend')).toContain('Deleted client backend');
    expect((await store.findSession(login.json().session_id))?.revokedReason).toBe('admin');
    await expect(clients('delete', 'backend')).rejects.toThrow(/No client/);
    await expect(clients('delete', 'app')).rejects.toThrow(/cannot be deleted/);
  });
});
