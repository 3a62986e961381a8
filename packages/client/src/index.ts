/**
 * `@baton/client`: the browser, worker and Node SDK for Baton. Zero runtime
 * dependencies. The Node file storage lives in `@baton/client/file-storage`
 * so that browser bundles never see `node:fs`.
 */
export {
  type AuthClient,
  type AuthClientEventName,
  type AuthClientEvents,
  type AuthClientOptions,
  type AuthMode,
  type BatonUser,
  createAuthClient,
  type DpopStatus,
  type DpopUnavailableReason,
  type EventSource,
  type SessionInfo,
} from './auth-client.js';
export type { DpopKeyStore } from './dpop-keys.js';
export {
  BatonClientError,
  type BatonClientErrorCode,
  type BatonClientErrorDetails,
  isBatonClientError,
  type SignOutReason,
} from './errors.js';
export type { FetchLike } from './http.js';
export {
  type AsyncStorageLike,
  asyncStorage,
  memoryStorage,
  type TokenStorage,
  type WebStorageArea,
  webStorage,
} from './storage.js';
