import { createHmac, timingSafeEqual } from 'node:crypto';
import { decodeCanonical } from './base64url.js';

/** How long a DPoP nonce is accepted, and after how long a fresh one is handed out. @see RFC 9449 §8 */
export const DPOP_NONCE_TIMES = Object.freeze({ lifetime: 5 * 60_000, renewAfter: 60_000 });

/**
 * How far ahead of this instance's clock a nonce's time may be: another
 * instance, with a clock a little ahead, may have issued it.
 */
export const INSTANCE_SKEW_MS = 5_000;

const MAC_BYTES = 32;

function mac(secret: Buffer, issuedAt: Buffer): Buffer {
  return createHmac('sha256', secret).update('baton dpop nonce\0').update(issuedAt).digest();
}

/**
 * A server nonce: base64url(issued-at ms as 8 bytes ‖ HMAC-SHA256(secret,
 * issued-at)). It is stateless: any instance holding the shared secret
 * checks it, so a nonce one instance handed out is good on every other.
 * @see RFC 9449 §8
 */
export function makeDpopNonce(secret: Buffer, issuedAt: number): string {
  const time = Buffer.alloc(8);
  time.writeBigUInt64BE(BigInt(Math.max(0, Math.floor(issuedAt))));
  return Buffer.concat([time, mac(secret, time)]).toString('base64url');
}

/**
 * When a nonce was issued, if it is genuine and still valid at `now`
 * (issued at most {@link DPOP_NONCE_TIMES}.lifetime ago and not from
 * further ahead than {@link INSTANCE_SKEW_MS}); null otherwise.
 */
export function dpopNonceIssuedAt(secret: Buffer, nonce: string, now: number): number | null {
  const bytes = decodeCanonical(nonce);
  if (!bytes || bytes.length !== 8 + MAC_BYTES) return null;
  const time = bytes.subarray(0, 8);
  if (!timingSafeEqual(bytes.subarray(8), mac(secret, time))) return null;
  const issuedAt = Number(time.readBigUInt64BE());
  if (issuedAt > now + INSTANCE_SKEW_MS || now - issuedAt > DPOP_NONCE_TIMES.lifetime) return null;
  return issuedAt;
}
