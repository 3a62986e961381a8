// The Baton demo page: a plain ES module on top of the client SDK, no build step.
// Everything the user sees comes from the client's public API and events, from the
// token responses the client receives (observed through its `fetch` option), and,
// under `npm run demo`, from the notes API behind this origin. The page holds no
// token logic of its own.
import { BatonClientError, createAuthClient } from '/web/client/index.js';

/**
 * What `npm run demo` runs behind this origin: the notes API and the demo lifetimes.
 * Null under `npm start`, where there is no notes API (Baton answers 404).
 * @returns {Promise<{ lifetimes: { accessTtl: number, reuseGrace: number } } | null>}
 */
async function demoInfo() {
  try {
    const response = await fetch('/demo-api/info', { credentials: 'omit' });
    if (!response.ok) return null;
    const body = await response.json();
    return body && typeof body.lifetimes === 'object' ? body : null;
  } catch {
    return null;
  }
}
const info = await demoInfo();

// Cookie mode unless the visitor chose otherwise; `npm run demo` starts in token mode, the one
// in which the page can show the refresh tokens (it is the mode native apps use).
const MODE_KEY = 'baton-demo-mode';
const chosen = localStorage.getItem(MODE_KEY);
/** @type {'cookie' | 'token'} */
const mode = chosen === 'cookie' || chosen === 'token' ? chosen : info ? 'token' : 'cookie';
/** The server's reuse grace window: the demo's, or Baton's default (BATON_REUSE_GRACE). */
const graceMs = (info?.lifetimes.reuseGrace ?? 10) * 1000;
/** Names this tab in the refresh-token chain the tabs share. Not a secret. */
const tabId = crypto.randomUUID();

const client = createAuthClient({
  baseUrl: location.origin,
  mode,
  fetch: observedFetch,
  // Token mode here exists to show reuse detection; a key-bound (DPoP) session would refuse a
  // thief's replay without revoking anything, which cookie mode shows.
  ...(mode === 'token' ? { dpop: false } : {}),
});

/** @param {string} id */
const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));
const els = {
  status: $('status'),
  signedOut: $('signed-out'),
  signedIn: $('signed-in'),
  form: /** @type {HTMLFormElement} */ ($('auth-form')),
  email: /** @type {HTMLInputElement} */ ($('email')),
  password: /** @type {HTMLInputElement} */ ($('password')),
  register: $('register'),
  formMessage: $('form-message'),
  countdown: $('countdown'),
  lifetime: /** @type {HTMLProgressElement} */ ($('lifetime')),
  callMe: $('call-me'),
  meResult: $('me-result'),
  logout: $('logout'),
  logoutAll: $('logout-all'),
  sessions: /** @type {HTMLTableSectionElement} */ ($('sessions').querySelector('tbody')),
  reloadSessions: $('reload-sessions'),
  log: $('log'),
  clearLog: $('clear-log'),
  banner: $('demo-banner'),
  callApi: $('call-api'),
  apiResult: $('api-result'),
  claimsTimes: $('claims-times'),
  claimsHeader: $('claims-header'),
  claimsPayload: $('claims-payload'),
  chain: /** @type {HTMLTableSectionElement} */ ($('chain').querySelector('tbody')),
  chainNote: $('chain-note'),
  replay: /** @type {HTMLButtonElement} */ ($('replay')),
  replayHint: $('replay-hint'),
  replayResult: $('replay-result'),
  signedOutWhy: $('signed-out-why'),
  modeCurrent: $('mode-current'),
  footerMode: $('footer-mode'),
  sessionsCard: $('sessions-card'),
  chainCard: $('chain-card'),
  replayCard: $('replay-card'),
};

// ---------------------------------------------------------------------------
// Event log
// ---------------------------------------------------------------------------

/**
 * @param {string} text
 * @param {string} [kind] a CSS class: remote, failed, signed-out
 */
