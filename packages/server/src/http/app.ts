import { STATUS_CODES } from 'node:http';
import cookie from '@fastify/cookie';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { BatonError } from '../core/errors.js';
import { startPruneJob } from '../core/prune-job.js';
import { createTokenService, type TokenService } from '../core/token-service.js';
import { timedStore } from '../store/timed-store.js';
import { registerBodyParsers } from './body-parsers.js';
import type { RouteContext } from './context.js';
import { registerCors } from './cors.js';
import { renderError } from './error-catalogue.js';
import { sendError } from './errors.js';
import { createMetrics } from './metrics.js';
import { registerOpenApi } from './openapi.js';
import { resolveServerOptions, type ServerOptions } from './options.js';
import { createLimits, watchRedis } from './rate-limits.js';
import { registerAuthRoutes } from './routes/auth.js';
import { registerHealthRoutes } from './routes/health.js';
import { registerLegacyRefreshRoute } from './routes/legacy-refresh.js';
import { registerOAuthRoutes } from './routes/oauth.js';
import { registerWebRoutes } from './routes/web.js';
import { registerWellKnownRoutes } from './routes/well-known.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** The token service behind the routes (for the CLI and tests). */
    baton: TokenService;
    /** Every route the app registered, HEAD included (what `/openapi.json` must describe). */
    batonRoutes: readonly { readonly method: string; readonly url: string }[];
  }
}

/** Route prefixes whose requests count against the per-IP limit. */
const LIMITED_PREFIXES = ['/auth/', '/oauth/', '/api/'];

/** Turns a route pattern (`/auth/sessions/:id`, `/web/*`) into a matcher for 405 detection. */
function patternToRegExp(pattern: string): RegExp {
  const escaped = pattern
    .split('/')
    .map((seg) =>
      seg.startsWith(':') ? '[^/]+' : seg === '*' ? '.*' : seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'),
    )
    .join('/');
  return new RegExp(`^${escaped}$`);
}

/**
 * Headers a request may carry once. Node keeps the first copy of a repeated
 * `Authorization`, `Host` or `Content-Type` and joins repeated `Origin`,
 * `Sec-Fetch-Site` or `X-Baton-CSRF` values with a comma; a proxy in front
 * may read another copy. Two readings of one request are how credential
 * confusion and request smuggling start, so a repeat is refused outright
 * (RFC 9110 §5.3 allows repeats only for list-valued fields; RFC 9112 §3.2
 * asks for a 400 on a repeated Host).
 */
const SINGLE_HEADERS = new Set([
  'authorization',
  'proxy-authorization',
  'host',
  'content-type',
  'content-length',
  'transfer-encoding',
  'origin',
  'sec-fetch-site',
  'x-baton-csrf',
  // RFC 9449 §4.3: a request carries at most one proof.
  'dpop',
]);

/** The first of {@link SINGLE_HEADERS} that a request repeats, or undefined. */
function repeatedHeader(rawHeaders: readonly string[]): string | undefined {
  const seen = new Set<string>();
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!.toLowerCase();
    if (!SINGLE_HEADERS.has(name)) continue;
    if (seen.has(name)) return name;
    seen.add(name);
  }
  return undefined;
}

/** Log lines carry the path only: a query string could hold something secret. */
const serializers = {
  req(req: { method: string; url: string; ip?: string }) {
    return { method: req.method, path: req.url.split('?')[0], ip: req.ip };
  },
};

/**
 * Creates Baton's HTTP server (a Fastify instance, not yet listening).
 * Validates the options at once; call `ready()` or `listen()` next.
 */
