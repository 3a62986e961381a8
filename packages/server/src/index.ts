export { BatonError, type BatonErrorCode, createTokenService, type TokenService } from './core/index.js';
export { CSRF_HEADER, createServer, REFRESH_COOKIE, type ServerOptions } from './http/index.js';
export { createPostgresStore, createSqliteStore, openStore, type Store } from './store/index.js';
