// What only bytes on a real socket show, for docs/security.md items 1, 27 and 35:
// requests Node's HTTP parser refuses before Fastify sees them, oversized
// credentials, and header lines repeated on the wire.
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningBaton, startBaton } from './support/baton.js';

let baton: RunningBaton;
let accessToken: string;

beforeAll(async () => {
  baton = await startBaton({ env: { BATON_LIMIT_IP_PER_MIN: 'off' } });
  const user = { email: 'socket@example.com', password: 'correct horse battery' };
  const post = (path: string) =>
    fetch(`http://127.0.0.1:${baton.port}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(user),
    });
  expect((await post('/auth/register')).status).toBe(201);
  accessToken = ((await (await post('/auth/login')).json()) as { access_token: string }).access_token;
});
afterAll(() => baton?.stop());

/** A raw HTTP/1.1 answer: status, lower-cased headers (repeats kept), body. */
interface RawAnswer {
  status: number;
  headers: [string, string][];
  body: string;
}

/** Sends raw bytes and reads the one answer (the server may close after it). */
function raw(request: string): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const socket = connect(baton.port, '127.0.0.1');
    let text = '';
    const done = () => {
      const [head = '', ...rest] = text.split('\r\n\r\n');
      const [statusLine = '', ...lines] = head.split('\r\n');
      resolve({
        status: Number(statusLine.split(' ')[1]),
        headers: lines.map((l) => {
          const colon = l.indexOf(':');
          return [l.slice(0, colon).trim().toLowerCase(), l.slice(colon + 1).trim()] as [string, string];
        }),
        body: rest.join('\r\n\r\n'),
      });
    };
    socket.on('data', (d) => {
      text += d.toString('latin1');
    });
    socket.on('end', done);
    socket.on('error', (err) => (text ? done() : reject(err)));
    socket.write(request);
    socket.end();
  });
}

const header = (answer: RawAnswer, name: string) => answer.headers.find(([n]) => n === name)?.[1];

/** A 4xx with the JSON error shape and the token-response cache headers (RFC 6749 §5.2). */
function expectJsonError(answer: RawAnswer, status: number): void {
  expect(answer.status).toBe(status);
  expect(header(answer, 'content-type')).toMatch(/^application\/json/);
  expect(header(answer, 'cache-control')).toBe('no-store');
  expect(header(answer, 'pragma')).toBe('no-cache');
  const body = JSON.parse(answer.body.slice(0, Number(header(answer, 'content-length')))) as Record<
    string,
    unknown
  >;
  expect(Object.keys(body).sort()).toEqual(['error', 'error_description']);
}

describe('1: errors from Node’s HTTP parser are JSON and never cached either', () => {
  it('30 KB of headers on /oauth/token → 431', async () => {
    const answer = await raw(
      `POST /oauth/token HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nX-Pad: ${'a'.repeat(30 * 1024)}\r\nContent-Length: 0\r\n\r\n`,
    );
    expectJsonError(answer, 431);
  });

  it('broken framing on /auth/login → 400', async () => {
    expectJsonError(await raw('POST /auth/login HTTP/9.9\r\nHost: localhost\r\n\r\n'), 400);
  });

  it('Content-Length together with Transfer-Encoding (request smuggling) → 400', async () => {
    const answer = await raw(
      'POST /auth/refresh HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    );
    expectJsonError(answer, 400);
  });
});

describe('27: oversized credentials over the wire', () => {
  it('a 20 KB bearer token → 431, before any verification', async () => {
    const answer = await raw(
      `GET /auth/me HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${accessToken}${'A'.repeat(20 * 1024)}\r\n\r\n`,
    );
    expectJsonError(answer, 431);
  });

  it('a 6 KB bearer token (under the header limit, over the token limit) → 401 invalid_token', async () => {
    const answer = await raw(
      `GET /auth/me HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nAuthorization: Bearer ${accessToken}${'A'.repeat(6 * 1024)}\r\n\r\n`,
    );
    expect(answer.status).toBe(401);
    expect(header(answer, 'www-authenticate')).toMatch(/^Bearer realm="baton", error="invalid_token"/);
  });
});

describe('35: header lines repeated on the wire', () => {
  const get = (lines: string[]) =>
    raw(`GET /auth/me HTTP/1.1\r\nConnection: close\r\n${lines.map((l) => `${l}\r\n`).join('')}\r\n`);

  it('the good token alone is accepted (control)', async () => {
    const answer = await get(['Host: localhost', `Authorization: Bearer ${accessToken}`]);
    expect(answer.status).toBe(200);
  });

  it('a repeated Authorization, the good copy first → 400 invalid_request', async () => {
    const answer = await get([
      'Host: localhost',
      `Authorization: Bearer ${accessToken}`,
      'Authorization: Bearer garbage',
    ]);
    expectJsonError(answer, 400);
    expect(JSON.parse(answer.body).error).toBe('invalid_request');
  });

  it('a repeated Host → 400 invalid_request', async () => {
    const answer = await get([
      'Host: localhost',
      'Host: evil.example',
      `Authorization: Bearer ${accessToken}`,
    ]);
    expectJsonError(answer, 400);
    expect(JSON.parse(answer.body).error).toBe('invalid_request');
  });

  it('the server is healthy afterwards', async () => {
    expect((await fetch(`http://127.0.0.1:${baton.port}/healthz`)).status).toBe(200);
  });
});
