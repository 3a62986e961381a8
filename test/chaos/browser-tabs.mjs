// The browser part: real Chromium tabs of one profile on the demo page of one
// Baton instance (cookie mode), each making authenticated calls in a loop
// while the network goes offline and back and tabs are frozen and resumed
// (the Page Lifecycle API's freeze, as a browser does to background tabs).
import { CHROMIUM_PATH } from './capabilities.mjs';
import { createDatabase, startCluster } from './cluster.mjs';
import { deriveSeed, seededRandom } from './rng.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Runs in the page: the app's call loop, counting what a user would notice. */
function installLoop() {
  const { client } = window.batonDemo;
  const chaos = { calls: 0, ok: 0, failed: {}, firstAttemptFailed: 0, signedOut: [], stop: false };
  window.__chaos = chaos;
  client.on('signedOut', (e) => chaos.signedOut.push(`${e.reason}/${e.source}`));
  const pause = (ms) => new Promise((r) => setTimeout(r, ms));
  // A well-behaved app waits for the network before calling (or retrying); a call cut by going
  // offline mid-flight is retried. What still fails after that is a failed call.
  const online = () =>
    navigator.onLine
      ? Promise.resolve()
      : new Promise((r) => window.addEventListener('online', () => r(undefined), { once: true }));
  async function call() {
    let cause = 'unknown';
    for (let attempt = 0; attempt < 4; attempt++) {
      await online();
      try {
        const res = await client.fetch('/auth/me', { signal: AbortSignal.timeout(15_000) });
        await res.arrayBuffer();
        if (res.status === 200) return { ok: true, attempts: attempt + 1 };
        cause = `status_${res.status}`;
        if (res.status < 500) return { ok: false, cause, attempts: attempt + 1 };
      } catch (error) {
        cause = error?.code ?? error?.name ?? 'error';
        if (cause === 'signed_out') return { ok: false, cause, attempts: attempt + 1 };
      }
      await pause(250 * 2 ** attempt);
    }
    return { ok: false, cause, attempts: 4 };
  }
  (async () => {
    while (!chaos.stop) {
      const r = await call();
      if (chaos.stop) break;
      chaos.calls++;
      if (r.attempts > 1 || !r.ok) chaos.firstAttemptFailed++;
      if (r.ok) chaos.ok++;
      else chaos.failed[r.cause] = (chaos.failed[r.cause] ?? 0) + 1;
      await pause(300 + Math.random() * 700);
    }
  })();
}

/**
 * @param {object} opts
 * @param {number} opts.durationMs
 * @param {number} opts.seed
 * @param {number} [opts.tabs]  default 8
 * @param {(line: string) => void} opts.log
 */
