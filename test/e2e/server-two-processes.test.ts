import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { metricValue, type RunningBaton, startBaton } from './support/baton.js';

/**
 * One process hides races: here two `baton serve` processes share one
 * SQLite file, and concurrent refreshes of one token are split between them.
 */
describe('two server processes on one SQLite database', () => {
  let a: RunningBaton;
  let b: RunningBaton;
  beforeAll(async () => {
    const env = { BATON_LIMIT_IP_PER_MIN: 'off' };
    a = await startBaton({ env });
    // Two instances of one deployment: same database, same issuer.
    b = await startBaton({ env: { ...env, BATON_ISSUER: a.url }, dataDir: a.dataDir });
  });
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
  });

  const post = (base: RunningBaton, path: string, body: unknown) =>
    fetch(`http://127.0.0.1:${base.port}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });

  async function login(email: string): Promise<{ refresh_token: string; access_token: string }> {
    await post(a, '/auth/register', { email, password: 'correct horse battery' });
    const res = await post(b, '/auth/login', { email, password: 'correct horse battery' });
    expect(res.status).toBe(200);
    return (await res.json()) as { refresh_token: string; access_token: string };
  }

  it('20 concurrent refreshes of one token across both processes all get one and the same successor', async () => {
    const { refresh_token } = await login('race@example.com');
    const responses = await Promise.all(
      Array.from({ length: 20 }, (_, i) => post(i % 2 ? a : b, '/auth/refresh', { refresh_token })),
    );
    const bodies = (await Promise.all(responses.map((r) => r.json()))) as { refresh_token: string }[];
    expect(responses.map((r) => r.status)).toEqual(Array(20).fill(200));
    const successors = new Set(bodies.map((x) => x.refresh_token));
    expect(successors.size).toBe(1);
    const [successor] = [...successors];
    expect(successor).not.toBe(refresh_token);
    // Exactly one of all those requests rotated; the rest were grace replays.
    const [ma, mb] = await Promise.all([a.metrics(), b.metrics()]);
    const rotated =
      metricValue(ma, 'baton_refresh_total', { outcome: 'rotated' }) +
      metricValue(mb, 'baton_refresh_total', { outcome: 'rotated' });
    const replays =
      metricValue(ma, 'baton_refresh_total', { outcome: 'grace_replay' }) +
      metricValue(mb, 'baton_refresh_total', { outcome: 'grace_replay' });
    expect(rotated).toBe(1);
    expect(replays).toBe(19);
    // And the successor works on either process.
    expect((await post(a, '/auth/refresh', { refresh_token: successor })).status).toBe(200);
  });

  it('a token used on one process and replayed on the other after its successor was used revokes the session everywhere', async () => {
    const { refresh_token: rt1 } = await login('theft@example.com');
    const r2 = (await (await post(a, '/auth/refresh', { refresh_token: rt1 })).json()) as {
      refresh_token: string;
    };
    const r3 = (await (await post(b, '/auth/refresh', { refresh_token: r2.refresh_token })).json()) as {
      refresh_token: string;
    };
    const replay = await post(b, '/auth/refresh', { refresh_token: rt1 });
    expect(replay.status).toBe(401);
    expect(((await replay.json()) as { error: string }).error).toBe('invalid_grant');
    expect((await post(a, '/auth/refresh', { refresh_token: r3.refresh_token })).status).toBe(401);
  });

  // Each process keeps the newest token of the sessions it refreshed in memory, to skip a lookup;
  // what the other process did since must still decide.
  it('a session signed out on one process is refused on the other, which refreshed it last', async () => {
    const { refresh_token: rt1 } = await login('signed-out-elsewhere@example.com');
    const r2 = (await (await post(a, '/auth/refresh', { refresh_token: rt1 })).json()) as {
      refresh_token: string;
    };
    const out = await post(b, '/auth/logout', { refresh_token: r2.refresh_token });
    expect(out.status).toBeLessThan(300);
    const refused = await post(a, '/auth/refresh', { refresh_token: r2.refresh_token });
    expect(refused.status).toBe(401);
    expect(((await refused.json()) as { error: string }).error).toBe('invalid_grant');
  });

  it('a token the other process rotated meanwhile gets that same successor back inside the grace window', async () => {
    const { refresh_token: rt1 } = await login('rotated-elsewhere@example.com');
    const r2 = (await (await post(a, '/auth/refresh', { refresh_token: rt1 })).json()) as {
      refresh_token: string;
    };
    const r3 = (await (await post(b, '/auth/refresh', { refresh_token: r2.refresh_token })).json()) as {
      refresh_token: string;
    };
    const again = await post(a, '/auth/refresh', { refresh_token: r2.refresh_token });
    expect(again.status).toBe(200);
    expect(((await again.json()) as { refresh_token: string }).refresh_token).toBe(r3.refresh_token);
  });

  it('an access token issued by one process is accepted by the other (keys live in the store)', async () => {
    const { access_token } = await login('keys@example.com');
    const me = await fetch(`http://127.0.0.1:${a.port}/auth/me`, {
      headers: { authorization: `Bearer ${access_token}` },
    });
    expect(me.status).toBe(200);
    const [ka, kb] = await Promise.all(
      [a, b].map(async (s) =>
        (
          (await (await fetch(`http://127.0.0.1:${s.port}/.well-known/jwks.json`)).json()) as {
            keys: { kid: string }[];
          }
        ).keys.map((k) => k.kid),
      ),
    );
    expect(ka).toEqual(kb);
  });
});
