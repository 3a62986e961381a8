// The Baton demo page: a plain ES module on top of the client SDK, no build step.
// Everything the user sees comes from the client's API and events; the page
// holds no token logic of its own.
import { BatonClientError, createAuthClient } from '/web/client/index.js';

const client = createAuthClient({ baseUrl: location.origin, mode: 'cookie' });

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
  item.append(time, text);
  els.log.prepend(item);
  while (els.log.children.length > 100) els.log.lastElementChild?.remove();
}

const from = (/** @type {'local'|'remote'} */ source) => (source === 'remote' ? ' (another tab)' : '');

client.on('tokenRefreshed', ({ expiresAt, source }) => {
  log(
    `tokenRefreshed: new access token, valid ${Math.round((expiresAt - Date.now()) / 1000)} s${from(source)}`,
    source,
  );
});
client.on('refreshFailed', ({ error, retryable, retryInMs }) => {
  const next = retryable ? `, session kept, retry in ${(retryInMs / 1000).toFixed(1)} s` : '';
  log(`refreshFailed: ${error.code}${next}`, 'failed');
});
client.on('signedOut', ({ reason, source }) => {
  log(`signedOut: ${reason}${from(source)}`, 'signed-out');
});
client.on('sessionChanged', ({ signedIn, source }) => {
  log(`sessionChanged: ${signedIn ? 'signed in' : 'signed out'}${from(source)}`, source);
  render();
  if (signedIn) void loadSessions().catch(() => {});
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
  els.status.dataset.state = session ? 'signed-in' : 'signed-out';
  // Whether the refresh cookie only works with this browser's key (DPoP).
  els.status.dataset.dpop = client.dpop.bound ? 'bound' : 'unbound';
  els.status.textContent = session ? `Signed in · session ${session.sessionId ?? ''}` : 'Signed out';
  document.title = session ? 'Baton demo · signed in' : 'Baton demo';
  if (session === null) {
    els.meResult.textContent = '';
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

// ---------------------------------------------------------------------------
// Calling the API
// ---------------------------------------------------------------------------

els.callMe.addEventListener('click', () => {
  void busy(
    els.callMe,
    async () => {
      els.meResult.textContent = '…';
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

// Exposed for tinkering in the console and for the browser tests.
Object.assign(window, { batonDemo: { client } });

try {
  // Restores the session: from another open tab if there is one, else from the cookie.
  await client.getAccessToken();
} catch (error) {
  log(`start-up: ${describe(error)}`, 'failed');
}
// (A restored session has already announced itself through sessionChanged, which loads the sessions.)
render();
document.documentElement.dataset.ready = 'true';
