/**
 * An in-memory stand-in for the Baton server, exposed as a `fetch`, for the
 * client's unit tests. It follows docs/http-api.md closely enough to be
 * strict where the client could go wrong: refresh tokens rotate, a spent one
 * is answered with the same successor only inside the grace window and
 * otherwise revokes the session, access tokens carry a JWT `exp` on the
 * *server's* clock, and cookie-mode calls need the CSRF header. It speaks
 * DPoP as docs/dpop.md says: proofs are verified with WebCrypto, every
 * login and refresh answer carries a nonce, a login with a proof binds the
 * session, and a bound session's spent token with a proof by its key gets
 * the same successor at any age. A bound session ends at logout only with
 * a proof by its key, as on the server.
 */
import { FakeDpop, type SeenProof } from './fake-dpop.js';

export type { SeenProof } from './fake-dpop.js';

/** A clock that tests move by hand. */
export class ManualClock {
  constructor(public ms = Date.UTC(2030, 0, 1)) {}
  now = (): number => this.ms;
  advance(ms: number): void {
    this.ms += ms;
  }
}

/** A failure the fake answers the next matching request with. */
export type Failure =
  | { kind: 'network' }
  | { kind: 'hang' }
  /** The server handles the request (a refresh rotates), but its answer never arrives. */
  | { kind: 'lost' }
  | { kind: 'status'; status: number; body?: unknown; headers?: Record<string, string> };

interface RefreshRecord {
  sessionId: string;
  usedAt: number | null;
  successor: { refreshToken: string; accessToken: string } | null;
}

interface Session {
  id: string;
  userId: string;
  revoked: boolean;
  /** Thumbprint of the DPoP key the session is bound to. */
  jkt?: string;
}

/** One request as the fake saw it; `authorization` is kept only for assertions on which token was sent. */
export interface SeenRequest {
  method: string;
  path: string;
  authorization: string | null;
  csrf: string | null;
  credentials: string | undefined;
  /** The `DPoP` header, if any. */
  dpop: string | null;
}

export interface FakeBatonOptions {
  /** Where the fake lives (default https://auth.test). */
  origin?: string;
  /** Server clock (default: its own ManualClock). */
  clock?: ManualClock;
  accessTtlSeconds?: number;
  graceMs?: number;
  /** Milliseconds each response waits, so concurrent requests really overlap. Default 1. */
  latencyMs?: number;
}

const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  new Response(body === undefined ? null : JSON.stringify(body), {
    status,
    headers: { 'Content-Type': 'application/json', 'Cache-Control': 'no-store', ...headers },
  });

const b64url = (value: unknown) =>
  btoa(JSON.stringify(value)).replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');

export class FakeBaton {
  readonly origin: string;
  readonly clock: ManualClock;
  accessTtlSeconds: number;
  readonly graceMs: number;
  latencyMs: number;
  /** Every request, in arrival order. */
  readonly requests: SeenRequest[] = [];
  /** Refresh outcomes, like the server's `baton_refresh_total`. */
  readonly refreshes = { rotated: 0, grace_replay: 0, reuse_detected: 0, invalid: 0 };
  /** The browser's cookie jar, in cookie mode. */
  cookie: string | null = null;
  /** Request bodies received on /api/echo, to check replays. */
  readonly echoed: string[] = [];
  /** The `device_token` of each `/auth/login` body, in order (undefined: none sent). */
  readonly presentedDeviceTokens: (string | undefined)[] = [];
  /** Every device token issued, in order. */
  readonly issuedDeviceTokens: string[] = [];
  /** Accounts locked by someone else's failed logins: only a trusted device of the account gets in. */
  readonly locked = new Set<string>();
  /** Refusals of a bound session's token for want of its key (nothing revoked), like the server's security events. */
  readonly keyRefusals: ('dpop_proof_missing' | 'dpop_key_mismatch')[] = [];

  private readonly users = new Map<string, { id: string; password: string }>();
  private readonly sessions = new Map<string, Session>();
  private readonly refreshTokens = new Map<string, RefreshRecord>();
  private readonly accessTokens = new Map<string, { sessionId: string; exp: number }>();
  /** Device token → the user it proved a login for. */
  private readonly devices = new Map<string, string>();
  private readonly failures: { path: string; failure: Failure }[] = [];
  private counter = 0;
  private readonly hangs: (() => void)[] = [];
  /** Proof checks and nonces. */
  private readonly dpop: FakeDpop;

