export { createServer } from './app.js';
export { CSRF_HEADER, REFRESH_COOKIE } from './cookies.js';
export type { ServerOptions } from './options.js';
