import { describe, expect, it } from 'vitest';
import { ConfigError, loadServeConfig } from './config.js';

describe('timeout and connection settings', () => {
  it('default to 30 s request, 10 s headers, 5 s keep-alive, 1000 connections', () => {
    const { server } = loadServeConfig({});
    expect(server).toMatchObject({
      requestTimeout: 30_000,
      headersTimeout: 10_000,
      keepAliveTimeout: 5_000,
      maxConnections: 1000,
    });
  });
  it('are read from BATON_* variables with units', () => {
    const { server, warnings } = loadServeConfig({
      BATON_REQUEST_TIMEOUT: '2s',
      BATON_HEADERS_TIMEOUT: '500ms',
      BATON_KEEP_ALIVE_TIMEOUT: '1',
      BATON_MAX_CONNECTIONS: '3',
    });
    expect(server).toMatchObject({
      requestTimeout: 2000,
      headersTimeout: 500,
      keepAliveTimeout: 1000,
      maxConnections: 3,
    });
    expect(warnings).toEqual([]);
  });
  it.each([
    [{ BATON_REQUEST_TIMEOUT: '0' }, /BATON_REQUEST_TIMEOUT/],
    [{ BATON_HEADERS_TIMEOUT: 'soon' }, /BATON_HEADERS_TIMEOUT/],
    [{ BATON_HEADERS_TIMEOUT: '1m' }, /BATON_HEADERS_TIMEOUT: must not exceed BATON_REQUEST_TIMEOUT/],
    [{ BATON_MAX_CONNECTIONS: '0' }, /BATON_MAX_CONNECTIONS/],
    [{ BATON_MAX_CONNECTIONS: '1.5' }, /BATON_MAX_CONNECTIONS/],
  ])('refuses %o naming the variable', (env, message) => {
    expect(() => loadServeConfig(env)).toThrow(ConfigError);
    expect(() => loadServeConfig(env)).toThrow(message);
  });
});

describe('the session cap', () => {
  it('defaults to 100 live sessions per user', () => {
    expect(loadServeConfig({}).server).toMatchObject({ maxSessionsPerUser: 100 });
  });
  it('is read from BATON_MAX_SESSIONS_PER_USER', () => {
    expect(loadServeConfig({ BATON_MAX_SESSIONS_PER_USER: '7' }).server).toMatchObject({
      maxSessionsPerUser: 7,
    });
  });
  it.each(['0', '-1', '1.5', 'many', '1e3'])(
    'refuses BATON_MAX_SESSIONS_PER_USER=%j naming the variable',
    (v) => {
      expect(() => loadServeConfig({ BATON_MAX_SESSIONS_PER_USER: v })).toThrow(
        /BATON_MAX_SESSIONS_PER_USER/,
      );
    },
  );
});

describe('BATON_METRICS_TOKEN', () => {
  it('is passed on as metricsToken, and absent by default', () => {
    expect(loadServeConfig({}).server).not.toHaveProperty('metricsToken');
    const token = 'a-metrics-token-0123456789';
    expect(loadServeConfig({ BATON_METRICS_TOKEN: token }).server.metricsToken).toBe(token);
  });
  it('refuses a short one without echoing it', () => {
    expect(() => loadServeConfig({ BATON_METRICS_TOKEN: 'shortsecret' })).toThrow(/BATON_METRICS_TOKEN/);
    try {
      loadServeConfig({ BATON_METRICS_TOKEN: 'shortsecret' });
    } catch (err) {
      expect(String(err)).not.toContain('shortsecret');
    }
  });
});

describe('the PostgreSQL pool size', () => {
  it('is the store default unless BATON_PG_POOL_SIZE is set', () => {
    expect(loadServeConfig({}).pgPoolSize).toBeUndefined();
    expect(
      loadServeConfig({ BATON_PG_POOL_SIZE: '24', BATON_DATABASE_URL: 'postgres://db/baton' }).pgPoolSize,
    ).toBe(24);
  });
  it.each(['0', '-1', '1.5', 'many', '1e3'])('refuses BATON_PG_POOL_SIZE=%j naming the variable', (v) => {
    expect(() => loadServeConfig({ BATON_PG_POOL_SIZE: v })).toThrow(/BATON_PG_POOL_SIZE/);
  });
  it('warns that SQLite ignores it', () => {
    const { warnings } = loadServeConfig({ BATON_PG_POOL_SIZE: '4' });
    expect(warnings.some((w) => w.includes('BATON_PG_POOL_SIZE'))).toBe(true);
  });
});
