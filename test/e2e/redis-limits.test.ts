import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningBaton, startBaton } from './support/baton.js';
import { serviceAvailable } from './support/services.js';

// A database index of its own, flushed first, so the counts are this suite's alone.
const REDIS_URL = 'redis://127.0.0.1:6379/9';
const redisUp = await serviceAvailable('Redis', 6379);

describe.runIf(redisUp)('rate limits shared through Redis by two instances', () => {
  let a: RunningBaton;
  let b: RunningBaton;
  beforeAll(async () => {
    const redis = new Redis(REDIS_URL);
    await redis.flushdb();
    redis.disconnect();
    const env = { BATON_REDIS_URL: REDIS_URL, BATON_LIMIT_IP_PER_MIN: '6', BATON_LIMIT_LOGIN_FAILURES: '3' };
    a = await startBaton({ env });
    b = await startBaton({ env: { ...env, BATON_ISSUER: a.url }, dataDir: a.dataDir });
  });
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
  });

  const post = (s: RunningBaton, path: string, body: unknown) =>
    fetch(`http://127.0.0.1:${s.port}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });

  it('login failures counted on one instance block the account on the other', async () => {
    const statuses: number[] = [];
    for (const s of [a, b, a])
      statuses.push(
        (await post(s, '/auth/login', { email: 'victim@example.com', password: 'guess guess' })).status,
      );
    expect(statuses).toEqual([401, 401, 401]);
    const blocked = await post(b, '/auth/login', { email: 'victim@example.com', password: 'guess guess' });
    expect(blocked.status).toBe(429);
    expect(Number(blocked.headers.get('retry-after'))).toBeGreaterThan(0);
  });

  it('requests per IP are counted across instances', async () => {
    // 4 login requests above already count; 2 more reach the limit of 6, the next is refused on either instance.
    expect((await post(a, '/auth/refresh', {})).status).toBe(401);
    expect((await post(b, '/auth/refresh', {})).status).toBe(401);
    expect((await post(a, '/auth/refresh', {})).status).toBe(429);
    expect((await post(b, '/auth/refresh', {})).status).toBe(429);
  });
});