function log(text, kind) {
  const item = document.createElement('li');
  if (kind) item.className = kind;
  const time = document.createElement('time');
  time.textContent = new Date().toLocaleTimeString();
  // "step: what happened" → the step in bold, so the timeline reads as a list of steps.
  const colon = text.indexOf(': ');
  if (colon > 0 && colon < 24) {
    const step = document.createElement('strong');
    step.textContent = text.slice(0, colon + 1);
    item.append(time, step, text.slice(colon + 1));
  } else {
    item.append(time, text);
  }
  els.log.prepend(item);
  while (els.log.children.length > 100) els.log.lastElementChild?.remove();
}

const from = (/** @type {'local'|'remote'} */ source) => (source === 'remote' ? ' (another tab)' : '');

client.on('tokenRefreshed', ({ expiresAt, source }) => {
  const valid = Math.round((expiresAt - Date.now()) / 1000);
  if (source === 'remote') {
    log(
      `tokenRefreshed: new access token, valid ${valid} s (another tab): that tab refreshed, and this one got the new token over BroadcastChannel without asking Baton`,
      source,
    );
    // Fresh from the other tab, so this reads the cached token and never starts a refresh.
    void client.getAccessToken().then(showClaims, () => {});
  } else {
    log(`tokenRefreshed: new access token, valid ${valid} s`, source);
  }
});
client.on('refreshFailed', ({ error, retryable, retryInMs }) => {
  const next = retryable ? `, session kept, retry in ${(retryInMs / 1000).toFixed(1)} s` : '';
  log(`refreshFailed: ${error.code}${next}`, 'failed');
});
client.on('signedOut', ({ reason, source }) => {
  log(`signedOut: ${reason}${from(source)}`, 'signed-out');
  // The chain on screen ended with the session (a replay has already said how).
  chain.revokedAt ??= Date.now();
});
client.on('sessionChanged', ({ signedIn, source }) => {
  log(`sessionChanged: ${signedIn ? 'signed in' : 'signed out'}${from(source)}`, source);
  render();
  if (signedIn) {
    els.signedOutWhy.hidden = true;
    if (source === 'remote') {
      void client.getAccessToken().then(showClaims, () => {});
      channel?.postMessage({ type: 'hello' });
    }
    void loadSessions().catch(() => {});
  } else {
    showClaims(null);
  }
});

client.on('dpopUnavailable', ({ reason }) => {
  log(`dpopUnavailable: ${reason}, the session is not bound to a key`, 'failed');
});

els.clearLog.addEventListener('click', () => els.log.replaceChildren());

// ---------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------

function render() {
  const session = client.getSession();
  els.signedIn.hidden = session === null;
  els.signedOut.hidden = session !== null;
  els.sessionsCard.hidden = session === null;
  els.status.dataset.state = session ? 'signed-in' : 'signed-out';
  // Whether the refresh cookie only works with this browser's key (DPoP).
  els.status.dataset.dpop = client.dpop.bound ? 'bound' : 'unbound';
  els.status.textContent = session ? `Signed in · session ${session.sessionId ?? ''}` : 'Signed out';
  document.title = session ? 'Baton demo · signed in' : 'Baton demo';
  if (session === null) {
    els.meResult.textContent = '';
    els.apiResult.hidden = true;
    els.sessions.replaceChildren();
  }
  tick();
}

/** The live countdown: a UI timer only, reading what the client knows. */
function tick() {
  const session = client.getSession();
  if (session === null) return;
  const left = session.expiresAt - Date.now();
  const lifetime = session.expiresAt - session.obtainedAt;
  els.countdown.textContent =
    left > 0 ? `expires in ${(left / 1000).toFixed(1)} s` : 'expired: the next request refreshes it first';
  els.countdown.dataset.expired = String(left <= 0);
  els.lifetime.value = Math.max(0, Math.min(1, left / lifetime));
  renderExpiry();
  renderChain();
}
setInterval(tick, 250);

/**
 * Runs an action with its button disabled, showing a failure where the user looks.
 * @param {HTMLElement} button
 * @param {() => Promise<void>} action
 * @param {HTMLElement} messageEl
 */
async function busy(button, action, messageEl) {
  button.setAttribute('disabled', '');
  try {
    await action();
  } catch (error) {
    messageEl.textContent = describe(error);
  } finally {
    button.removeAttribute('disabled');
  }
}

