import { afterEach, describe, expect, it, vi } from 'vitest';
import { clientFor, credentials, disposeAll, fakeServer, recordEvents } from './test-support/harness.js';

afterEach(() => {
  disposeAll();
  vi.unstubAllGlobals();
});

const minutes = (n: number) => n * 60_000;

describe('expiry is measured on the client clock from expires_in', () => {
  for (const skewMs of [minutes(-10), 0, minutes(10)]) {
    it(`refreshes neither early nor late with a clock ${skewMs / 60_000} min off`, async () => {
      const server = fakeServer();
      const client = clientFor(server, { skewMs });
      await client.login(credentials);

      // 15-minute token, margin 90 s (+2.5 s jitter): not yet due at 13 min.
      server.clock.advance(minutes(13));
      const early = await client.fetch('/auth/me');
      expect(early.status).toBe(200);
      expect(server.refreshCount).toBe(0);

      // Due at 14 min: refreshed first, so the server never sees an expired token.
      server.clock.advance(minutes(1));
      const due = await client.fetch('/auth/me');
      expect(due.status).toBe(200);
      expect(server.refreshCount).toBe(1);
      expect(server.requests.map((r) => r.path)).toEqual([
        '/auth/login',
        '/auth/me',
        '/auth/refresh',
        '/auth/me',
      ]);
    });
  }

  it('keeps short-lived tokens for half their life instead of refreshing on every request', async () => {
    const server = fakeServer({ accessTtlSeconds: 6 });
    const client = clientFor(server);
    await client.login(credentials);
    server.clock.advance(2_000);
    expect((await client.fetch('/auth/me')).status).toBe(200);
    expect(server.refreshCount).toBe(0);
    server.clock.advance(2_000);
    expect((await client.fetch('/auth/me')).status).toBe(200);
    expect(server.refreshCount).toBe(1);
  });

  it('refreshes when the clock is set back, instead of trusting a token that may be long expired', async () => {
    const server = fakeServer();
    let jump = 0;
    const client = clientFor(server, { now: () => server.clock.ms + jump });
    await client.login(credentials);
    server.clock.advance(minutes(20)); // the token has really expired…
    jump = -minutes(30); // …but the user set the clock back half an hour
    expect((await client.fetch('/auth/me')).status).toBe(200);
    expect(server.refreshCount).toBe(1);
    // Re-anchored on the new clock: no refresh storm afterwards.
    expect((await client.fetch('/auth/me')).status).toBe(200);
    expect(server.refreshCount).toBe(1);
  });

  it('reports the expiry on the local clock through getSession', async () => {
    const server = fakeServer();
    const client = clientFor(server, { skewMs: minutes(-10) });
    const info = await client.login(credentials);
    expect(info.expiresAt - info.obtainedAt).toBe(minutes(15));
    expect(info.obtainedAt).toBe(server.clock.ms - minutes(10));
    expect(client.getSession()).toEqual(info);
    expect(JSON.stringify(info)).not.toContain('brt_');
  });
});

describe('sleep and wake', () => {
  function stubPage() {
    const win = new EventTarget();
    const doc = Object.assign(new EventTarget(), { visibilityState: 'visible' as 'visible' | 'hidden' });
    vi.stubGlobal('addEventListener', win.addEventListener.bind(win));
    vi.stubGlobal('removeEventListener', win.removeEventListener.bind(win));
    vi.stubGlobal('document', doc);
    return { win, doc };
  }

  it('refreshes when the page becomes visible after the laptop slept past expiry', async () => {
    const { doc } = stubPage();
    const server = fakeServer();
    const client = clientFor(server);
    const events = recordEvents(client);
    await client.login(credentials);

    server.clock.advance(minutes(120)); // asleep: no timer ran
    expect(server.refreshCount).toBe(0);
    doc.dispatchEvent(new Event('visibilitychange'));
    await vi.waitFor(() => expect(events.map((e) => e.name)).toContain('tokenRefreshed'));
    expect(server.refreshCount).toBe(1);

    // The request after waking uses the fresh token straight away.
    expect((await client.fetch('/auth/me')).status).toBe(200);
    expect(server.refreshCount).toBe(1);
  });

  it('does nothing while the page is hidden, and re-checks on focus and pageshow', async () => {
    const { win, doc } = stubPage();
    const server = fakeServer();
    const client = clientFor(server);
    await client.login(credentials);
    server.clock.advance(minutes(60));

    doc.visibilityState = 'hidden';
    doc.dispatchEvent(new Event('visibilitychange'));
    await new Promise((r) => setTimeout(r, 20));
    expect(server.refreshCount).toBe(0);

    doc.visibilityState = 'visible';
    win.dispatchEvent(new Event('focus'));
    await vi.waitFor(() => expect(server.refreshCount).toBe(1));

    server.clock.advance(minutes(60));
    win.dispatchEvent(new Event('pageshow'));
    await vi.waitFor(() => expect(server.refreshCount).toBe(2));
    // Both refreshes were real rotations, each from the newest token.
    expect(server.refreshes).toMatchObject({ rotated: 2, reuse_detected: 0 });
  });

  it('retries at once when the network comes back, without waiting out the backoff', async () => {
    const { win } = stubPage();
    const server = fakeServer();
    // One attempt per call, so each call below meets one failure.
    const client = clientFor(server, { random: () => 0.999, refreshRetryBudgetMs: 0 });
    const events = recordEvents(client);
    await client.login(credentials);
    server.clock.advance(minutes(14));

    server.failNext('/auth/refresh', { kind: 'network' });
    server.failNext('/auth/refresh', { kind: 'network' });
    server.failNext('/auth/refresh', { kind: 'network' });
    for (let i = 0; i < 3; i++) {
      // Each waits out the previous backoff on the (injected) clock.
      await expect(client.getAccessToken()).resolves.toMatch(/^ey/);
      server.clock.advance(10_000);
    }
    const failures = events.filter((e) => e.name === 'refreshFailed');
    expect(failures).toHaveLength(3);
    const lastDelay = (failures[2]!.payload as { retryInMs: number }).retryInMs;
    expect(lastDelay).toBeGreaterThan(3_000); // 3rd attempt: ceiling 4 s

    win.dispatchEvent(new Event('online'));
    await vi.waitFor(() => expect(events.map((e) => e.name)).toContain('tokenRefreshed'));
    expect(server.refreshCount).toBe(4);
  });

  it('removes its listeners on dispose', async () => {
    const { doc } = stubPage();
    const server = fakeServer();
    const client = clientFor(server);
    await client.login(credentials);
    client.dispose();
    server.clock.advance(minutes(60));
    doc.dispatchEvent(new Event('visibilitychange'));
    await new Promise((r) => setTimeout(r, 20));
    expect(server.refreshCount).toBe(0);
    await expect(client.fetch('/auth/me')).rejects.toMatchObject({ code: 'disposed' });
  });
});
