import { connect } from 'node:net';

/** True when something accepts TCP connections at host:port within a second. */
export function reachable(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, host);
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/**
 * Whether a suite that needs a service may run. Locally a missing service
 * skips the suite with one line of explanation; in CI (`CI=true`) it is a
 * failure, because CI's script starts every service the tests need.
 */
export async function serviceAvailable(name: string, port: number): Promise<boolean> {
  if (await reachable(port)) return true;
  if (process.env.CI === 'true')
    throw new Error(`${name} is not reachable on 127.0.0.1:${port}, and CI must not skip it`);
  process.stderr.write(`[skipped] ${name} is not running on 127.0.0.1:${port}; start it to run this suite\n`);
  return false;
}