/** @param {unknown} error */
function describe(error) {
  if (error instanceof BatonClientError) {
    switch (error.code) {
      case 'invalid_credentials':
        return 'Wrong email or password.';
      case 'email_taken':
        return 'That email is already registered; log in instead.';
      case 'invalid_request':
        return 'Check the email, and use a password of at least 8 characters.';
      case 'too_many_requests':
        return 'Too many attempts; wait a moment.';
      case 'signed_out':
        return 'You are signed out.';
      default:
        return error.retryable
          ? `${error.code}: try again in a moment (you are still signed in).`
          : error.message;
    }
  }
  return String(error);
}

// ---------------------------------------------------------------------------
// Signing in and out
// ---------------------------------------------------------------------------

const credentials = () => ({ email: els.email.value.trim(), password: els.password.value });

els.form.addEventListener('submit', (event) => {
  event.preventDefault();
  els.formMessage.textContent = '';
  void busy(
    $('login'),
    async () => {
      await client.login(credentials());
      els.password.value = '';
    },
    els.formMessage,
  );
});

els.register.addEventListener('click', () => {
  if (!els.form.reportValidity()) return;
  els.formMessage.textContent = '';
  void busy(
    els.register,
    async () => {
      await client.register(credentials());
      await client.login(credentials());
      els.password.value = '';
    },
    els.formMessage,
  );
});

els.logout.addEventListener('click', () => {
  void busy(
    els.logout,
    async () => {
      const { revoked } = await client.logout();
      if (!revoked)
        log('logout: signed out here; the server could not be reached to end the session', 'failed');
    },
    els.meResult,
  );
});

els.logoutAll.addEventListener('click', () => {
  void busy(els.logoutAll, () => client.logoutAll(), els.meResult);
});

els.callApi.addEventListener('click', () => {
  void busy(
    els.callApi,
    async () => {
      expiryCheck();
      const response = await client.fetch('/demo-api/notes');
      const body = await response.json().catch(() => null);
      els.apiResult.hidden = false;
      els.apiResult.dataset.status = String(response.status);
      if (response.ok) {
        els.apiResult.textContent = `${response.status} · verified offline by the notes API: it checked the signature against Baton’s public keys (fetched once, cached) and did not ask Baton · sub ${body?.claims?.sub ?? '?'}`;
        log(
          'request: GET /demo-api/notes with the access token → 200, verified offline by the notes API (@baton/verify)',
          'step',
        );
      } else {
        els.apiResult.textContent = `${response.status} ${body?.error ?? ''}: ${body?.error_description ?? ''}`;
        log(`request: GET /demo-api/notes → ${response.status} ${body?.error ?? ''}`, 'failed');
      }
    },
    els.apiResult,
  );
});

// ---------------------------------------------------------------------------
// Calling the API
// ---------------------------------------------------------------------------

els.callMe.addEventListener('click', () => {
  void busy(
    els.callMe,
    async () => {
      els.meResult.textContent = '…';
      expiryCheck();
      const response = await client.fetch('/auth/me');
      const body = await response.json().catch(() => null);
      els.meResult.dataset.status = String(response.status);
      els.meResult.textContent = `${response.status} ${JSON.stringify(body, null, 2)}`;
    },
    els.meResult,
  );
});

/**
 * @typedef {{ id: string, created_at: string, last_used_at: string, user_agent: string | null,
 *   ip: string | null, current: boolean }} SessionRow
 */

async function loadSessions() {
  const response = await client.fetch('/auth/sessions');
  if (!response.ok) return;
  const { sessions } = /** @type {{ sessions: SessionRow[] }} */ (await response.json());
  els.sessions.replaceChildren(...sessions.map(sessionRow));
}

