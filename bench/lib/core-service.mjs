// The token service on a SQLite store without HTTP, from a build of the server: what
// bench/core-rotation.mjs and bench/wal-pages.mjs drive. BATON_DIST=DIR picks another build
// (a copy of packages/server/dist), to compare two builds in alternation on one machine.
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const dist = process.env.BATON_DIST
  ? pathToFileURL(`${resolve(process.env.BATON_DIST)}/`)
  : new URL('../../packages/server/dist/', import.meta.url);
const { createTokenService } = await import(new URL('core/token-service.js', dist).href);
const { createSqliteStore } = await import(new URL('store/sqlite/sqlite-store.js', dist).href);

/**
 * Opens the store on `file`, migrates it, and logs one user in `concurrency` times: a
 * session each. Returns the store (close it), the service, and each session's refresh token.
 */
export async function startCoreService(file, concurrency) {
  const store = createSqliteStore({ filename: file });
  await store.migrate();
  const service = createTokenService({
    store,
    issuer: 'http://127.0.0.1',
    accessTtl: 15 * 60_000,
    refreshIdleTtl: 14 * 86_400_000,
    sessionMaxTtl: 30 * 86_400_000,
    reuseGrace: 10_000,
  });
  await service.init();
  const credentials = { email: 'bench@example.com', password: 'correct horse battery' };
  await service.register(credentials);
  const tokens = [];
  for (let i = 0; i < concurrency; i++) tokens.push((await service.login(credentials)).refreshToken);
  return { store, service, tokens };
}
