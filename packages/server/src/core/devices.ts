import type { NewSession } from '../store/store.js';
import type { CoreContext } from './context.js';
import { DEVICE_TTL_MS, newDeviceToken, parseDeviceToken } from './device-token.js';
import { secretMatches } from './refresh-token.js';

/**
 * A presented device token that checked out: it is genuine, still within
 * its lifetime, and belongs to the user with `email`.
 */
export interface TrustedDevice {
  id: string;
  userId: string;
  /** The owner's normalised email, to compare with the account being logged into. */
  email: string;
  /** The token as presented, handed back when the device logs in to its user again. */
  token: string;
}

/** The device record a successful login writes, and the device token it hands back. */
export interface DeviceProof {
  write: NonNullable<NewSession['device']>;
  kept: { id: string; token: string };
}

/** Device trust: which device a login comes from, and the proof a success leaves behind. */
export interface Devices {
  /**
   * The device a presented device token stands for, or null for anything
   * else (absent, malformed, unknown, wrong secret, unused for longer than
   * the device lifetime). Costs no query unless the value is well-formed.
   */
  findTrustedDevice(deviceToken: unknown): Promise<TrustedDevice | null>;
  /**
   * The presented device when it is trusted *for the account typed*
   * (`account`: the email as the limiter keys it), else null. A device of
   * another account, or a made-up token, changes nothing, whether or not
   * the account exists.
   */
  trustedFor(deviceToken: unknown, account: string): Promise<TrustedDevice | null>;
  /**
   * What a successful login of `userId` leaves on its device: the presented
   * device when it is already this user's (its last use moves), else a new
   * device. `write` goes into the session's transaction
   * ({@link NewSession.device}); `kept` is the token to hand back.
   */
  proofOfLogin(userId: string, device: TrustedDevice | null): DeviceProof;
}

/** Creates the device-trust part of the service. @see OWASP "Slow Down Online Guessing Attacks with Device Cookies" */
export function createDevices(ctx: CoreContext): Devices {
  const { store, now } = ctx;
  const devices: Devices = {
    async findTrustedDevice(deviceToken) {
      const parsed = parseDeviceToken(deviceToken);
      if (!parsed) return null;
      const found = await store.findTrustedDevice(parsed.id);
      if (!found || !secretMatches(parsed.secret, found.device.secretHash)) return null;
      if (found.device.lastUsedAt + DEVICE_TTL_MS <= now()) return null;
      return {
        id: found.device.id,
        userId: found.device.userId,
        email: found.email,
        token: deviceToken as string,
      };
    },

    async trustedFor(deviceToken, account) {
      if (deviceToken === undefined) return null; // no token, no query
      const found = await devices.findTrustedDevice(deviceToken);
      return found !== null && found.email === account ? found : null;
    },

    proofOfLogin(userId, device) {
      if (device && device.userId === userId) return { write: { touch: device.id }, kept: device };
      const minted = newDeviceToken();
      return {
        write: { add: { id: minted.id, secretHash: minted.hash } },
        kept: minted,
      };
    },
  };
  return devices;
}
