import type { SecurityEventQuery, SecurityEventRecord, Store, StoreInspection } from '../store/store.js';
import { type AccessTokens, createAccessTokens } from './access-tokens.js';
import { type Accounts, createAccounts, DEFAULT_CLIENT_ID } from './accounts.js';
import { type ClientRegistry, createClientRegistry } from './client-registry.js';
import { type Clock, systemClock } from './clock.js';
import type { CoreContext, LifetimeConfig, TokenServiceEvent } from './context.js';
import { createDevices, type Devices } from './devices.js';
import { createDpop, type Dpop } from './dpop.js';
import { BatonError, isBatonError } from './errors.js';
import { createSigningKeyAdmin, type SigningKeyAdmin } from './key-admin.js';
import { type LoginLimiter, NO_LOGIN_LIMITS } from './login-limiter.js';
import { type PruneReport, pruneStore, type RetentionSettings, resolveRetention } from './pruning.js';
import { createSessions, type Sessions } from './sessions.js';
import { KeyRing, type SigningAlgorithm } from './signing-keys.js';

export type { AccessTokens, Authenticated, IssuedTokens } from './access-tokens.js';
export {
  type Accounts,
  type AdminUser,
  DEFAULT_CLIENT_ID,
  type LoginInput,
  type LoginResult,
  normalizeEmail,
  type PublicUser,
} from './accounts.js';
export type { RefreshOutcome, RequestContext, TokenServiceEvent } from './context.js';
export type { TrustedDevice } from './devices.js';
export { DEFAULT_RETENTION, type PruneReport, type RetentionSettings } from './pruning.js';

/** Options of {@link createTokenService}. Durations in milliseconds. */
export interface TokenServiceOptions {
  store: Store;
  /** `iss` of every access token; also the default `aud`. */
  issuer: string;
  /** Access-token lifetime (default 15 min). */
  accessTtl?: number;
  /** A session dies after this long unused (default 14 d). */
  refreshIdleTtl?: number;
  /** A session dies this long after login, however active (default 30 d). */
  sessionMaxTtl?: number;
  /** How long a rotated refresh token may be replayed for the same successor (default 10 s). */
  reuseGrace?: number;
  /** Algorithm of new signing keys (default ES256). */
  signingAlg?: SigningAlgorithm;
  /** Clock leeway when verifying access tokens, in seconds (default 5). */
  leeway?: number;
  now?: Clock;
  /** Observes outcomes (metrics, logs). Must not throw. */
  onEvent?: (event: TokenServiceEvent) => void;
  /** Where login failures are counted (default: nowhere, nothing is refused). */
  limiter?: LoginLimiter;
  /**
   * Most live sessions one user may have (default 100); a login beyond it
   * revokes the least recently used ones (`session_limit`).
   */
  maxSessionsPerUser?: number;
  /** How long ended sessions, spent refresh tokens and security events are kept (see {@link RetentionSettings}). */
  retention?: Partial<RetentionSettings>;
}

/**
 * The token lifecycle, the one door to it for routes and the CLI: accounts
 * and the login policy ({@link Accounts}), sessions with rotation, reuse
 * detection, revocation and introspection ({@link Sessions}), access tokens
 * (`authenticate`, `jwks`), device trust, clients and signing keys. Knows
 * nothing of HTTP or SQL; every change of state goes through here, so every
 * observer (`onEvent`) sees it.
 */
export interface TokenService extends Accounts, Sessions, Omit<AccessTokens, 'issue'> {
  /** `iss` of every access token. */
  readonly issuer: string;
  /** The lifetimes in force, and the issuer. */
  readonly config: Readonly<LifetimeConfig & { issuer: string }>;
  /** DPoP proofs and server nonces (RFC 9449): the routes' `DPoP-Nonce` header and the metadata. */
  readonly dpop: Pick<Dpop, 'algs' | 'nonce'>;
  /** The signing keys in memory (polling, reload). */
  readonly keys: KeyRing;
  /** The service's clock. */
  readonly now: Clock;
  /** The OAuth clients: authentication, lookups, administration. */
  readonly clients: ClientRegistry;
  /** Signing-key administration (`baton keys`). */
  readonly signingKeys: SigningKeyAdmin;
  /** Creates the first signing key, the default public client and the DPoP nonce secret when missing. */
  init(): Promise<void>;
  /** See {@link Devices.findTrustedDevice}. */
  findTrustedDevice: Devices['findTrustedDevice'];
  /** Readiness: pings the store; `temporarily_unavailable` when it does not answer. Returns its dialect. */
  checkStore(): Promise<{ dialect: string }>;
  /** `baton doctor`: the database's migrations (pending ones are counted, not applied) and its clock. */
  inspectStore(): Promise<StoreInspection>;
  /** The retention in force (ms). */
  readonly retention: Readonly<RetentionSettings>;
  /**
   * Deletes what is past its retention (see {@link RetentionSettings});
   * with `dryRun`, only counts it. Safe to run on several instances at once.
   */
  prune(opts?: { dryRun?: boolean; signal?: AbortSignal }): Promise<PruneReport>;
  /** Security events matching every filter, newest first (`baton events`). */
  listSecurityEvents(query?: SecurityEventQuery): Promise<SecurityEventRecord[]>;
  /** Sessions alive now (a metric). */
  countActiveSessions(): Promise<number>;
}