/** @param {SessionRow} s */
function sessionRow(s) {
  const row = document.createElement('tr');
  if (s.current) row.className = 'current';
  const cell = (/** @type {string} */ text, /** @type {string} */ className = '') => {
    const td = document.createElement('td');
    td.textContent = text; // textContent: a user agent string is attacker-controlled
    if (className) td.className = className;
    return td;
  };
  const time = (/** @type {string} */ iso) => new Date(iso).toLocaleString();
  const revoke = document.createElement('button');
  revoke.type = 'button';
  revoke.className = 'danger small';
  revoke.textContent = 'Revoke';
  revoke.addEventListener('click', () => {
    void busy(
      revoke,
      async () => {
        // Revoking this browser's own session is signing out: let the client do it, so every tab follows.
        if (s.current) {
          await client.logout();
          return;
        }
        await client.fetch(`/auth/sessions/${encodeURIComponent(s.id)}`, { method: 'DELETE' });
        await loadSessions();
      },
      els.meResult,
    );
  });
  const action = document.createElement('td');
  action.append(revoke);
  row.append(
    cell(s.id),
    cell(time(s.created_at)),
    cell(time(s.last_used_at)),
    cell([s.user_agent ?? '', s.ip ?? ''].filter(Boolean).join(' · '), 'device'),
    action,
  );
  return row;
}

els.reloadSessions.addEventListener('click', () => {
  void busy(els.reloadSessions, loadSessions, els.meResult);
});

// ---------------------------------------------------------------------------
// Start-up
// ---------------------------------------------------------------------------

// ---------------------------------------------------------------------------
// The token flow: grants, the refresh-token chain, the claims, the replay
// ---------------------------------------------------------------------------

const seconds = (/** @type {number} */ ms) => (ms / 1000).toFixed(1);

/**
 * The client's fetch, watched: the timeline learns when the client refreshes,
 * and the chain learns each grant (the documented token response) as it arrives.
 * @param {Request | string | URL} input
 * @param {RequestInit} [init]
 */
async function observedFetch(input, init) {
  const url = new URL(input instanceof Request ? input.url : String(input), location.href);
  const path = url.origin === location.origin ? url.pathname : '';
  if (path === '/auth/refresh') {
    log(
      mode === 'token'
        ? 'refresh: POST /auth/refresh with the current refresh token in the body'
        : 'refresh: POST /auth/refresh; the browser adds the HttpOnly refresh cookie, unseen by this page',
      'step',
    );
  }
  const response = await fetch(input, init);
  if (path === '/auth/login' || path === '/auth/refresh') void observeGrant(path, response.clone());
  return response;
}

/**
 * @typedef {{ n: number, fp: string | null, token?: string, issuedAt: number, spentAt: number | null,
 *   tab: string, how: 'login' | 'refresh' }} ChainRow
 * @typedef {{ mode: string, sessionId: string | undefined, rows: ChainRow[], revokedAt: number | null,
 *   replayed?: boolean }} Chain
 */

/** @type {Chain} */
let chain = { mode, sessionId: undefined, rows: [], revokedAt: null };
const channel = typeof BroadcastChannel === 'function' ? new BroadcastChannel('baton-demo-chain') : null;

