import type { ClientCredentials } from '../core/clients.js';
import { BatonError } from '../core/errors.js';

/** Longest client id or secret read from a request; longer is refused before any hashing. */
const MAX_CREDENTIAL_LENGTH = 512;
const BASIC = /^Basic +([A-Za-z0-9+/]+={0,2}) *$/i;

const badClient = (description: string) => new BatonError('invalid_client', description);

/**
 * Decodes one half of Basic credentials: RFC 6749 §2.3.1 has the client id
 * and secret `application/x-www-form-urlencoded` before they are joined, so
 * `+` is a space and `%XX` an octet (a secret containing `:` survives).
 */
function formDecode(text: string): string {
  try {
    return decodeURIComponent(text.replaceAll('+', ' '));
  } catch {
    throw badClient('The Basic credentials are not form-urlencoded');
  }
}

function parseBasic(header: string): { clientId: string; secret: string } {
  const match = BASIC.exec(header);
  if (!match) throw badClient('Malformed Basic credentials');
  let decoded: string;
  try {
    decoded = new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(match[1]!, 'base64'));
  } catch {
    throw badClient('Malformed Basic credentials');
  }
  const colon = decoded.indexOf(':');
  if (colon < 1) throw badClient('Malformed Basic credentials');
  const clientId = formDecode(decoded.slice(0, colon));
  const secret = formDecode(decoded.slice(colon + 1));
  if (clientId === '' || clientId.length > MAX_CREDENTIAL_LENGTH || secret.length > MAX_CREDENTIAL_LENGTH)
    throw badClient('Malformed Basic credentials');
  return { clientId, secret };
}

/**
 * Reads how a request identifies its client:
 * - `Authorization: Basic` → `client_secret_basic`;
 * - `client_id` + `client_secret` parameters → `client_secret_post`;
 * - `client_id` alone → `none` (a public client naming itself).
 *
 * Returns null when the request names no client at all. Using two methods at
 * once is `invalid_request` (RFC 6749 §2.3 allows one per request); any other
 * `Authorization` scheme or malformed Basic credentials are `invalid_client`.
 * Nothing is verified here: see `authenticateClient`.
 * @see RFC 6749 §2.3.1, RFC 7617 §2
 */
export function readClientCredentials(
  authorization: string | undefined,
  params: { client_id?: string | undefined; client_secret?: string | undefined },
): ClientCredentials | null {
  const bodyId = params.client_id;
  const bodySecret = params.client_secret;
  if (authorization !== undefined && authorization !== '') {
    if (!/^Basic(\s|$)/i.test(authorization))
      throw badClient('Unsupported client authentication method: use Basic or client_secret');
    const basic = parseBasic(authorization);
    if (bodySecret !== undefined)
      throw new BatonError(
        'invalid_request',
        'Use one client authentication method, not Basic and client_secret',
      );
    if (bodyId !== undefined && bodyId !== basic.clientId)
      throw new BatonError('invalid_request', 'client_id does not match the Basic credentials');
    return { clientId: basic.clientId, secret: basic.secret, method: 'client_secret_basic' };
  }
  if (bodySecret !== undefined) {
    if (bodyId === undefined) throw new BatonError('invalid_request', 'client_secret needs client_id');
    if (bodyId.length > MAX_CREDENTIAL_LENGTH || bodySecret.length > MAX_CREDENTIAL_LENGTH)
      throw badClient('Client authentication failed');
    return { clientId: bodyId, secret: bodySecret, method: 'client_secret_post' };
  }
  if (bodyId !== undefined) {
    if (bodyId.length > MAX_CREDENTIAL_LENGTH) throw badClient('Client authentication failed');
    return { clientId: bodyId, secret: null, method: 'none' };
  }
  return null;
}
