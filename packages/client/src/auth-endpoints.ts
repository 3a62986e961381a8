import type { BatonUser } from './auth-client-types.js';
import type { ProofSender } from './dpop-agent.js';
import { BatonClientError } from './errors.js';
import {
  type AuthHttpContext,
  errorFromResponse,
  parseTokenGrant,
  postAuth,
  readJson,
  type TokenGrant,
} from './http.js';
import type { LiveState } from './session-state.js';

/** `POST /auth/register`: creates an account (and does not sign in). */
export async function requestRegister(
  ctx: AuthHttpContext,
  credentials: { email: string; password: string },
): Promise<BatonUser> {
  const path = '/auth/register';
  const response = await postAuth(ctx, path, { email: credentials.email, password: credentials.password });
  if (!response.ok) throw await errorFromResponse(response, path, ctx.now());
  const body = (await readJson(response)) as { user?: BatonUser } | undefined;
  if (typeof body?.user?.id !== 'string') {
    throw new BatonClientError('invalid_response', `${path} returned no user`, { status: response.status });
  }
  return body.user;
}

/** What `POST /auth/login` sends besides the credentials. */
export interface LoginExtras {
  clientId: string | undefined;
  scope: string | undefined;
  /** Token mode: the device token of an earlier login on this device. */
  deviceToken: string | undefined;
}

/**
 * `POST /auth/login`: a token grant for the credentials (RFC 6749 §5.1
 * response shape). With a `sender` holding a key, the login carries a DPoP
 * proof and the new session is bound to that key (RFC 9449 §5).
 */
export async function requestLogin(
  ctx: AuthHttpContext,
  credentials: { email: string; password: string },
  extras: LoginExtras,
  sender?: ProofSender,
): Promise<TokenGrant> {
  const path = '/auth/login';
  const send = sender === undefined ? postAuth : sender.post;
  const response = await send(ctx, path, {
    email: credentials.email,
    password: credentials.password,
    ...(extras.clientId === undefined ? {} : { client_id: extras.clientId }),
    ...(ctx.mode === 'cookie' ? { mode: 'cookie' } : {}),
    ...(extras.scope === undefined ? {} : { scope: extras.scope }),
    ...(extras.deviceToken === undefined ? {} : { device_token: extras.deviceToken }),
  });
  if (!response.ok) throw await errorFromResponse(response, path, ctx.now());
  return parseTokenGrant(await readJson(response), ctx.mode, path);
}

/**
 * `POST /auth/refresh` (RFC 6749 §6): the refresh token in the body in token
 * mode, the HttpOnly cookie alone in cookie mode. A bound session's refresh
 * carries a DPoP proof by its key in both modes (RFC 9449 §5).
 */
export async function requestRefresh(
  ctx: AuthHttpContext,
  base: LiveState | null,
  sender?: ProofSender,
): Promise<TokenGrant> {
  const path = '/auth/refresh';
  const body = ctx.mode === 'token' ? { refresh_token: base?.refreshToken } : {};
  const send = sender === undefined ? postAuth : sender.post;
  const response = await send({ ...ctx, timeoutMs: ctx.refreshTimeoutMs }, path, body);
  if (!response.ok) throw await errorFromResponse(response, path, ctx.now());
  return parseTokenGrant(await readJson(response), ctx.mode, path);
}

/**
 * `POST /auth/logout` for the session `live` (null: cookie mode may still
 * hold one). A bound session's logout carries a DPoP proof by its key
 * (`sender`), in both modes: the server ends a bound session only with one
 * (RFC 9449 §5). Resolves whether the server confirmed it, or undefined
 * when no answer came (offline); never rejects, because the local sign-out
 * must happen regardless.
 */
export async function requestLogout(
  ctx: AuthHttpContext,
  live: LiveState | null,
  sender?: ProofSender,
): Promise<boolean | undefined> {
  let revoked: boolean | undefined;
  const send = sender === undefined ? postAuth : sender.post;
  try {
    let response: Response | undefined;
    if (ctx.mode === 'token' && live?.refreshToken !== undefined) {
      response = await send(ctx, '/auth/logout', { refresh_token: live.refreshToken });
    } else if (ctx.mode === 'cookie') {
      // The cookie identifies the session; the bearer token is a fallback
      // for when the cookie is already gone (it ends the session too).
      response = await send(
        ctx,
        '/auth/logout',
        {},
        live === null ? {} : { Authorization: `Bearer ${live.accessToken}` },
      );
    }
    revoked = response?.ok === true;
    await response?.body?.cancel();
  } catch {
    // Offline: the caller signs out locally all the same.
  }
  return revoked;
}

/**
 * Ends the session of a grant we no longer want (its session was signed out
 * meanwhile), signed by `sender` like the refresh that got it (a bound
 * session ends only with its key's proof). Best effort.
 */
export async function revokeQuietly(
  ctx: AuthHttpContext,
  grant: TokenGrant,
  sender?: ProofSender,
): Promise<void> {
  const send = sender === undefined ? postAuth : sender.post;
  try {
    const body = grant.refreshToken === undefined ? {} : { refresh_token: grant.refreshToken };
    const response = await send(ctx, '/auth/logout', body, {
      Authorization: `Bearer ${grant.accessToken}`,
    });
    await response.body?.cancel();
  } catch {
    // Best effort: the session also ends at its idle timeout.
  }
}
