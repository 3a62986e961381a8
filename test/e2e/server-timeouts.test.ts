import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningBaton, startBaton } from './support/baton.js';

/**
 * Slow and idle clients on a real socket: without request, header and keep-alive
 * timeouts and a connection cap, a handful of clients that send a little and then
 * nothing hold sockets (and file descriptors) forever. The timeouts are set short
 * through the environment; every wait below is bounded by a generous limit, and
 * nothing asserts how fast the server was, only that it closed before the limit.
 */

/** Far above every timeout configured here: a connection still open after this was never closed. */
const BOUND_MS = 15_000;

interface RawConnection {
  socket: Socket;
  /** Everything the server sent so far. */
  received(): string;
  /** Resolves true once the server closed the connection, false if it is still open after `ms`. */
  closedWithin(ms: number): Promise<boolean>;
  /** Resolves once `text` has been received (or rejects after `ms`). */
  waitFor(text: string, ms?: number): Promise<void>;
}

function open(port: number): Promise<RawConnection> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let data = '';
    let closed = false;
    const listeners = new Set<() => void>();
    const notify = () => {
      for (const l of listeners) l();
    };
    socket.on('data', (d) => {
      data += d.toString('latin1');
      notify();
    });
    // A reset by the server (the connection cap) is a close too.
    socket.on('error', () => {});
    socket.on('close', () => {
      closed = true;
      notify();
    });
    const until = (done: () => boolean, ms: number) =>
      new Promise<boolean>((res) => {
        if (done()) return res(true);
        const timer = setTimeout(() => {
          listeners.delete(check);
          res(false);
        }, ms);
        function check() {
          if (!done()) return;
          clearTimeout(timer);
          listeners.delete(check);
          res(true);
        }
        listeners.add(check);
      });
    socket.once('connect', () =>
      resolve({
        socket,
        received: () => data,
        closedWithin: (ms) => until(() => closed, ms),
        async waitFor(text, ms = BOUND_MS) {
          if (!(await until(() => data.includes(text) || closed, ms)) || !data.includes(text))
            throw new Error(`did not receive ${JSON.stringify(text)}; got ${JSON.stringify(data)}`);
        },
      }),
    );
    socket.once('error', reject);
  });
}

const bodyOf = (answer: string) => answer.slice(answer.indexOf('\r\n\r\n') + 4);

describe('request, header and keep-alive timeouts (real server, short timeouts from the environment)', () => {
  let baton: RunningBaton;
  beforeAll(async () => {
    baton = await startBaton({
      env: {
        BATON_REQUEST_TIMEOUT: '2s',
        BATON_HEADERS_TIMEOUT: '1s',
        BATON_KEEP_ALIVE_TIMEOUT: '1s',
        BATON_MAX_CONNECTIONS: '100',
      },
    });
  });
  afterAll(() => baton?.stop());

  it('slow bodies: ten clients that send headers and half a body, then nothing, all get a JSON 408 and are closed', async () => {
    const clients = await Promise.all(Array.from({ length: 10 }, () => open(baton.port)));
    for (const c of clients) {
      c.socket.write(
        'POST /auth/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n' +
          'Content-Length: 100\r\n\r\n{"email":"ada@example.com",',
      );
    }
    const closed = await Promise.all(clients.map((c) => c.closedWithin(BOUND_MS)));
    expect(closed).toEqual(clients.map(() => true));
    for (const c of clients) {
      expect(c.received()).toMatch(/^HTTP\/1.1 408 /);
      expect(c.received().toLowerCase()).toContain('cache-control: no-store');
      expect(JSON.parse(bodyOf(c.received()))).toEqual({
        error: 'invalid_request',
        error_description: 'The request took too long to arrive',
      });
    }
  });

  it('slow headers: a request line and half the headers, then nothing, is closed', async () => {
    const c = await open(baton.port);
    c.socket.write('GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: ');
    expect(await c.closedWithin(BOUND_MS)).toBe(true);
    // An answer, if the server sends one, is a 408 and never a 200 to the half-read request.
    if (c.received() !== '') expect(c.received()).toMatch(/^HTTP\/1.1 408 /);
  });

  it('a connection that sends nothing at all is closed', async () => {
    const c = await open(baton.port);
    expect(await c.closedWithin(BOUND_MS)).toBe(true);
  });

  it('an idle keep-alive connection is closed after the keep-alive timeout', async () => {
    const c = await open(baton.port);
    c.socket.write('GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: keep-alive\r\n\r\n');
    await c.waitFor('\r\n\r\n');
    expect(c.received()).toMatch(/^HTTP\/1.1 200 /);
    expect(c.received().toLowerCase()).toMatch(/keep-alive: timeout=1\b/);
    expect(await c.closedWithin(BOUND_MS)).toBe(true);
  });

  it('a complete request that arrives in time is answered normally', async () => {
    const res = await fetch(`http://127.0.0.1:${baton.port}/healthz`);
    expect(res.status).toBe(200);
  });
});

describe('connection cap (BATON_MAX_CONNECTIONS)', () => {
  let baton: RunningBaton;
  beforeAll(async () => {
    baton = await startBaton({ env: { BATON_MAX_CONNECTIONS: '3' } });
  });
  afterAll(() => baton?.stop());

  it('connections beyond the cap are dropped unanswered; once one closes, a new one is served', async () => {
    const clients: RawConnection[] = [];
    // Five keep-alive connections against a cap of three (the start-up health check may hold
    // one more): at most three are served, the others are closed without an answer.
    for (let i = 0; i < 5; i++) {
      const c = await open(baton.port);
      c.socket.write('GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: keep-alive\r\n\r\n');
      clients.push(c);
    }
    const served = await Promise.all(
      clients.map((c) =>
        c.waitFor('\r\n\r\n', 5_000).then(
          () => true,
          () => false,
        ),
      ),
    );
    expect(served.filter(Boolean).length).toBeLessThanOrEqual(3);
    expect(served.filter((s) => !s).length).toBeGreaterThanOrEqual(2);
    for (const [i, c] of clients.entries()) {
      if (!served[i]) {
        expect(await c.closedWithin(BOUND_MS)).toBe(true);
        expect(c.received()).toBe('');
      }
    }
    for (const c of clients) c.socket.destroy();
    // The server sees the closes asynchronously: retry a few times, bounded.
    let status = 0;
    for (let attempt = 0; attempt < 50 && status !== 200; attempt++) {
      const c = await open(baton.port);
      c.socket.write('GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
      await c.closedWithin(BOUND_MS);
      status = Number(c.received().split(' ')[1] ?? 0);
      if (status !== 200) await new Promise((r) => setTimeout(r, 100));
    }
    expect(status).toBe(200);
  });
});
