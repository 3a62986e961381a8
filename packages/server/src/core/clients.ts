import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { ClientRecord, Store } from '../store/store.js';
import { BatonError } from './errors.js';
import { newId } from './ids.js';
import { assertNoControlCharacters } from './text-input.js';

/**
 * Client secrets are `bcs_` + 256 random bits (base64url). The prefix lets
 * secret scanners spot a leaked one. Only a SHA-256 of the whole secret is
 * stored: the secret is full-entropy random, so a slow password hash would
 * protect nothing and cost every token request.
 */
export const CLIENT_SECRET_PREFIX = 'bcs_';
const SECRET_BYTES = 32;

/** How a client proves who it is at an OAuth endpoint. @see RFC 8414 §2 (`token_endpoint_auth_methods_supported`) */
export type ClientAuthMethod = 'client_secret_basic' | 'client_secret_post' | 'none';

/** What a request presented to identify (and perhaps authenticate) its client. @see RFC 6749 §2.3 */
export interface ClientCredentials {
  clientId: string;
  /** The presented secret; null for `none` (a public client naming itself). */
  secret: string | null;
  method: ClientAuthMethod;
}

/** A client secret as minted: the value shown once, and the hash that is stored. */
export interface MintedClientSecret {
  secret: string;
  hash: string;
}

/** base64url SHA-256 of a client secret's UTF-8 bytes. */
export function hashClientSecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('base64url');
}

/** A new random client secret and its hash. @see RFC 6749 §2.3.1 */
export function newClientSecret(): MintedClientSecret {
  const secret = `${CLIENT_SECRET_PREFIX}${randomBytes(SECRET_BYTES).toString('base64url')}`;
  return { secret, hash: hashClientSecret(secret) };
}

// Compared against when the client is unknown, so an unknown id costs the same work as a wrong secret.
const DUMMY_HASH = hashClientSecret(`${CLIENT_SECRET_PREFIX}dummy`);

/** Constant-time check of a presented secret against a stored hash; false when there is no hash. */
export function clientSecretMatches(presented: string, storedHash: string | null): boolean {
  const expected = Buffer.from(storedHash ?? DUMMY_HASH, 'base64url');
  const actual = createHash('sha256').update(presented, 'utf8').digest();
  return expected.length === actual.length && timingSafeEqual(expected, actual) && storedHash !== null;
}

const MINT = Symbol('authenticated-client');

/**
 * A client that passed {@link authenticateClient}: a confidential client
 * that proved its secret, or a public client that named itself (it has no
 * secret to prove, RFC 6749 §2.1). Only `authenticateClient` can make one:
 * the constructor wants a module-private symbol and the private field makes
 * the type nominal, so a look-alike object does not type-check, and a core
 * function that takes one knows the check really ran.
 * @see RFC 6749 §2.3
 */
export class AuthenticatedClient {
  readonly #record: ClientRecord;
  /** How the client authenticated. */
  readonly method: ClientAuthMethod;

  /** Not for use outside this module: call {@link authenticateClient}. */
  constructor(mint: symbol, record: ClientRecord, method: ClientAuthMethod) {
    if (mint !== MINT) throw new TypeError('An AuthenticatedClient is made only by authenticateClient');
    this.#record = record;
    this.method = method;
  }

  /** The client's id. */
  get id(): string {
    return this.#record.id;
  }

  /** The stored client, as it was when it authenticated. */
  get record(): ClientRecord {
    return this.#record;
  }
}

/**
 * Identifies and authenticates the client of a request. A confidential
 * client must present its secret; a public client must not (it has none,
 * so a "secret" would be a mistake worth refusing, not ignoring). Every
 * failure is `invalid_client`, which the HTTP layer answers with 401 and
 * `WWW-Authenticate: Basic`. Unknown id and wrong secret look the same.
 * @see RFC 6749 §2.3.1, §3.2.1, §5.2
 */
export async function authenticateClient(
  findClient: (id: string) => Promise<ClientRecord | null>,
  credentials: ClientCredentials,
): Promise<AuthenticatedClient> {
  assertNoControlCharacters(credentials.clientId, 'client_id');
  const client = await findClient(credentials.clientId);
  if (credentials.secret !== null) {
    const ok = clientSecretMatches(credentials.secret, client?.secretHash ?? null);
    if (!client || !ok || client.type !== 'confidential')
      throw new BatonError('invalid_client', 'Client authentication failed');
    return new AuthenticatedClient(MINT, client, credentials.method);
  }
  if (!client) throw new BatonError('invalid_client', 'Client authentication failed');
  if (client.type === 'confidential')
    throw new BatonError(
      'invalid_client',
      'This client must authenticate (client_secret_basic or client_secret_post)',
    );
  return new AuthenticatedClient(MINT, client, 'none');
}