export async function runBrowserTabs(opts) {
  const random = seededRandom(deriveSeed(opts.seed, 'browser'));
  const tabs = opts.tabs ?? 8;
  const { chromium } = await import('playwright-core');
  const database = await createDatabase('sqlite');
  const cluster = await startCluster({
    databaseUrl: database.url,
    // The page's origin is the issuer: the default allowed origin for cookie mode.
    issuer: (ports) => `http://localhost:${ports[0]}`,
    count: 1,
    env: { BATON_ACCESS_TTL: '4s' },
  });
  const url = `http://localhost:${cluster.ports[0]}`;
  const browser = await chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      // As the e2e suites run it: background tabs are not throttled, so all eight keep calling and
      // the only pauses are the freezes this scenario makes on purpose.
      '--disable-background-timer-throttling',
      '--disable-renderer-backgrounding',
      '--disable-backgrounding-occluded-windows',
    ],
  });
  const pageErrors = [];
  try {
    const context = await browser.newContext();
    const pages = [];
    for (let i = 0; i < tabs; i++) {
      const page = await context.newPage();
      page.on('pageerror', (error) => pageErrors.push(error.message));
      await page.goto(url);
      await page.waitForSelector('html[data-ready="true"]');
      const cdp = await context.newCDPSession(page);
      await cdp.send('Debugger.enable');
      pages.push({ page, cdp });
      if (i === 0) {
        await page.evaluate(async () => {
          const { client } = window.batonDemo;
          const credentials = { email: `tabs-${Date.now()}@example.com`, password: 'a long enough password' };
          await client.register(credentials);
          await client.login(credentials);
        });
      }
      await page.waitForSelector('#status[data-state="signed-in"]');
    }
    const before = await refreshTotals(url);
    for (const { page } of pages) await page.evaluate(installLoop);

    const t0 = Date.now();
    const actions = { offline: 0, frozen: 0 };
    while (Date.now() - t0 < opts.durationMs) {
      await sleep(1500 + random() * 2500);
      if (random() < 0.4) {
        actions.offline++;
        await context.setOffline(true);
        await sleep(1000 + random() * 5000);
        await context.setOffline(false);
      } else {
        // Freeze one to three tabs at once for 2-8 s (a freeze may catch a tab holding the refresh lock).
        const chosen = new Set(
          Array.from({ length: 1 + Math.floor(random() * 3) }, () => Math.floor(random() * tabs)),
        );
        actions.frozen += chosen.size;
        await Promise.all([...chosen].map((i) => freeze(pages[i].cdp)));
        await sleep(2000 + random() * 6000);
        await Promise.all([...chosen].map((i) => resume(pages[i].cdp)));
      }
    }
    const minutes = (Date.now() - t0) / 60_000;
    const results = [];
    for (const { page } of pages) {
      results.push(
        await page.evaluate(() => {
          window.__chaos.stop = true;
          const { stop: _, ...rest } = window.__chaos;
          return rest;
        }),
      );
    }
    const after = await refreshTotals(url);
    const calls = results.reduce((a, r) => a + r.calls, 0);
    const ok = results.reduce((a, r) => a + r.ok, 0);
    const failedBy = {};
    for (const r of results)
      for (const [k, v] of Object.entries(r.failed)) failedBy[k] = (failedBy[k] ?? 0) + v;
    const signOuts = results.reduce((a, r) => a + r.signedOut.length, 0);
    const refreshes = after.total - before.total;
    return {
      signOuts,
      calls,
      failed: calls - ok,
      refreshesPerSessionMin: refreshes / minutes,
      notes: [
        `${tabs} tabs, one session (cookie mode); ${actions.offline} offline periods, ${actions.frozen} tab freezes; calls per tab ${results.map((r) => r.calls).join(' ')}`,
        `calls ${calls}, first attempt failed ${results.reduce((a, r) => a + r.firstAttemptFailed, 0)}, failed after retries ${calls - ok} ${JSON.stringify(failedBy)}`,
        `server refresh outcomes: rotated ${after.rotated - before.rotated}, grace_replay ${after.grace_replay - before.grace_replay}, reuse_detected ${after.reuse_detected - before.reuse_detected}`,
        ...(signOuts > 0 ? [`signedOut events: ${results.flatMap((r) => r.signedOut).join(', ')}`] : []),
        ...(pageErrors.length > 0 ? [`page errors: ${pageErrors.slice(0, 3).join(' | ')}`] : []),
      ],
    };
  } catch (error) {
    opts.log(cluster.output());
    throw error;
  } finally {
    await browser.close();
    await cluster.stop();
    await database.drop();
  }
}

/**
 * Freezes a tab. Chromium 156 headless accepts `Page.setWebLifecycleState`
 * 'frozen' but keeps running the page's timers and callbacks, so the
 * debugger's pause does the freezing: the page's JavaScript stops (answers
 * to its requests wait in the browser), as in a frozen background tab.
 */
async function freeze(cdp) {
  await cdp.send('Page.setWebLifecycleState', { state: 'frozen' });
  await cdp.send('Debugger.pause');
}

async function resume(cdp) {
  await cdp.send('Debugger.resume');
  await cdp.send('Page.setWebLifecycleState', { state: 'active' });
}

async function refreshTotals(url) {
  const text = await (await fetch(`${url.replace('localhost', '127.0.0.1')}/metrics`)).text();
  const out = { rotated: 0, grace_replay: 0, reuse_detected: 0, invalid: 0, total: 0 };
  for (const line of text.split('\n')) {
    const m = /^baton_refresh_total\{[^}]*outcome="([^"]+)"[^}]*\} (\S+)$/.exec(line);
    if (m && m[1] in out) {
      out[m[1]] += Number(m[2]);
      out.total += Number(m[2]);
    }
  }
  return out;
}
