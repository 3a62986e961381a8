import { maxJitter } from './refresh-decision.js';
import type { LiveState } from './session-state.js';

/**
 * The jitter added to a token's refresh margin, drawn once per token (by its
 * state id) so that repeated checks of one token agree with each other,
 * while tabs and users that got their tokens together still refresh apart.
 */
export class TokenJitter {
  private drawn: { id: string; ms: number } | null = null;

  constructor(private readonly random: () => number) {}

  /** Milliseconds of jitter for `live`: the same value until a different token is asked about. */
  for(live: LiveState): number {
    if (this.drawn?.id !== live.id) {
      this.drawn = { id: live.id, ms: this.random() * maxJitter(live.expiresAt - live.obtainedAt) };
    }
    return this.drawn.ms;
  }
}