/** A short fingerprint to tell tokens apart on screen: the first 6 hex characters of SHA-256. */
async function fingerprint(/** @type {string} */ token) {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(token)));
  return [...digest.slice(0, 3)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/** @param {string} path @param {Response} response */
async function observeGrant(path, response) {
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    // The start-up probe of a page that has no session yet: nothing went wrong.
    if (path === '/auth/refresh' && response.status === 401 && client.getSession() === null)
      log('start-up: no session to restore; log in to start one', 'step');
    else if (path === '/auth/refresh')
      log(
        `refresh refused: ${response.status} ${body?.error ?? ''}: ${body?.error_description ?? ''}`,
        'failed',
      );
    return;
  }
  if (typeof body?.access_token !== 'string') return;
  showClaims(body.access_token);
  const token = typeof body.refresh_token === 'string' ? body.refresh_token : undefined;
  const fp = token ? await fingerprint(token) : null;
  const now = Date.now();
  const shown = fp ?? 'in the HttpOnly cookie';
  if (path === '/auth/login') {
    chain = { mode, sessionId: body.session_id, revokedAt: null, rows: [] };
    els.replayResult.hidden = true;
    chain.rows.push({ n: 1, fp, token, issuedAt: now, spentAt: null, tab: tabId, how: 'login' });
    log(
      `login: Baton started session ${body.session_id}: an access token valid ${body.expires_in} s and refresh token #1 (${shown})`,
      'step',
    );
  } else {
    if (chain.sessionId !== body.session_id)
      chain = { mode, sessionId: body.session_id, revokedAt: null, rows: [] };
    if (fp && chain.rows.some((r) => r.fp === fp)) {
      log(
        `refresh: Baton answered with token ${fp} again (the same successor, inside the grace window)`,
        'step',
      );
      return;
    }
    const previous = chain.rows.find((r) => r.spentAt === null);
    if (previous) previous.spentAt = now;
    const n = (chain.rows.at(-1)?.n ?? 0) + 1;
    chain.rows.push({ n, fp, token, issuedAt: now, spentAt: null, tab: tabId, how: 'refresh' });
    const after = keyBound()
      ? `The session is bound to this browser's key (DPoP), so #${previous?.n} is useless to anyone without it`
      : `For ${graceMs / 1000} s a replay of #${previous?.n} still gets #${n} (a lost answer, a racing tab); after that it means theft`;
    log(
      previous
        ? `rotation: refresh token #${previous.n} (${previous.fp ?? 'cookie'}) is spent, #${n} (${shown}) is current. ${after}`
        : `rotation: refresh token #${n} (${shown}) is current`,
      'step',
    );
  }
  publishChain();
  renderChain();
}

/**
 * Whether the session is bound to a DPoP key (cookie mode here): then a spent token is
 * honoured again only with this browser's proof, with no time limit, so there is no
 * grace window to count down.
 */
const keyBound = () => mode === 'cookie' && client.dpop.bound;

/** Tells the other tabs (same origin, same browser) what this one saw. */
function publishChain() {
  channel?.postMessage({ type: 'chain', chain });
}

if (channel) {
  channel.onmessage = ({ data }) => {
    if (data?.type === 'hello' && chain.rows.length > 0) publishChain();
    if (data?.type === 'chain') adoptChain(data.chain);
    if (data?.type === 'replayed') {
      chain.revokedAt = data.at;
      chain.replayed = true;
      els.signedOutWhy.hidden = false;
      els.signedOutWhy.textContent = `Signed out: in another tab, spent refresh token #${data.n} (${data.fp}) was replayed as a thief would. Baton cannot tell a thief from the owner, so it revoked the whole session, and every tab signed out with it.`;
      renderChain();
    }
  };
}

/** Takes another tab's view of the chain when it is about this tab's session and knows more. */
function adoptChain(/** @type {Chain} */ incoming) {
  if (incoming?.mode !== mode || !Array.isArray(incoming.rows)) return;
  const current = client.getSession()?.sessionId;
  if (incoming.sessionId !== chain.sessionId) {
    if (incoming.sessionId !== current) return;
    chain = incoming;
  } else {
    for (const row of incoming.rows) {
      const mine = chain.rows.find((r) => r.n === row.n);
      if (!mine) chain.rows.push(row);
      else if (mine.spentAt === null && row.spentAt !== null) mine.spentAt = row.spentAt;
    }
    chain.rows.sort((a, b) => a.n - b.n);
    chain.revokedAt ??= incoming.revokedAt;
    chain.replayed ||= incoming.replayed;
  }
  renderChain();
}

/** The spent token a thief would replay: the newest one whose grace window is over (or whose successor was used too). */
function replayCandidate() {
  const rows = chain.rows;
  for (let i = rows.length - 1; i >= 0; i--) {
    const row = rows[i];
    if (row.spentAt === null || !row.token) continue;
    const successorSpent = rows[i + 1]?.spentAt != null;
    if (successorSpent || Date.now() - row.spentAt > graceMs) return row;
  }
  return null;
}