  constructor(options: FakeBatonOptions = {}) {
    this.origin = options.origin ?? 'https://auth.test';
    this.clock = options.clock ?? new ManualClock();
    this.accessTtlSeconds = options.accessTtlSeconds ?? 900;
    this.graceMs = options.graceMs ?? 10_000;
    this.latencyMs = options.latencyMs ?? 1;
    this.dpop = new FakeDpop(this.origin, this.clock);
  }

  /** Every DPoP proof received, decoded, in order. */
  get proofs(): readonly SeenProof[] {
    return this.dpop.proofs;
  }

  /** When set, a proof without a nonce is always answered `use_dpop_nonce` (as if its iat were out of the window). */
  set requireNonce(value: boolean) {
    this.dpop.requireNonce = value;
  }

  /** Total refresh requests that reached the server. */
  get refreshCount(): number {
    return this.requests.filter((r) => r.path === '/auth/refresh').length;
  }

  /** The next request to `path` fails this way (queued: call twice for two failures). */
  failNext(path: string, failure: Failure): void {
    this.failures.push({ path, failure });
  }

  /** Releases every hanging request (as network errors), so tests leave nothing behind. */
  releaseHangs(): void {
    for (const release of this.hangs.splice(0)) release();
  }

  /** Creates a user directly. */
  addUser(email: string, password: string): void {
    this.users.set(email, { id: `usr_${++this.counter}`, password });
  }

  /** Forgets every trusted device (as if they expired): the next login gets a new device token. */
  forgetDevices(): void {
    this.devices.clear();
  }

  /** Revokes a session server-side, as an admin or another device would. */
  revokeSession(sessionId: string): void {
    const session = this.sessions.get(sessionId);
    if (session) session.revoked = true;
  }

  /** Ids of sessions that are still valid. */
  activeSessions(): string[] {
    return [...this.sessions.values()].filter((s) => !s.revoked).map((s) => s.id);
  }

  /** Whether `sessionId` is bound to a DPoP key. */
  isBound(sessionId: string): boolean {
    return this.sessions.get(sessionId)?.jkt !== undefined;
  }

  /** Forgets every nonce handed out (as if they expired): the next proof with one gets `use_dpop_nonce`. */
  expireNonces(): void {
    this.dpop.expireNonces();
  }

  /** Whether the server would accept this access token now. */
  accepts(accessToken: string): boolean {
    return this.checkAccess(`Bearer ${accessToken}`) === null;
  }

  fetch = async (input: Request | string | URL, init?: RequestInit): Promise<Response> => {
    const request = new Request(input, init);
    const url = new URL(request.url);
    if (url.origin !== this.origin) throw new TypeError('fetch failed (unknown host)');
    const path = url.pathname;
    const seen: SeenRequest = {
      method: request.method,
      path,
      authorization: request.headers.get('authorization'),
      csrf: request.headers.get('x-baton-csrf'),
      credentials: init?.credentials,
      dpop: request.headers.get('dpop'),
    };
    this.requests.push(seen);
    const text = request.method === 'GET' ? '' : await request.text();
    if (this.latencyMs > 0) await new Promise((r) => setTimeout(r, this.latencyMs));
    let body: Record<string, unknown> = {};
    if (text !== '') {
      try {
        body = JSON.parse(text) as Record<string, unknown>;
      } catch {
        body = {};
      }
    }
    const index = this.failures.findIndex((f) => f.path === path);
    if (index >= 0) {
      const { failure } = this.failures.splice(index, 1)[0]!;
      if (failure.kind === 'network') throw new TypeError('fetch failed');
      if (failure.kind === 'hang' || failure.kind === 'lost') {
        if (failure.kind === 'lost') await this.route(request.method, path, body, seen, text);
        // The caller's signal, as passed to fetch, else the Request's own.
        const signal = init?.signal ?? request.signal;
        return new Promise<Response>((_, reject) => {
          const release = () => reject(new TypeError('fetch failed'));
          this.hangs.push(release);
          signal.addEventListener('abort', () => reject(signal.reason), { once: true });
        });
      }
      return json(
        failure.status,
        failure.body ?? { error: 'server_error', error_description: 'injected' },
        failure.headers,
      );
    }
    return this.route(request.method, path, body, seen, text);
  };

  private async route(
    method: string,
    path: string,
    body: Record<string, unknown>,
    seen: SeenRequest,
    text: string,
  ): Promise<Response> {
    const key = `${method} ${path}`;
    if (key === 'POST /auth/login' || key === 'POST /auth/refresh' || key === 'POST /auth/logout') {
      // As the server: every answer of these routes, errors included, carries a nonce and the server's time.
      const response = await this.dpopRoute(key, body, seen);
      response.headers.set('DPoP-Nonce', this.dpop.nonce());
      response.headers.set('Date', new Date(this.clock.ms).toUTCString());
      return response;
    }
    return this.plainRoute(key, body, seen, text);
  }

