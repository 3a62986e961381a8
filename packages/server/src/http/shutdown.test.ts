// A request that reaches a server while it drains for shutdown (pipelined
// behind one still in flight) is refused with 503. That answer is an error
// like any other (docs/http-api.md: `{error, error_description}`; docs/security.md item 1:
// JSON, no-store, no-cache), even when Fastify rather than a route refuses.
// About the network itself, so over a real socket on an in-process server.
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { type TestApp, testApp } from '../../test/helpers.js';

/** Everything the server sends on `socket` until it closes the connection. */
function collect(socket: Socket): {
  text: () => string;
  closed: Promise<void>;
  saw: (s: string) => Promise<void>;
} {
  let text = '';
  const waiters: { s: string; resolve: () => void }[] = [];
  socket.on('data', (d: Buffer) => {
    text += d.toString('latin1');
    for (const w of waiters) if (text.includes(w.s)) w.resolve();
  });
  return {
    text: () => text,
    closed: new Promise((resolve) => socket.once('close', () => resolve())),
    saw: (s) => new Promise((resolve) => (text.includes(s) ? resolve() : waiters.push({ s, resolve }))),
  };
}

describe('draining for shutdown', () => {
  let t: TestApp | undefined;
  afterEach(() => t?.close().catch(() => {}));

  it('a request pipelined behind one in flight gets a 503 JSON error with no-store, and the first completes', async () => {
    t = await testApp();
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = t.app.server.address() as { port: number };
    const socket = connect(port, '127.0.0.1');
    const answer = collect(socket);
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));

    // Request 1 is in flight: its headers are in (the server said 100 Continue), its body is not.
    const login = JSON.stringify({ email: 'ada@example.com', password: 'correct horse battery' });
    socket.write(
      `POST /auth/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: ${login.length}\r\n\r\n`,
    );
    await answer.saw('100 Continue');
    const closing = t.app.close();
    while (t.app.server.listening) await new Promise((resolve) => setImmediate(resolve));

    // The rest of request 1, and request 2 right behind it on the same connection.
    const form = 'grant_type=refresh_token&refresh_token=brt_x&client_id=app';
    socket.write(
      `${login}POST /oauth/token HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${form.length}\r\n\r\n${form}`,
    );
    await answer.closed;
    await closing;

    const responses = answer
      .text()
      .split(/(?=HTTP\/1\.1 )/)
      .filter((r) => !r.startsWith('HTTP/1.1 100'));
    expect(responses).toHaveLength(2);
    // Request 1 was admitted before the drain began: it is answered by its route (unknown user).
    expect(responses[0]).toMatch(/^HTTP\/1\.1 401 /);
    const [head, body] = responses[1]!.split('\r\n\r\n') as [string, string];
    expect(head).toMatch(/^HTTP\/1\.1 503 /);
    const headers = head.toLowerCase();
    expect(headers).toMatch(/\r\ncontent-type: application\/json/);
    expect(headers).toMatch(/\r\ncache-control: no-store\r\n/);
    expect(headers).toMatch(/\r\npragma: no-cache\r\n/);
    expect(headers).toMatch(/\r\nconnection: close\r\n/);
    expect(JSON.parse(body)).toEqual({
      error: 'temporarily_unavailable',
      error_description: expect.any(String),
    });
    t = undefined;
  });
});
