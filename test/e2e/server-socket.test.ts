import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningBaton, startBaton } from './support/baton.js';

/** What only a real socket shows: how oversized bodies and headers are answered. */
describe('HTTP over a real socket', () => {
  let baton: RunningBaton;
  beforeAll(async () => {
    baton = await startBaton();
  });
  afterAll(() => baton?.stop());

  /** Sends raw bytes and collects the whole answer (the server may close after it). */
  function raw(request: Buffer | string): Promise<string> {
    return new Promise((resolve, reject) => {
      const socket = connect(baton.port, '127.0.0.1');
      let answer = '';
      socket.on('data', (d) => {
        answer += d.toString('latin1');
      });
      socket.on('end', () => resolve(answer));
      socket.on('close', () => resolve(answer));
      socket.on('error', (err) => (answer ? resolve(answer) : reject(err)));
      socket.write(request);
      socket.end();
    });
  }

  it('a 2 MB body gets a JSON 413 that the client actually receives', async () => {
    const body = JSON.stringify({ email: 'a@b.co', password: 'x'.repeat(2 * 1024 * 1024) });
    // fetch fails with a network error if the server resets the connection while the body is still uploading.
    const res = await fetch(`http://127.0.0.1:${baton.port}/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });
    expect(res.status).toBe(413);
    expect(await res.json()).toEqual({
      error: 'payload_too_large',
      error_description: expect.stringMatching(/exceeds/),
    });
  });

  it('30 KB of headers get a JSON 431', async () => {
    const answer = await raw(
      `GET /auth/me HTTP/1.1\r\nHost: localhost\r\nX-Big: ${'a'.repeat(30 * 1024)}\r\n\r\n`,
    );
    expect(answer).toMatch(/^HTTP\/1.1 431 /);
    const json = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4));
    expect(json).toEqual({
      error: 'invalid_request',
      error_description: 'The request headers are too large',
    });
  });

  it('broken HTTP framing gets a JSON 400', async () => {
    const answer = await raw('GARBAGE / HTTP/9\r\n\r\n');
    expect(answer).toMatch(/^HTTP\/1.1 400 /);
    expect(answer).toContain('"error":"invalid_request"');
  });

  it('duplicate Content-Length headers are refused, not guessed', async () => {
    const answer = await raw(
      'POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\nContent-Length: 40\r\n\r\n{}',
    );
    expect(answer).toMatch(/^HTTP\/1.1 400 /);
  });

  it('the server is still healthy afterwards', async () => {
    expect((await fetch(`http://127.0.0.1:${baton.port}/healthz`)).status).toBe(200);
  });
});
