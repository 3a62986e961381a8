import type { ClientRecord, Store } from '../store/store.js';
import {
  type AuthenticatedClient,
  authenticateClient,
  type ClientCredentials,
  createClient,
  issuedAudiences,
  type NewClientInput,
  supportedScopes,
} from './clients.js';
import type { Clock } from './clock.js';
import { assertNoControlCharacters } from './text-input.js';

/** The OAuth clients the service knows: authentication, lookups, administration. @see RFC 6749 §2 */
export interface ClientRegistry {
  /** Authenticates a request's client; `invalid_client` on any failure. @see RFC 6749 §2.3.1 */
  authenticate(credentials: ClientCredentials): Promise<AuthenticatedClient>;
  /** A client by id through a short cache (see below), or null. */
  find(id: string): Promise<ClientRecord | null>;
  /**
   * The browser origins a client's pages may call from (its
   * `allowedOrigins`); for `null`, those of every client, for requests that
   * name none (registration). Empty for an unknown client.
   */
  browserOrigins(clientId: string | null): Promise<readonly string[]>;
  /** Every client (never their secrets in output: only hashes are stored). */
  list(): Promise<ClientRecord[]>;
  /** Validates and stores a new client; a confidential one's secret is returned here, once. */
  create(input: NewClientInput): Promise<{ client: ClientRecord; secret: string | null }>;
  /** Deletes a client and revokes every session it has; false when there is none. */
  delete(id: string): Promise<boolean>;
  /** Every audience the server issues tokens for. @see RFC 9068 §3 */
  issuedAudiences(issuer: string): Promise<string[]>;
  /** The union of the clients' allowed scopes, sorted. @see RFC 8414 §2 */
  supportedScopes(): Promise<string[]>;
}

/** Creates the client registry over a store. */
export function createClientRegistry(store: Store, now: Clock): ClientRegistry {
  // Clients change rarely and are read on every login and refresh: a short
  // cache saves that read. Deleting a client revokes its sessions in the
  // store, so a stale entry can never bring a session back. Authentication
  // reads the store itself: a deleted or re-keyed client stops at once.
  const cache = new Map<string, { client: ClientRecord | null; until: number }>();
  async function find(id: string): Promise<ClientRecord | null> {
    assertNoControlCharacters(id, 'client_id');
    const t = now();
    const hit = cache.get(id);
    if (hit && hit.until > t) return hit.client;
    const client = await store.findClient(id);
    if (cache.size > 1000) cache.clear();
    cache.set(id, { client, until: t + 10_000 });
    return client;
  }
  return {
    authenticate: (credentials) => authenticateClient((id) => store.findClient(id), credentials),
    find,
    async browserOrigins(clientId) {
      if (clientId !== null) return (await find(clientId))?.allowedOrigins ?? [];
      return [...new Set((await store.listClients()).flatMap((c) => c.allowedOrigins))];
    },
    list: () => store.listClients(),
    create: (input) => createClient(store, input, now()),
    delete: (id) => store.deleteClient(id, now()),
    issuedAudiences: (issuer) => issuedAudiences(store, issuer),
    supportedScopes: () => supportedScopes(store),
  };
}