export async function createServer(options: ServerOptions): Promise<FastifyInstance> {
  const opts = resolveServerOptions(options);
  const metrics = createMetrics(opts.now);
  const limits = createLimits(opts.limits, opts.redis, metrics.limited);
  const store = timedStore(opts.store, (operation, outcome, seconds) =>
    metrics.storeDuration.observe({ operation, outcome }, seconds),
  );
  const service = createTokenService({
    store,
    issuer: opts.issuer,
    signingAlg: opts.signingAlg,
    ...(opts.accessTtl !== undefined ? { accessTtl: opts.accessTtl } : {}),
    ...(opts.refreshIdleTtl !== undefined ? { refreshIdleTtl: opts.refreshIdleTtl } : {}),
    ...(opts.sessionMaxTtl !== undefined ? { sessionMaxTtl: opts.sessionMaxTtl } : {}),
    ...(opts.reuseGrace !== undefined ? { reuseGrace: opts.reuseGrace } : {}),
    ...(opts.now ? { now: opts.now } : {}),
    maxSessionsPerUser: opts.maxSessionsPerUser,
    ...(opts.retention ? { retention: opts.retention } : {}),
    onEvent: (e) => metrics.observe(e),
    limiter: limits,
  });
  await service.init();

  const logger: FastifyServerOptions['logger'] =
    opts.logger === false
      ? false
      : {
          level: opts.logger === true ? 'info' : opts.logger,
          serializers,
          // Belt and braces: nothing below ever logs these, and if it does, they are masked.
          redact: [
            'req.headers.authorization',
            'req.headers.cookie',
            'res.headers["set-cookie"]',
            'body',
            'req.body',
          ],
        };

  const app = Fastify({
    logger,
    // Fastify accepts a hop count at run time although its types omit it.
    trustProxy: opts.trustProxy as boolean | string | string[],
    bodyLimit: opts.bodyLimit,
    // Route params and bodies are validated strictly: no type coercion, so {"password": 123} is a 400.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false } },
    // Requests that arrive while the server drains are refused by our onRequest hook below, so
    // the 503 has Baton's error shape and headers; Fastify's own would have neither.
    return503OnClosing: false,
    // Without these a client that sends half a request and then nothing holds its socket
    // forever (Node's requestTimeout is off under Fastify): bound the whole request, the
    // headers (which also bounds a socket that sends nothing) and an idle keep-alive connection.
    requestTimeout: opts.requestTimeout,
    keepAliveTimeout: opts.keepAliveTimeout,
    http: {
      headersTimeout: opts.headersTimeout,
      // Node looks for expired requests on this timer (30 s by default): check often
      // enough that a timeout fires close to when it is due.
      connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(opts.headersTimeout / 2))),
    },
    // Answer malformed requests (oversized headers, bad framing) with our JSON error shape too.
    clientErrorHandler(err, socket) {
      const code = (err as { code?: string }).code;
      if (code === 'ECONNRESET' || socket.destroyed) return;
      const { status, headers, body } = renderError(
        code === 'HPE_HEADER_OVERFLOW'
          ? new BatonError('headers_too_large', 'The request headers are too large')
          : code === 'ERR_HTTP_REQUEST_TIMEOUT'
            ? new BatonError('request_timeout', 'The request took too long to arrive')
            : new BatonError('invalid_request', 'The request is malformed'),
      );
      const text = JSON.stringify(body);
      const all = {
        ...headers,
        'content-length': String(Buffer.byteLength(text)),
        'x-content-type-options': 'nosniff',
        connection: 'close',
      };
      const head = Object.entries(all)
        .map(([name, value]) => `${name}: ${value}\r\n`)
        .join('');
      if (socket.writable) socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n${head}\r\n${text}`);
      socket.destroy();
    },
  });
  // Past the cap Node drops new connections unanswered: cheaper than accepting what cannot be served.
  app.server.maxConnections = opts.maxConnections;
  app.decorate('baton', service);
  // Another instance or `baton keys rotate` may change the keys at any time: re-read them on a timer.
  const stopKeyPolling = service.keys.startPolling(opts.keyPollInterval, (err) =>
    app.log.warn({ err }, 'reloading the signing keys failed'),
  );
  app.addHook('onClose', async () => stopKeyPolling());
  metrics.trackActiveSessions(() => service.countActiveSessions());
  // Every instance prunes (several at once is safe); close() waits for a run in progress.
  if (opts.pruneInterval !== null) {
    const stopPruning = startPruneJob({
      interval: opts.pruneInterval,
      initialDelay: Math.min(60_000, opts.pruneInterval),
      run: (signal) => service.prune({ signal }),
      onError: (err) => app.log.warn({ err }, 'pruning failed'),
    });
    app.addHook('onClose', () => stopPruning());
  }
  if (opts.redis) {
    const stopWatching = watchRedis(opts.redis, {
      warn: (msg) => app.log.warn(msg),
      info: (msg) => app.log.info(msg),
    });
    app.addHook('onClose', async () => stopWatching());
  }
  // preClose runs once close() has begun and before the listener closes: from here on,
  // requests still arriving on open connections (pipelined, keep-alive) go elsewhere.
  let draining = false;
  app.addHook('preClose', async () => {
    draining = true;
  });
  // Requests each connection has delivered and not yet seen answered: more than one when a
  // client pipelines. Node emits 'request' as soon as it has parsed one, so this is current.
  const pending = new WeakMap<object, number>();
  app.server.on('request', (req, res) => {
    const socket = req.socket;
    pending.set(socket, (pending.get(socket) ?? 0) + 1);
    res.once('close', () => pending.set(socket, (pending.get(socket) ?? 1) - 1));
  });
  // A request admitted before the drain is answered in full, with `Connection: close`, so
  // its keep-alive connection ends with it instead of idling until the keep-alive timeout.
  // Not while a pipelined request waits behind it on the same connection: that one gets
  // its own answer (the drain's 503), which closes the connection then.
  app.addHook('onSend', (request, reply, payload, done) => {
    if (draining && (pending.get(request.raw.socket) ?? 0) <= 1) reply.header('connection', 'close');
    done(null, payload);
  });

  registerBodyParsers(app, opts.bodyLimit);
  // No parse hook: routes that read a cookie parse the header when they do (`requestCookie`).
  await app.register(cookie, { hook: false });

  const routes: { methods: string[]; re: RegExp }[] = [];
  const registered: { method: string; url: string }[] = [];
  app.decorate('batonRoutes', registered);
  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    routes.push({ methods, re: patternToRegExp(route.url) });
    for (const method of methods) registered.push({ method, url: route.url });
  });
  // Before the routes: the document is generated from them as they are registered.
  await registerOpenApi(app, {
    issuer: opts.issuer,
    limited: (url) => LIMITED_PREFIXES.some((p) => url.startsWith(p)),
  });

  // A callback hook that returns a promise only when it waits (the limiter): most requests
  // then cost no promise here. Fastify runs the next hook on done() or when the promise settles.
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-content-type-options', 'nosniff');
    reply.header('referrer-policy', 'no-referrer');
    reply.header('x-frame-options', 'DENY');
    if (draining) {
      reply.header('connection', 'close');
      return done(
        new BatonError('temporarily_unavailable', 'The server is shutting down; try again', {
          retryAfter: 1,
        }),
      );
    }
    // Before anything reads a header: the name is ours, the values are never echoed.
    const repeated = repeatedHeader(request.raw.rawHeaders);
    if (repeated !== undefined)
      return done(new BatonError('invalid_request', `The ${repeated} header must not be repeated`));
    // Key the limit on the route Fastify matched, not on the URL string: "/%61uth/refresh" and
    // the absolute form "http://host/auth/refresh" reach /auth/refresh too, and a prefix test
    // on the raw target let them through uncounted. Unmatched requests (404, 405) keep the
    // raw path: they reach no handler, so no spelling of them buys anything.
    if (!limits.countsRequests) return done();
    const route = request.routeOptions.url ?? request.url.split('?')[0]!;
    if (!LIMITED_PREFIXES.some((p) => route.startsWith(p))) return done();
    return limits.hit(request.ip);
  });
  const ctx: RouteContext = { service, options: opts, limits, metrics };
  /** The methods the app has for a path (for 405 and CORS preflights). */
  const methodsOf = (path: string) => [
    ...new Set(routes.filter((r) => r.re.test(path)).flatMap((r) => r.methods)),
  ];
  // After the hook above: a preflight is refused for repeated headers and counted like any request.
  registerCors(app, ctx, methodsOf);
  // A POST without a body (logout by access token, refresh by cookie) validates as an empty object.
  // These two never wait: callback hooks spare a promise per request each.
  app.addHook('preValidation', (request, _reply, done) => {
    if (request.body === undefined && request.method === 'POST') request.body = {};
    done();
  });
  app.addHook('onResponse', (request, reply, done) => {
    metrics.httpDuration.observe(
      {
        method: request.method,
        route: request.routeOptions.url ?? 'unmatched',
        status: String(reply.statusCode),
      },
      reply.elapsedTime / 1000,
    );
    done();
  });

  app.setErrorHandler((err, request, reply) => sendError(err, request, reply));
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0]!;
    const allowed = methodsOf(path);
    if (allowed.length > 0) {
      reply.header('allow', allowed.join(', '));
      return sendError(
        new BatonError('method_not_allowed', `Use ${allowed.join(' or ')} for this path`),
        request,
        reply,
      );
    }
    return sendError(new BatonError('not_found', 'No such route'), request, reply);
  });

  registerAuthRoutes(app, ctx);
  registerLegacyRefreshRoute(app, ctx);
  registerOAuthRoutes(app, ctx);
  registerWellKnownRoutes(app, ctx);
  registerHealthRoutes(app, ctx);
  registerWebRoutes(app);
  return app;
}
