/** A JSON request to the issuer, bounded in time and size. */
export interface JsonRequest {
  readonly url: string;
  readonly timeoutMs: number;
  readonly maxBytes: number;
  readonly method?: 'GET' | 'POST';
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string;
}

/** Why a request to the issuer failed; the caller turns it into a `VerifyError`. */
export class IssuerHttpError extends Error {
  override readonly name = 'IssuerHttpError';
  constructor(
    message: string,
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

async function readCapped(res: Response, maxBytes: number): Promise<string> {
  const declared = Number(res.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > maxBytes) {
    await res.body?.cancel();
    throw new IssuerHttpError(`response larger than ${maxBytes} bytes`);
  }
  if (!res.body) return '';
  // Count as we read: a hostile or broken endpoint must not make us buffer megabytes.
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel();
      throw new IssuerHttpError(`response larger than ${maxBytes} bytes`);
    }
    chunks.push(value);
  }
  return new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks));
}

/**
 * Fetch `url` and parse a JSON object from a 200 response.
 *
 * Redirects are refused: a key set that can be redirected can be swapped, and an
 * https → http hop would undo the transport check made at construction.
 */
export async function requestJson(req: JsonRequest): Promise<Record<string, unknown>> {
  let res: Response;
  try {
    res = await fetch(req.url, {
      method: req.method ?? 'GET',
      headers: { accept: 'application/json', ...req.headers },
      body: req.body ?? null,
      redirect: 'error',
      signal: AbortSignal.timeout(req.timeoutMs),
    });
  } catch (cause) {
    throw new IssuerHttpError('request failed', undefined, { cause });
  }
  if (res.status !== 200) {
    await res.body?.cancel();
    throw new IssuerHttpError(`unexpected status ${res.status}`, res.status);
  }
  let text: string;
  try {
    text = await readCapped(res, req.maxBytes);
  } catch (cause) {
    if (cause instanceof IssuerHttpError) throw cause;
    throw new IssuerHttpError('reading the response failed', undefined, { cause });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    throw new IssuerHttpError('response is not JSON', undefined, { cause });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new IssuerHttpError('response is not a JSON object');
  }
  return value as Record<string, unknown>;
}
