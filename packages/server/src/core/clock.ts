/** Milliseconds since the epoch, like `Date.now()`. Injected so tests move time instead of sleeping. */
export type Clock = () => number;

/** The real clock. */
export const systemClock: Clock = () => Date.now();

/** Whole seconds since the epoch for `ms`, as JWT `NumericDate` wants (RFC 7519 §2). */
export function toEpochSeconds(ms: number): number {
  return Math.floor(ms / 1000);
}
