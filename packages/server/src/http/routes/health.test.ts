import { afterEach, describe, expect, it } from 'vitest';
import { type TestApp, testApp } from '../../../test/helpers.js';

/** Issue 9 item 12: `/metrics` behind an optional bearer token. */
describe('/metrics access', () => {
  let t: TestApp | undefined;
  afterEach(() => t?.close());
  const TOKEN = 'metrics-token-0123456789abcdef';

  it('without metricsToken it stays open, as before', async () => {
    t = await testApp();
    const res = await t.app.inject({ url: '/metrics' });
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain('baton_');
  });

  it('with metricsToken it needs exactly that bearer token: 401 with a Bearer challenge otherwise', async () => {
    t = await testApp({ metricsToken: TOKEN });
    for (const authorization of [
      undefined,
      'Bearer wrong',
      `Bearer ${TOKEN}x`,
      `Basic ${TOKEN}`,
      'Bearer ',
    ]) {
      const res = await t.app.inject({ url: '/metrics', headers: authorization ? { authorization } : {} });
      expect(res.statusCode, String(authorization)).toBe(401);
      expect(res.headers['www-authenticate']).toMatch(/^Bearer /);
      expect(res.json().error).toBe('unauthorized');
      expect(res.body).not.toContain('baton_');
      expect(res.body).not.toContain(TOKEN);
    }
    const ok = await t.app.inject({ url: '/metrics', headers: { authorization: `Bearer ${TOKEN}` } });
    expect(ok.statusCode).toBe(200);
    expect(ok.body).toContain('baton_');
  });

  it('a metricsToken that is too short is a TypeError at construction', async () => {
    await expect(testApp({ metricsToken: 'short' })).rejects.toThrow(TypeError);
  });
});
