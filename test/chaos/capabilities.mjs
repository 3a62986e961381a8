// What the system under test can do, so that scenarios needing a feature that
// has not landed yet report "not run" instead of passing.
import { existsSync } from 'node:fs';
import { DIST } from './cluster.mjs';

/** Debian's Chromium, as the e2e suites use it; override with CHROMIUM_PATH. */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/**
 * Probes the capabilities. The server's is read from a running instance's
 * RFC 8414 metadata (`dpop_signing_alg_values_supported`, RFC 9449 §5.1).
 * @param {string} [serverUrl] an instance to ask; without it server DPoP is unknown (false)
 * @returns {Promise<Record<'server-dpop' | 'client-dpop' | 'chromium', boolean>>}
 */
export async function probeCapabilities(serverUrl) {
  let serverDpop = false;
  if (serverUrl) {
    const res = await fetch(`${serverUrl}/.well-known/oauth-authorization-server`);
    const meta = res.ok ? await res.json() : {};
    serverDpop =
      Array.isArray(meta.dpop_signing_alg_values_supported) &&
      meta.dpop_signing_alg_values_supported.length > 0;
  }
  const client = await import(DIST.client);
  return {
    'server-dpop': serverDpop,
    'client-dpop': Object.keys(client).some((name) => /dpop/i.test(name)),
    chromium: existsSync(CHROMIUM_PATH),
  };
}
