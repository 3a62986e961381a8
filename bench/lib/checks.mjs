// Correctness checks after the load: rotation really rotates, a replay after the grace window
// fails, and (Baton, the floor) revokes its session. For the as-written seed: its defects,
// measured rather than asserted. Each check starts its own short-lived server.
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from 'undici';
import { protocols } from './protocols.mjs';
import { startBaton } from './targets.mjs';

const GRACE_MS = 1000;

async function withClient(server, fn) {
  const client = new Client(server.url);
  try {
    return await fn(client);
  } finally {
    await client.destroy();
    await server.stop();
  }
}

/** Rotate once, wait past the grace window, replay the old token, then try the newest one. */
async function replayCheck(server, protocol, setupToken) {
  return withClient(server, async (client) => {
    const p = protocols[protocol];
    const t0 = setupToken ?? (await p.setup(client, 0, 'check'));
    const first = await p.refresh(client, t0);
    const rotated = first.status === 200 && typeof first.next === 'string' && first.next !== t0;
    await sleep(GRACE_MS + 300);
    const replay = await p.refresh(client, t0);
    const newest = await p.refresh(client, first.next);
    return {
      rotated,
      replayRejected: replay.status >= 400 && replay.status < 500,
      replayStatus: replay.status,
      sessionRevoked: newest.status >= 400 && newest.status < 500,
      newestStatus: newest.status,
    };
  });
}

/** Baton with a 1 s grace window (the measured runs keep the default); `cli`: another build's. */
export function checkBaton(db, protocol, cli) {
  return startBaton({ db, cli, env: { BATON_REUSE_GRACE: `${GRACE_MS}ms` } }).then((s) =>
    replayCheck(s, protocol),
  );
}

/** The floor and the fixed seed: same check on their own servers. */
export async function checkScript(target, env) {
  const server = await target.startWith(env);
  return replayCheck(server, target.protocol, server.tokens?.[0]);
}

/** The as-written seed's defects, each measured on a fresh server. */
export async function checkSeedAsWritten(target) {
  const server = await target.start({ sessions: 1 });
  return withClient(server, async (client) => {
    const p = protocols.seed;
    // Start right after a second boundary, so the pair below lands within one second.
    for (let i = 0; i < 400 && Date.now() % 1000 > 100; i++) await sleep(5);
    const a = await p.setup(client, 0, 'defects');
    const b = await p.setup(client, 0, 'defects');
    const sameTokenWithinOneSecond = a === b;
    const r1 = await p.refresh(client, a);
    const r2 = await p.refresh(client, a);
    const res = await client.request({
      path: '/api/v1/users/refresh-token',
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ refreshToken: a }),
    });
    const cookies = [res.headers['set-cookie']].flat().filter(Boolean);
    const body = await res.body.json();
    const refreshCookie = cookies.find((c) => c.startsWith('refreshToken=')) ?? '';
    // Past the next second boundary the stored token changes, and the client was never told.
    await sleep(1100);
    const afterBoundary = await p.refresh(client, a);
    const thenAgain = await p.refresh(client, a);
    return {
      sameTokenWithinOneSecond,
      usedTokenAcceptedAgain: r1.status === 200 && r2.status === 200 && res.statusCode === 200,
      newRefreshTokenInJson: body?.data?.newRefreshToken === undefined ? 'absent (undefined)' : 'present',
      refreshCookie: refreshCookie.split(';')[0],
      afterSecondBoundary: afterBoundary.status,
      chainBrokenThen: thenAgain.status,
    };
  });
}