function renderChain() {
  const rows = chain.rows;
  // Shown while there is a chain, and after a revocation too, so the revoked rows stay in view.
  els.chainCard.hidden = rows.length === 0;
  els.replayCard.hidden = rows.length === 0;
  const newestSpent = rows.findLast((r) => r.spentAt !== null);
  els.chain.replaceChildren(
    ...rows.map((r) => {
      const tr = document.createElement('tr');
      let state;
      let text;
      if (chain.revokedAt !== null) {
        state = 'revoked';
        text = chain.replayed ? 'revoked with the whole session' : 'ended with the session';
      } else if (r.spentAt === null) {
        state = 'current';
        text = 'current: the next refresh presents it';
      } else {
        const left = graceMs - (Date.now() - r.spentAt);
        const successorCurrent = r === newestSpent;
        state = 'spent';
        text = keyBound()
          ? 'spent · without this browser’s key it is refused'
          : successorCurrent && left > 0
            ? `spent · grace ${seconds(left)} s left: a replay still gets #${r.n + 1}`
            : 'spent · a replay now means theft';
        if (successorCurrent && left > 0 && !keyBound()) tr.dataset.grace = 'true';
      }
      tr.dataset.state = state;
      const cells = [
        `#${r.n}`,
        r.fp ?? 'hidden (HttpOnly cookie)',
        new Date(r.issuedAt).toLocaleTimeString(),
        `${r.tab === tabId ? 'this tab' : 'another tab'} (${r.how})`,
        text,
      ];
      tr.append(
        ...cells.map((c, i) => {
          const td = document.createElement('td');
          if (i === 1 && r.fp) {
            const code = document.createElement('code');
            code.textContent = c;
            td.append(code);
          } else td.textContent = c;
          if (i === 4) td.className = 'state';
          return td;
        }),
      );
      return tr;
    }),
  );
  els.chainNote.textContent =
    mode === 'token'
      ? 'Every refresh spends the token it presents and gets a new one (rotation): only the newest may be used. Shown is a fingerprint (the first 6 hex digits of its SHA-256), never the token itself.'
      : 'In cookie mode the refresh tokens travel only in an HttpOnly cookie: this page sees that a rotation happened, never the token. Switch to token mode below to see fingerprints and try the replay.';
  renderReplay();
}

function renderReplay() {
  const candidate = replayCandidate();
  let hint;
  if (mode === 'cookie')
    hint =
      'In cookie mode no script on this page ever holds a refresh token, so there is nothing to steal here. Switch to token mode (below) to try it.';
  else if (chain.revokedAt !== null) hint = 'This session has ended. Log in again to start a new one.';
  else if (candidate)
    hint = `Will replay token #${candidate.n} (${candidate.fp}), spent ${seconds(Date.now() - (candidate.spentAt ?? 0))} s ago.`;
  else {
    const spent = chain.rows.findLast((r) => r.spentAt !== null);
    hint = spent
      ? `Token #${spent.n} was spent ${seconds(Date.now() - (spent.spentAt ?? 0))} s ago. Inside the ${graceMs / 1000} s grace window Baton would still hand its successor to whoever presents it (it cannot yet tell a racing tab from a thief); the button unlocks when the window closes.`
      : 'No spent token yet: wait until the access token is close to expiry, then call the notes API or /auth/me; the client refreshes first and the chain grows.';
  }
  els.replay.disabled = candidate === null || chain.revokedAt !== null || mode === 'cookie';
  if (els.replayHint.textContent !== hint) els.replayHint.textContent = hint;
}

/** @param {string} part */
function decodePart(part) {
  const b64 = part.replace(/-/g, '+').replace(/_/g, '/');
  const bytes = Uint8Array.from(atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4)), (c) => c.charCodeAt(0));
  return JSON.parse(new TextDecoder().decode(bytes));
}

/** @type {{ iat?: number, exp?: number } | null} */
let claims = null;

/** Shows the access token's header and claims (decoded, not verified: that is the API's job). */
function showClaims(/** @type {string | null} */ token) {
  if (!token) {
    claims = null;
    els.claimsHeader.textContent = '';
    els.claimsPayload.textContent = '';
    els.claimsTimes.replaceChildren();
    return;
  }
  try {
    const [header, payload] = token.split('.');
    claims = decodePart(payload ?? '');
    els.claimsHeader.textContent = JSON.stringify(decodePart(header ?? ''), null, 2);
    els.claimsPayload.textContent = JSON.stringify(claims, null, 2);
  } catch {
    claims = null;
    els.claimsPayload.textContent = 'not a JWT';
  }
  renderExpiry();
}