const DEFAULTS: LifetimeConfig = {
  accessTtl: 15 * 60_000,
  refreshIdleTtl: 14 * 86_400_000,
  sessionMaxTtl: 30 * 86_400_000,
  reuseGrace: 10_000,
};

/** The DPoP checks, with every refused proof reported (`proof_refused`, by error code) for the metrics. */
function countRefusals(dpop: Dpop, emit: (event: TokenServiceEvent) => void): Dpop {
  return {
    ...dpop,
    async verify(input) {
      try {
        return await dpop.verify(input);
      } catch (err) {
        if (isBatonError(err, 'invalid_dpop_proof') || isBatonError(err, 'use_dpop_nonce'))
          emit({ kind: 'proof_refused', reason: err.code });
        throw err;
      }
    },
  };
}

/**
 * Creates the token service. Call `init()` once before serving (creates the
 * first signing key and the default client when missing); admin commands
 * may use it without.
 */
export function createTokenService(options: TokenServiceOptions): TokenService {
  const store = options.store;
  const now = options.now ?? systemClock;
  const cfg: LifetimeConfig = {
    accessTtl: options.accessTtl ?? DEFAULTS.accessTtl,
    refreshIdleTtl: options.refreshIdleTtl ?? DEFAULTS.refreshIdleTtl,
    sessionMaxTtl: options.sessionMaxTtl ?? DEFAULTS.sessionMaxTtl,
    reuseGrace: options.reuseGrace ?? DEFAULTS.reuseGrace,
  };
  for (const [name, value] of Object.entries(cfg)) {
    if (!Number.isFinite(value) || value <= 0)
      throw new TypeError(`${name} must be a positive number of milliseconds`);
  }
  if (typeof options.issuer !== 'string' || options.issuer === '') throw new TypeError('issuer is required');
  const issuer = options.issuer;
  const maxSessionsPerUser = options.maxSessionsPerUser ?? 100;
  if (!Number.isSafeInteger(maxSessionsPerUser) || maxSessionsPerUser < 1)
    throw new TypeError('maxSessionsPerUser must be a positive integer');
  const retention = Object.freeze(resolveRetention(options.retention, cfg.reuseGrace));
  const alg = options.signingAlg ?? 'ES256';
  const keys = new KeyRing({ store, now, alg, maxTokenLifetime: cfg.accessTtl });
  const clients = createClientRegistry(store, now);
  const core: CoreContext = {
    store,
    now,
    issuer,
    cfg,
    emit: options.onEvent ?? (() => {}),
    findClient: clients.find,
  };
  const tokens = createAccessTokens(core, keys, options.leeway);
  const devices = createDevices(core);
  const dpop = countRefusals(createDpop({ store, now, issuer }), core.emit);
  const accounts = createAccounts(core, {
    tokens,
    devices,
    limiter: options.limiter ?? NO_LOGIN_LIMITS,
    maxSessionsPerUser,
    dpop,
  });
  const sessions = createSessions(core, tokens, dpop);

  return {
    issuer,
    config: Object.freeze({ ...cfg, issuer }),
    keys,
    now,
    clients,
    dpop: { algs: dpop.algs, nonce: dpop.nonce },
    signingKeys: createSigningKeyAdmin(store, { alg, accessTtl: cfg.accessTtl }),

    async init() {
      await keys.init();
      await dpop.init();
      await store.createClient(
        {
          id: DEFAULT_CLIENT_ID,
          name: 'Default public client',
          type: 'public',
          secretHash: null,
          allowedOrigins: [],
          allowedScopes: [],
          audience: null,
          accessTtl: null,
          refreshIdleTtl: null,
          sessionMaxTtl: null,
          createdAt: now(),
        },
        { ifMissing: true },
      );
    },

    inspectStore: () => store.inspect(),

    async checkStore() {
      try {
        await store.ping();
      } catch (err) {
        throw new BatonError('temporarily_unavailable', 'The store is not reachable', { cause: err });
      }
      return { dialect: store.dialect };
    },

    retention,
    async prune(opts = {}) {
      const report = await pruneStore(store, retention, now, opts);
      if (!report.dryRun) core.emit({ kind: 'pruned', deleted: report.deleted });
      return report;
    },
    listSecurityEvents: (query) => store.listSecurityEvents(query),
    countActiveSessions: () => store.countActiveSessions(now()),

    findTrustedDevice: devices.findTrustedDevice,
    authenticate: tokens.authenticate,
    jwks: tokens.jwks,
    ...accounts,
    ...sessions,
  };
}