/** Input of {@link createClient}. Durations in milliseconds. */
export interface NewClientInput {
  /** Default: a random `cli_…` id. */
  id?: string;
  /** Default: the id. */
  name?: string;
  type: 'public' | 'confidential';
  allowedScopes?: readonly string[];
  allowedOrigins?: readonly string[];
  /** `aud` of the client's access tokens; default the issuer. */
  audience?: string | null;
  accessTtl?: number | null;
  refreshIdleTtl?: number | null;
  sessionMaxTtl?: number | null;
}

const CLIENT_ID = /^[A-Za-z0-9][A-Za-z0-9._~-]{0,99}$/;
// RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]{1,100}$/;

function invalid(description: string): BatonError {
  return new BatonError('invalid_request', description);
}

function checkOrigin(origin: string): string {
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    throw invalid(`"${origin.slice(0, 100)}" is not an http(s) origin`);
  }
  const bare = url.pathname === '/' && url.search === '' && url.hash === '' && url.username === '';
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || !bare)
    throw invalid(`"${origin.slice(0, 100)}" is not an http(s) origin (scheme://host[:port])`);
  return url.origin;
}

function checkTtl(value: number | null | undefined, name: string): number | null {
  if (value === undefined || value === null) return null;
  if (!Number.isSafeInteger(value) || value <= 0) throw invalid(`${name} must be a positive duration`);
  return value;
}

/**
 * Validates and stores a new client. A confidential client gets a fresh
 * secret, returned here once and stored only as its hash.
 * @see RFC 6749 §2 (client types), §2.3.1 (client password)
 */
export async function createClient(
  store: Store,
  input: NewClientInput,
  now: number,
): Promise<{ client: ClientRecord; secret: string | null }> {
  const id = input.id ?? newId('cli');
  if (!CLIENT_ID.test(id))
    throw invalid(
      'client id must be 1-100 characters of A-Z a-z 0-9 . _ ~ - (starting with a letter or digit)',
    );
  if (input.type !== 'public' && input.type !== 'confidential')
    throw invalid('client type must be public or confidential');
  const name = (input.name ?? id).trim();
  if (name === '' || name.length > 100) throw invalid('client name must be 1-100 characters');
  const allowedScopes = [...new Set(input.allowedScopes ?? [])];
  for (const s of allowedScopes)
    if (!SCOPE_TOKEN.test(s)) throw invalid('a scope contains forbidden characters');
  const allowedOrigins = [...new Set((input.allowedOrigins ?? []).map(checkOrigin))];
  const audience = input.audience ?? null;
  if (audience !== null && (audience === '' || audience.length > 200 || /\s/.test(audience)))
    throw invalid('audience must be a non-empty URI without spaces');
  if (await store.findClient(id)) throw invalid(`a client with id "${id}" already exists`);
  const secret = input.type === 'confidential' ? newClientSecret() : null;
  const client: ClientRecord = {
    id,
    name,
    type: input.type,
    secretHash: secret?.hash ?? null,
    allowedOrigins,
    allowedScopes,
    audience,
    accessTtl: checkTtl(input.accessTtl, 'access TTL'),
    refreshIdleTtl: checkTtl(input.refreshIdleTtl, 'refresh idle TTL'),
    sessionMaxTtl: checkTtl(input.sessionMaxTtl, 'session max TTL'),
    createdAt: now,
  };
  await store.createClient(client);
  return { client, secret: secret?.secret ?? null };
}

/** Every audience the server issues tokens for: the issuer and each client's own. @see RFC 9068 §3 */
export async function issuedAudiences(store: Store, issuer: string): Promise<string[]> {
  const clients = await store.listClients();
  return [...new Set([issuer, ...clients.flatMap((c) => (c.audience ? [c.audience] : []))])];
}

/** The union of the clients' allowed scopes, sorted. @see RFC 8414 §2 (`scopes_supported`) */
export async function supportedScopes(store: Store): Promise<string[]> {
  const clients = await store.listClients();
  return [...new Set(clients.flatMap((c) => c.allowedScopes))].sort();
}
