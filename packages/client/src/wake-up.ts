/** What woke the client, as {@link watchWakeUps} reports it. */
export interface WakeUp {
  /** Back online: a backoff computed while offline is no reason to wait. */
  online: boolean;
  /**
   * Ask the other tabs for their state again: a frozen or sleeping tab may
   * have missed their messages. True at most once a second, so a burst of
   * focus and visibility events sends one `hello`.
   */
  askPeers: boolean;
}

/** Least time between two `askPeers` wake-ups. */
const ASK_PEERS_EVERY_MS = 1_000;

/**
 * Calls `onWake` when the page or process comes back: `online`, `pageshow`,
 * `focus`, and `visibilitychange` to visible. The client keeps no long
 * timers (a sleeping laptop skips them); it re-checks its token on these
 * events instead. Where there is no window or document (Node), nothing is
 * listened to. Returns the function that stops listening.
 */
export function watchWakeUps(now: () => number, onWake: (wake: WakeUp) => void): () => void {
  const scope = globalThis as unknown as Partial<EventTarget>;
  const doc = (globalThis as { document?: Partial<Document> }).document;
  let lastAsked = Number.NEGATIVE_INFINITY;
  const listener = (event: Event) => {
    if (event.type === 'visibilitychange' && doc?.visibilityState === 'hidden') return;
    const at = now();
    // abs: a clock set back must not silence the peers for as long as it jumped.
    const askPeers = Math.abs(at - lastAsked) > ASK_PEERS_EVERY_MS;
    if (askPeers) lastAsked = at;
    onWake({ online: event.type === 'online', askPeers });
  };
  const stops: (() => void)[] = [];
  if (typeof scope.addEventListener === 'function') {
    for (const type of ['online', 'pageshow', 'focus']) {
      scope.addEventListener(type, listener);
      stops.push(() => scope.removeEventListener?.(type, listener));
    }
  }
  if (doc !== undefined && typeof doc.addEventListener === 'function') {
    doc.addEventListener('visibilitychange', listener);
    stops.push(() => doc.removeEventListener?.('visibilitychange', listener));
  }
  return () => {
    for (const stop of stops.splice(0)) stop();
  };
}
