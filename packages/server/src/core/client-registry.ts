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
  /** A client by id through a short cache ({@link CLIENT_CACHE_TTL_MS}), or null. */
  find(id: string): Promise<ClientRecord | null>;
  /**
   * The browser origins a client's pages may call from (its
   * `allowedOrigins`); for `null`, those of every client, for requests that
   * name none (registration, CORS), through a cache like {@link find}'s.
   * Empty for an unknown client.
   */
  browserOrigins(clientId: string | null): Promise<readonly string[]>;
  /** Every client (never their secrets in output: only hashes are stored). */
  list(): Promise<ClientRecord[]>;
  /** Validates and stores a new client; a confidential one's secret is returned here, once. */
  create(input: NewClientInput): Promise<{ client: ClientRecord; secret: string | null }>;
  /**
   * Deletes a client and revokes every session it has; false when there is
   * none. Its sessions stop at once here, within {@link CLIENT_CACHE_TTL_MS}
   * on other instances.
   */
  delete(id: string): Promise<boolean>;
  /** Every audience the server issues tokens for. @see RFC 9068 §3 */
  issuedAudiences(issuer: string): Promise<string[]>;
  /** The union of the clients' allowed scopes, sorted. @see RFC 8414 §2 */
  supportedScopes(): Promise<string[]>;
}

/**
 * How long an instance may answer client lookups from its cache (ms). This
 * is the bound within which a client deleted elsewhere (another instance,
 * `baton clients delete`) stops logging in, refreshing and authenticating
 * its sessions' access tokens on this instance. On the instance that
 * deletes it, it stops at once.
 */
export const CLIENT_CACHE_TTL_MS = 10_000;

/** Creates the client registry over a store. */
export function createClientRegistry(store: Store, now: Clock): ClientRegistry {
  // Clients change rarely and are read on every login, refresh and access
  // token check: a short cache saves that read. Deletion revokes the
  // client's sessions in the store, but an instance whose cache still holds
  // the client may start a new session after that revocation ran (as may a
  // login already in flight). Such a session is refused as soon as the
  // cache says the client is gone: refresh and access-token checks both ask
  // this cache for the session's client. Authentication of a confidential
  // client reads the store itself: a deleted or re-keyed client stops at once.
  const cache = new Map<string, { client: ClientRecord | null; until: number }>();
  // Bumped by every change made here: a read that began before a deletion
  // must not put the deleted client back into the cache when it lands.
  let generation = 0;
  // The union of every client's origins, asked for by requests from an origin the server
  // does not list itself (registration, CORS): a page anyone can open must not cost a
  // scan of the clients table per request. Same bound as the per-client cache.
  let everyOrigin: { origins: readonly string[]; until: number } | undefined;
  const forget = (id: string) => {
    generation++;
    cache.delete(id);
    everyOrigin = undefined;
  };
  async function allBrowserOrigins(): Promise<readonly string[]> {
    const t = now();
    if (everyOrigin && everyOrigin.until > t) return everyOrigin.origins;
    const seen = generation;
    const origins = [...new Set((await store.listClients()).flatMap((c) => c.allowedOrigins))];
    if (seen === generation) everyOrigin = { origins, until: t + CLIENT_CACHE_TTL_MS };
    return origins;
  }
  async function find(id: string): Promise<ClientRecord | null> {
    assertNoControlCharacters(id, 'client_id');
    const t = now();
    const hit = cache.get(id);
    if (hit && hit.until > t) return hit.client;
    const seen = generation;
    const client = await store.findClient(id);
    if (seen === generation) {
      if (cache.size > 1000) cache.clear();
      cache.set(id, { client, until: t + CLIENT_CACHE_TTL_MS });
    }
    return client;
  }
  return {
    authenticate: (credentials) => authenticateClient((id) => store.findClient(id), credentials),
    find,
    async browserOrigins(clientId) {
      if (clientId !== null) return (await find(clientId))?.allowedOrigins ?? [];
      return allBrowserOrigins();
    },
    list: () => store.listClients(),
    async create(input) {
      const t = now();
      const created = await createClient(store, input, t);
      await store.recordSecurityEvent({
        type: 'client_created',
        at: t,
        clientId: created.client.id,
        detail: { by: 'admin', type: created.client.type },
      });
      // An earlier lookup may have cached "no such client".
      forget(created.client.id);
      return created;
    },
    async delete(id) {
      const t = now();
      // Its sessions are revoked with it, and the event commits with both.
      const deleted = await store.deleteClient(id, t, {
        type: 'client_deleted',
        at: t,
        clientId: id,
        detail: { by: 'admin', reason: 'client_deleted' },
      });
      forget(id);
      return deleted;
    },
    issuedAudiences: (issuer) => issuedAudiences(store, issuer),
    supportedScopes: () => supportedScopes(store),
  };
}
