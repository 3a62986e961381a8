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

/**
 * Lets the caller's AbortSignal cut short a wait for a refresh (the refresh
 * itself goes on for the others): rejects with the signal's reason as soon
 * as it aborts, or at once if it already has.
 *
 * `promise` is always observed, even when the signal was aborted before the
 * call: the caller has stopped listening, but the work goes on and may still
 * fail (a refresh attempt that stalls, a refresh of a call nobody awaits).
 * Its failure reaches whoever still waits for it, and the `refreshFailed`
 * event; left unobserved here it would be an unhandled rejection, which
 * ends a Node process by default.
 */
export function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return promise;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    // After an abort, settling again is a no-op: the caller keeps the abort's reason.
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

/**
 * The signal to hand to `fetch(request, { signal })` for one call, following
 * the caller's own (`init.signal`, or the signal of the Request passed in).
 * Cancellation must not depend on a Request object staying alive: in Node
 * 20's undici a Request's signal follows its source only while that Request
 * is reachable, and the requests the client builds are dropped once handed
 * to fetch. `done()` unhooks it; calling it when the call ends also keeps
 * the source and its Request reachable until then.
 */
export function callSignal(
  input: Request | string | URL,
  init: RequestInit | undefined,
): { signal: AbortSignal; done: () => void } {
  const source =
    init?.signal ?? (typeof Request !== 'undefined' && input instanceof Request ? input.signal : null);
  const controller = new AbortController();
  if (source === null || source === undefined) return { signal: controller.signal, done: () => {} };
  const follow = () => controller.abort(source.reason);
  if (source.aborted) follow();
  else source.addEventListener('abort', follow, { once: true });
  return {
    signal: controller.signal,
    done: () => {
      source.removeEventListener('abort', follow);
      // Reachable until the call ends (see above).
      void input;
    },
  };
}
