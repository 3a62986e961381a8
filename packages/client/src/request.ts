/**
 * The request `fetch` will send: relative URLs resolve against `authBase`, and
 * only origins in `tokenOrigins` (baseUrl's and the ones the app named) may
 * receive the access token.
 */
export function buildRequest(
  input: Request | string | URL,
  init: RequestInit | undefined,
  authBase: string,
  tokenOrigins: ReadonlySet<string>,
): Request {
  const isRequest = typeof Request !== 'undefined' && input instanceof Request;
  const url = isRequest ? new URL(input.url) : new URL(String(input), `${authBase}/`);
  if (!tokenOrigins.has(url.origin)) {
    // Never hand the access token to a third party by accident.
    throw new TypeError(
      `fetch: ${url.origin} is not baseUrl's origin or one of tokenOrigins; use the global fetch for other origins`,
    );
  }
  return isRequest ? new Request(input, init) : new Request(url.href, init);
}

/**
 * `request` with `Authorization: Bearer` (RFC 6750 §2.1). `keepOriginal`
 * clones it first, so the original can be replayed after a 401.
 */
export function withBearer(request: Request, accessToken: string, keepOriginal: boolean): Request {
  const attempt = keepOriginal ? request.clone() : request;
  const headers = new Headers(attempt.headers);
  headers.set('Authorization', `Bearer ${accessToken}`);
  return new Request(attempt, { headers });
}

/** Whether a body is a stream, which the first attempt consumes: such a request cannot be replayed after a 401. */
export function isStreamBody(body: unknown): boolean {
  if (body === null || typeof body !== 'object') return false;
  if (typeof ReadableStream !== 'undefined' && body instanceof ReadableStream) return true;
  // Node streams and async iterables, which undici also accepts as bodies.
  return Symbol.asyncIterator in body || typeof (body as { pipe?: unknown }).pipe === 'function';
}

/** Lets the caller's AbortSignal cut short a wait for a refresh (the refresh itself goes on for the others). */
export function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}