function renderExpiry() {
  if (!claims || typeof claims.exp !== 'number' || typeof claims.iat !== 'number') return;
  const left = claims.exp * 1000 - Date.now();
  const entries = [
    ['issued (iat)', new Date(claims.iat * 1000).toLocaleTimeString()],
    [
      'expires (exp)',
      `${new Date(claims.exp * 1000).toLocaleTimeString()} · ${left > 0 ? `in ${seconds(left)} s` : 'expired'}`,
    ],
  ];
  els.claimsTimes.replaceChildren(
    ...entries.flatMap(([term, value]) => {
      const dt = document.createElement('dt');
      dt.textContent = term;
      const dd = document.createElement('dd');
      dd.textContent = value;
      return [dt, dd];
    }),
  );
}

/**
 * The check the client makes before every request, said out loud. The margin is
 * the client's documented default (docs/client.md): max(30 s, 10 % of the
 * lifetime), at most half of it, plus a little jitter.
 */
function expiryCheck() {
  const session = client.getSession();
  if (!session) return;
  const left = session.expiresAt - Date.now();
  const lifetime = session.expiresAt - session.obtainedAt;
  const margin = Math.min(Math.max(30_000, lifetime * 0.1), lifetime / 2);
  if (left <= 0)
    log(`expiry check: the access token expired ${seconds(-left)} s ago, refreshing first`, 'step');
  else if (left <= margin)
    log(
      `expiry check: token expires in ${seconds(left)} s, inside the client's ${seconds(margin)} s margin: refreshing first`,
      'step',
    );
  else log(`expiry check: token expires in ${seconds(left)} s: fresh enough, sent as it is`, 'step');
}

els.replay.addEventListener('click', () => {
  void busy(els.replay, replayStolenToken, els.replayHint);
});

/** Plays the thief, then the owner's next requests, and says what happened in plain words. */
async function replayStolenToken() {
  const stolen = replayCandidate();
  if (!stolen?.token) return;
  const current = chain.rows.find((r) => r.spentAt === null);
  const age = seconds(Date.now() - (stolen.spentAt ?? 0));
  // The thief's request: no cookies, no client, just the copied token. Deliberately not
  // through the client, which would never send a spent token.
  const thief = await fetch('/auth/refresh', {
    method: 'POST',
    credentials: 'omit',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ refresh_token: stolen.token }),
  });
  const answer = await thief.json().catch(() => ({}));
  log(
    `replay (thief): POST /auth/refresh with spent token #${stolen.n} (${stolen.fp}) → ${thief.status} ${answer.error ?? ''}`,
    thief.ok ? 'step' : 'failed',
  );
  /** @type {string[]} */
  const steps = [
    `You played the thief: this page sent refresh token #${stolen.n} (${stolen.fp}) to POST /auth/refresh, as someone who had copied it would. That token had been spent ${age} s earlier, outside the ${graceMs / 1000} s grace window.`,
  ];
  if (thief.ok) {
    steps.push(
      `Baton accepted it (${thief.status}): it still counted as a lost answer or a racing tab. This should not happen outside the window; nothing was revoked.`,
    );
    return explainReplay(steps, false);
  }
  chain.revokedAt = Date.now();
  chain.replayed = true;
  channel?.postMessage({ type: 'replayed', n: stolen.n, fp: stolen.fp, at: chain.revokedAt });
  publishChain();
  renderChain();
  steps.push(
    `Baton had seen that token used before. A refresh token is good for one use, so a second use means two parties hold it, and the server cannot tell which one is the thief and which is you.`,
    `So it treated it as theft: it revoked the whole session (the token family), including the current token #${current?.n ?? '?'}${current?.fp ? ` (${current.fp})` : ''} your tabs hold, and answered the thief ${thief.status} ${answer.error ?? ''}.`,
  );
  if (info) {
    const api = await client.fetch('/demo-api/notes').catch((error) => error);
    if (api instanceof Response) {
      log(`request: GET /demo-api/notes with the access token → ${api.status}`, api.ok ? 'step' : 'failed');
      steps.push(
        api.ok
          ? `The notes API still accepted your access token (${api.status}): it verifies offline and cannot know about the revocation. It will refuse the token once it expires, within ${info.lifetimes.accessTtl} s at most: this is why access tokens are short-lived.`
          : `The notes API answered ${api.status}.`,
      );
    }
  }
  const me = await client.fetch('/auth/me').catch((error) => error);
  const status = me instanceof Response ? `${me.status}` : describe(me);
  steps.push(
    client.getSession() === null
      ? `Baton's own /auth/me checks the session on every call, so it refused the access token at once. The client then tried to refresh with token #${current?.n ?? '?'}, was refused too, and signed out. Your tabs share one session, so every tab was signed out at the same moment.`
      : `Baton's /auth/me answered ${status}; this tab is still signed in.`,
  );
  explainReplay(steps, client.getSession() === null);
}