  private async dpopRoute(key: string, body: Record<string, unknown>, seen: SeenRequest): Promise<Response> {
    const proof = seen.dpop === null ? null : await this.dpop.check(seen.dpop, seen.path);
    if (proof !== null && 'error' in proof)
      return json(400, { error: proof.error, error_description: proof.error });
    if (key === 'POST /auth/logout') return this.logout(body, seen, proof?.jkt);
    if (key === 'POST /auth/refresh') {
      const fromBody = typeof body['refresh_token'] === 'string' ? body['refresh_token'] : undefined;
      const cookieMode = fromBody === undefined;
      if (cookieMode && seen.csrf !== '1')
        return json(403, { error: 'access_denied', error_description: 'CSRF' });
      const presented = fromBody ?? this.cookie ?? undefined;
      return this.refresh(presented, cookieMode, proof?.jkt);
    }
    return this.login(body, seen, proof?.jkt);
  }

  private plainRoute(key: string, body: Record<string, unknown>, seen: SeenRequest, text: string): Response {
    switch (key) {
      case 'POST /auth/register': {
        const email = String(body['email']);
        if (this.users.has(email))
          return json(409, { error: 'email_taken', error_description: 'Email taken' });
        this.addUser(email, String(body['password']));
        return json(201, {
          user: { id: this.users.get(email)!.id, email, created_at: new Date(this.clock.ms).toISOString() },
        });
      }
      case 'POST /auth/logout-all': {
        const denied = this.checkAccess(seen.authorization);
        if (denied) return denied;
        const sessionId = this.accessTokens.get(seen.authorization!.slice(7))!.sessionId;
        const userId = this.sessions.get(sessionId)!.userId;
        for (const s of this.sessions.values()) if (s.userId === userId) s.revoked = true;
        this.cookie = null;
        return new Response(null, { status: 204 });
      }
      case 'GET /auth/me': {
        const denied = this.checkAccess(seen.authorization);
        if (denied) return denied;
        const sessionId = this.accessTokens.get(seen.authorization!.slice(7))!.sessionId;
        return json(200, { session_id: sessionId });
      }
      case 'POST /api/echo': {
        const denied = this.checkAccess(seen.authorization);
        if (denied) return denied;
        this.echoed.push(text);
        return json(200, { received: text });
      }
      default:
        return json(404, { error: 'not_found', error_description: 'No such route' });
    }
  }

  /** `POST /auth/logout`: by refresh token (body or cookie), else by access token (never bound). */
  private logout(body: Record<string, unknown>, seen: SeenRequest, jkt: string | undefined): Response {
    const fromBody = typeof body['refresh_token'] === 'string' ? body['refresh_token'] : undefined;
    const rt = fromBody ?? this.cookie ?? undefined;
    const record = rt === undefined ? undefined : this.refreshTokens.get(rt);
    if (record) {
      const session = this.sessions.get(record.sessionId);
      if (session && !session.revoked && session.jkt !== undefined && session.jkt !== jkt) {
        // As the server: a thief with the token but not the key cannot sign the owner out.
        this.keyRefusals.push(jkt === undefined ? 'dpop_proof_missing' : 'dpop_key_mismatch');
        return json(400, {
          error: 'invalid_dpop_proof',
          error_description: 'This session is bound to a DPoP key: send a DPoP proof by that key to end it',
        });
      }
      this.revokeSession(record.sessionId);
    } else {
      const at = seen.authorization?.replace(/^Bearer /, '');
      const access = at === undefined ? undefined : this.accessTokens.get(at);
      if (access) this.revokeSession(access.sessionId);
    }
    if (fromBody === undefined) this.cookie = null;
    return new Response(null, { status: 204 });
  }

