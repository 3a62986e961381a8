/**
 * What the login policy needs from a rate limiter: core decides *when* a
 * login attempt counts, the HTTP layer decides *where* the counts live
 * (memory or Redis, see `http/rate-limits.ts`).
 *
 * `account` is the email as typed, trimmed and lower-cased (or a user id
 * for a password change), whether or not such an account exists, so a 429
 * says nothing about which accounts are real. `device` is the id of a
 * device that logged in to this account before: its own count replaces
 * the account's, so an attacker's failures cannot lock the owner out.
 * @see OWASP "Slow Down Online Guessing Attacks with Device Cookies"
 */
export interface LoginLimiter {
  /** Throws `too_many_requests` while `account` (or `device`) or `ip` has too many recent failures. */
  assertLoginAllowed(account: string, ip: string, device?: string): Promise<void>;
  /** Records a failed attempt for `account` (or `device`) and `ip`. */
  loginFailed(account: string, ip: string, device?: string): Promise<void>;
  /** Forgets the failures of `account` (or only of `device`) after a success. */
  loginSucceeded(account: string, device?: string): Promise<void>;
}

/** A limiter that never refuses (the service's default: tests and embedders that limit elsewhere). */
export const NO_LOGIN_LIMITS: LoginLimiter = Object.freeze({
  async assertLoginAllowed() {},
  async loginFailed() {},
  async loginSucceeded() {},
});