/** @param {string[]} steps @param {boolean} revoked */
function explainReplay(steps, revoked) {
  const title = document.createElement('h2');
  title.textContent = revoked
    ? 'What the server detected: a refresh token used twice'
    : 'What happened with the replayed token';
  const list = document.createElement('ol');
  list.append(
    ...steps.map((text) => {
      const li = document.createElement('li');
      li.textContent = text;
      return li;
    }),
  );
  const after = document.createElement('p');
  after.className = 'hint';
  after.textContent = revoked
    ? 'With cookie mode and DPoP (the browser default), a copied refresh token would be refused without the browser’s key and would revoke nothing. Log in again to start a new session.'
    : '';
  els.replayResult.replaceChildren(title, list, after);
  els.replayResult.dataset.revoked = String(revoked);
  els.replayResult.hidden = false;
  els.replayResult.scrollIntoView({ block: 'start' });
}

// ---------------------------------------------------------------------------
// Modes and the demo banner
// ---------------------------------------------------------------------------

function setUpModes() {
  for (const input of /** @type {NodeListOf<HTMLInputElement>} */ (
    document.querySelectorAll('input[name="mode"]')
  )) {
    input.checked = input.value === mode;
    input.addEventListener('change', () => {
      localStorage.setItem(MODE_KEY, input.value);
      location.reload();
    });
  }
  // Every tab follows a switch made in one of them (the `storage` event fires in the others).
  window.addEventListener('storage', (event) => {
    if (event.key === MODE_KEY && event.newValue !== mode) location.reload();
  });
  els.modeCurrent.textContent =
    mode === 'cookie'
      ? 'This page uses cookie mode. Switching reloads every tab; each mode keeps its own session.'
      : 'This page uses token mode (DPoP off). Switching reloads every tab; each mode keeps its own session, and a token-mode session lives only as long as one tab holds it.';
  els.footerMode.textContent =
    mode === 'cookie'
      ? 'Cookie mode: the refresh token lives in an HttpOnly cookie this page cannot read.'
      : 'Token mode: the refresh token is held by the client in page memory, shared by your tabs.';
  if (info) {
    els.banner.hidden = false;
    els.banner.textContent = `Demo lifetimes: access token ${info.lifetimes.accessTtl} s, reuse grace ${info.lifetimes.reuseGrace} s. Deliberately short, so that expiry and rotation happen while you watch (npm start uses 15 min). Requests go to a notes API of its own that verifies tokens offline with @baton/verify.`;
    els.callApi.hidden = false;
  }
}

// Exposed for tinkering in the console and for the browser tests.
Object.assign(window, { batonDemo: { client } });

try {
  // Restores the session: from another open tab if there is one, else from the cookie.
  await client.getAccessToken();
} catch (error) {
  log(`start-up: ${describe(error)}`, 'failed');
}
// (A restored session has already announced itself through sessionChanged, which loads the sessions.)
channel?.postMessage({ type: 'hello' });
setUpModes();
render();
document.documentElement.dataset.ready = 'true';