  private login(body: Record<string, unknown>, seen: SeenRequest, jkt: string | undefined): Response {
    const email = String(body['email']);
    const user = this.users.get(email);
    const presented = typeof body['device_token'] === 'string' ? body['device_token'] : undefined;
    this.presentedDeviceTokens.push(presented);
    // As the real server: a device token counts only for the account it logged in to.
    const trusted = presented !== undefined && user !== undefined && this.devices.get(presented) === user.id;
    if (this.locked.has(email) && !trusted) {
      return json(
        429,
        { error: 'too_many_requests', error_description: 'Too many failed logins' },
        { 'Retry-After': '900' },
      );
    }
    if (!user || user.password !== body['password']) {
      return json(401, { error: 'invalid_credentials', error_description: 'Wrong email or password' });
    }
    const cookieMode = body['mode'] === 'cookie';
    if (cookieMode && seen.csrf !== '1')
      return json(403, { error: 'access_denied', error_description: 'CSRF' });
    const session: Session = { id: `ses_${++this.counter}`, userId: user.id, revoked: false };
    this.sessions.set(session.id, session);
    if (jkt !== undefined) session.jkt = jkt;
    const pair = this.issue(session.id);
    let deviceToken = trusted ? presented : undefined;
    if (deviceToken === undefined) {
      deviceToken = `bdv_${++this.counter}_${Math.random().toString(36).slice(2)}`;
      this.devices.set(deviceToken, user.id);
      this.issuedDeviceTokens.push(deviceToken);
    }
    // Cookie mode: the device token would be an HttpOnly cookie, never in the body.
    return this.tokenResponse(pair, session.id, cookieMode, cookieMode ? undefined : deviceToken);
  }

  private issue(sessionId: string): { accessToken: string; refreshToken: string } {
    const n = ++this.counter;
    const exp = Math.floor(this.clock.ms / 1000) + this.accessTtlSeconds;
    // JWT-shaped, with `exp` on the server's clock: a client that compared it
    // with its own (skewed) clock would get the skew tests wrong.
    const accessToken = `${b64url({ alg: 'ES256', typ: 'at+jwt' })}.${b64url({ exp, sid: sessionId, jti: n })}.sig${n}`;
    const refreshToken = `brt_${n}_${Math.random().toString(36).slice(2)}`;
    this.accessTokens.set(accessToken, { sessionId, exp: exp * 1000 });
    this.refreshTokens.set(refreshToken, { sessionId, usedAt: null, successor: null });
    return { accessToken, refreshToken };
  }

  private tokenResponse(
    pair: { accessToken: string; refreshToken: string },
    sessionId: string,
    cookieMode: boolean,
    deviceToken?: string,
  ) {
    if (cookieMode) this.cookie = pair.refreshToken;
    return json(200, {
      access_token: pair.accessToken,
      token_type: 'Bearer',
      expires_in: this.accessTtlSeconds,
      ...(cookieMode ? {} : { refresh_token: pair.refreshToken }),
      session_id: sessionId,
      ...(deviceToken === undefined ? {} : { device_token: deviceToken }),
    });
  }

  private refresh(presented: string | undefined, cookieMode: boolean, jkt: string | undefined): Response {
    const invalid = () =>
      json(401, { error: 'invalid_grant', error_description: 'The refresh token is invalid' });
    const record = presented === undefined ? undefined : this.refreshTokens.get(presented);
    const session = record ? this.sessions.get(record.sessionId) : undefined;
    if (!record || !session || session.revoked) {
      this.refreshes.invalid++;
      return invalid();
    }
    if (session.jkt !== undefined && session.jkt !== jkt) {
      // Not valid for this sender: refused, and nothing revoked (a thief cannot sign the owner out).
      this.keyRefusals.push(jkt === undefined ? 'dpop_proof_missing' : 'dpop_key_mismatch');
      this.refreshes.invalid++;
      return invalid();
    }
    if (record.usedAt === null) {
      record.usedAt = this.clock.ms;
      record.successor = this.issue(session.id);
      this.refreshes.rotated++;
      return this.tokenResponse(record.successor, session.id, cookieMode);
    }
    const successorUnused =
      record.successor && this.refreshTokens.get(record.successor.refreshToken)?.usedAt === null;
    // A bound session's proof shows the key holder asking again (a lost answer): no time limit.
    const inGrace = session.jkt !== undefined || this.clock.ms - record.usedAt <= this.graceMs;
    if (inGrace && successorUnused && record.successor) {
      this.refreshes.grace_replay++;
      return this.tokenResponse(record.successor, session.id, cookieMode);
    }
    this.refreshes.reuse_detected++;
    session.revoked = true;
    return invalid();
  }

  private checkAccess(authorization: string | null): Response | null {
    if (authorization === null || !authorization.startsWith('Bearer ')) {
      return json(
        401,
        { error: 'invalid_request', error_description: 'No token' },
        { 'WWW-Authenticate': 'Bearer' },
      );
    }
    const access = this.accessTokens.get(authorization.slice(7));
    const session = access ? this.sessions.get(access.sessionId) : undefined;
    if (!access || !session || session.revoked || this.clock.ms >= access.exp) {
      return json(
        401,
        { error: 'invalid_token', error_description: 'The access token is invalid or expired' },
        { 'WWW-Authenticate': 'Bearer error="invalid_token", error_description="expired"' },
      );
    }
    return null;
  }
}
