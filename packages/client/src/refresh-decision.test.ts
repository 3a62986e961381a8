import { describe, expect, it } from 'vitest';
import {
  CLOCK_BACKWARDS_TOLERANCE_MS,
  type DecisionMoment,
  decideRefresh,
  defaultMargin,
  isNewer,
  maxJitter,
  nextSeq,
  type RefreshDecision,
  type RefreshTiming,
  tokenPhase,
} from './refresh-decision.js';
import type { LiveState, SessionState, SignedOutState } from './session-state.js';

// A 15-minute token obtained at t = 1 s: with the default margin (90 s) and
// no jitter it is fresh until 811 s, due until 901 s, expired from then on.
const live = (seq: number, id = 'a'): LiveState => ({
  v: 1,
  kind: 'session',
  seq,
  id,
  accessToken: `at${seq}`,
  refreshToken: `brt_${seq}`,
  obtainedAt: 1_000,
  expiresAt: 901_000,
});
const out = (seq: number): SignedOutState => ({ v: 1, kind: 'signed_out', seq, id: 'z', reason: 'logout' });

const FRESH = 500_000;
const DUE = 850_000;
const EXPIRED = 901_000;
/** More than the tolerance before the token was obtained: the clock was set back. */
const SET_BACK = 1_000 - CLOCK_BACKWARDS_TOLERANCE_MS - 1;
/** Set back, but within the tolerance. */
const SLIGHTLY_BACK = 1_000 - CLOCK_BACKWARDS_TOLERANCE_MS;

const noJitter: RefreshTiming = { refreshMarginMs: undefined, jitterMs: 0 };

describe('state ordering', () => {
  it('orders by sequence, not by time, so a clock set back cannot resurrect a spent token', () => {
    const older = { ...live(3), obtainedAt: 5_000_000 };
    const newer = { ...live(4), obtainedAt: 1_000 };
    expect(isNewer(newer, older)).toBe(true);
  });

  it('lets a sign-out beat the session it ends, and a later login beat the sign-out', () => {
    expect(isNewer(out(5), live(4))).toBe(true);
    expect(isNewer(live(4), out(5))).toBe(false);
    expect(isNewer(live(6), out(5))).toBe(true);
  });

  it('breaks ties the same way in every tab', () => {
    expect(isNewer(live(2, 'b'), live(2, 'a'))).toBe(true);
    expect(isNewer(live(2, 'a'), live(2, 'b'))).toBe(false);
    expect(isNewer(live(2, 'a'), live(2, 'a'))).toBe(false);
  });
});

describe('decideRefresh', () => {
  const a3 = { ...live(3), obtainedAt: 5_000_000, expiresAt: 5_900_000 };
  const a4 = live(4);
  const a5 = live(5);
  const o5 = out(5);
  const o6 = out(6);

  type Row = [
    what: string,
    moment: DecisionMoment,
    current: SessionState | null,
    incoming: SessionState | null,
    now: number,
    expected: RefreshDecision,
  ];
  const rows: Row[] = [
    // arrived: storage or another tab offers a state (these rows were `newest`'s)
    [
      'arrived: a newer seq wins even if obtained earlier',
      'arrived',
      a3,
      a4,
      FRESH,
      { action: 'adopt', state: a4 },
    ],
    ['arrived: an older seq loses even if obtained later', 'arrived', a4, a3, FRESH, { action: 'keep' }],
    ['arrived: anything beats knowing nothing', 'arrived', null, a4, FRESH, { action: 'adopt', state: a4 }],
    ['arrived: nothing offered', 'arrived', a4, null, FRESH, { action: 'keep' }],
    ['arrived: the same state again', 'arrived', a4, live(4), FRESH, { action: 'keep' }],
    [
      'arrived: a tie on seq goes to the larger id',
      'arrived',
      live(4, 'a'),
      live(4, 'b'),
      FRESH,
      { action: 'adopt', state: live(4, 'b') },
    ],
    ['arrived: a tie on seq, smaller id', 'arrived', live(4, 'b'), live(4, 'a'), FRESH, { action: 'keep' }],
    [
      'arrived: a sign-out ends the session it follows',
      'arrived',
      a4,
      o5,
      FRESH,
      { action: 'adopt', state: o5 },
    ],
    ['arrived: a stale session cannot undo a sign-out', 'arrived', o5, a4, FRESH, { action: 'keep' }],
    [
      'arrived: a later login beats the sign-out',
      'arrived',
      o5,
      live(6),
      FRESH,
      { action: 'adopt', state: live(6) },
    ],
    [
      'arrived: expiry does not matter to ordering',
      'arrived',
      a4,
      a5,
      EXPIRED,
      { action: 'adopt', state: a5 },
    ],

    // request: a request needs a token
    ['request: fresh token', 'request', a4, null, FRESH, { action: 'use', state: a4 }],
    [
      'request: due token (still works if the refresh fails)',
      'request',
      a4,
      null,
      DUE,
      { action: 'refresh', from: a4, fallback: a4 },
    ],
    [
      'request: expired token (no fallback)',
      'request',
      a4,
      null,
      EXPIRED,
      { action: 'refresh', from: a4, fallback: null },
    ],
    ['request: one ms before the margin', 'request', a4, null, 810_999, { action: 'use', state: a4 }],
    [
      'request: exactly at the margin',
      'request',
      a4,
      null,
      811_000,
      { action: 'refresh', from: a4, fallback: a4 },
    ],
    [
      'request: clock set back past the tolerance',
      'request',
      a4,
      null,
      SET_BACK,
      { action: 'refresh', from: a4, fallback: a4 },
    ],
    [
      'request: clock set back within the tolerance',
      'request',
      a4,
      null,
      SLIGHTLY_BACK,
      { action: 'use', state: a4 },
    ],
    ['request: nothing known', 'request', null, null, FRESH, { action: 'signed_out', state: null }],
    ['request: signed out', 'request', o5, null, FRESH, { action: 'signed_out', state: o5 }],

    // replace: the caller's token (current) must go; incoming is the newest we know
    ['replace: someone already refreshed, fresh', 'replace', a4, a5, FRESH, { action: 'use', state: a5 }],
    [
      'replace: someone already refreshed, but that is due too',
      'replace',
      a4,
      a5,
      DUE,
      { action: 'refresh', from: a5, fallback: null },
    ],
    [
      'replace: someone already refreshed, expired',
      'replace',
      a4,
      a5,
      EXPIRED,
      { action: 'refresh', from: a5, fallback: null },
    ],
    [
      'replace: nothing newer (a 401 on a fresh token)',
      'replace',
      a4,
      a4,
      FRESH,
      { action: 'refresh', from: a4, fallback: null },
    ],
    [
      'replace: nothing else known',
      'replace',
      a4,
      null,
      DUE,
      { action: 'refresh', from: a4, fallback: null },
    ],
    [
      "replace: what we know is older than the caller's",
      'replace',
      a5,
      a4,
      FRESH,
      { action: 'refresh', from: a5, fallback: null },
    ],
    [
      'replace: tie on seq, larger id known',
      'replace',
      live(4, 'a'),
      live(4, 'b'),
      FRESH,
      { action: 'use', state: live(4, 'b') },
    ],
    [
      'replace: tie on seq, smaller id known',
      'replace',
      live(4, 'b'),
      live(4, 'a'),
      FRESH,
      { action: 'refresh', from: live(4, 'b'), fallback: null },
    ],
    ['replace: signed out meanwhile', 'replace', a4, o5, FRESH, { action: 'signed_out', state: o5 }],
    [
      'replace: an old sign-out does not end a newer session',
      'replace',
      a5,
      out(4),
      FRESH,
      { action: 'refresh', from: a5, fallback: null },
    ],
    [
      'replace: cookie start-up, nothing known',
      'replace',
      null,
      null,
      FRESH,
      { action: 'refresh', from: null, fallback: null },
    ],
    [
      'replace: cookie start-up, a tab shared a fresh session',
      'replace',
      null,
      a4,
      FRESH,
      { action: 'use', state: a4 },
    ],
    [
      'replace: cookie start-up, a tab shared a due session',
      'replace',
      null,
      a4,
      DUE,
      { action: 'refresh', from: a4, fallback: null },
    ],
    [
      'replace: cookie start-up, a tab remembers a sign-out',
      'replace',
      null,
      o5,
      FRESH,
      { action: 'signed_out', state: o5 },
    ],
    [
      'replace: clock set back, the newer token is refreshed',
      'replace',
      a4,
      a5,
      SET_BACK,
      { action: 'refresh', from: a5, fallback: null },
    ],

    // granted: the server rotated current (our base); incoming is the newest known now
    ['granted: nothing changed', 'granted', a4, a4, FRESH, { action: 'commit' }],
    ['granted: nothing known', 'granted', a4, null, FRESH, { action: 'commit' }],
    [
      'granted: another context refreshed first (theirs wins, even due)',
      'granted',
      a4,
      a5,
      DUE,
      { action: 'use', state: a5 },
    ],
    ['granted: signed out meanwhile', 'granted', a4, o5, FRESH, { action: 'signed_out', state: o5 }],
    ['granted: an older state is no reason to drop ours', 'granted', a5, a4, FRESH, { action: 'commit' }],
    ['granted: tie on seq, smaller id', 'granted', live(4, 'b'), live(4, 'a'), FRESH, { action: 'commit' }],
    [
      'granted: cookie start-up outranks what arrived meanwhile',
      'granted',
      null,
      a4,
      FRESH,
      { action: 'commit' },
    ],

    // refused: the server said invalid_grant for current (our base)
    ['refused: nobody rotated it, the session is over', 'refused', a4, a4, FRESH, { action: 'end_session' }],
    ['refused: nothing known', 'refused', a4, null, FRESH, { action: 'end_session' }],
    ['refused: another context rotated it first', 'refused', a4, a5, EXPIRED, { action: 'use', state: a5 }],
    ['refused: signed out meanwhile', 'refused', a4, o6, FRESH, { action: 'signed_out', state: o6 }],
    ['refused: older state known', 'refused', a5, a4, FRESH, { action: 'end_session' }],
    ['refused: cookie start-up without a cookie', 'refused', null, null, FRESH, { action: 'none' }],
    [
      'refused: cookie start-up, a tab shared a session',
      'refused',
      null,
      a4,
      FRESH,
      { action: 'use', state: a4 },
    ],
    [
      'refused: cookie start-up, a tab remembers a sign-out',
      'refused',
      null,
      o5,
      FRESH,
      { action: 'signed_out', state: o5 },
    ],
  ];

  it.each(rows)('%s', (_what, moment, current, incoming, now, expected) => {
    expect(decideRefresh({ moment, current, incoming, now, timing: noJitter })).toEqual(expected);
  });

  type TimingRow = [what: string, timing: RefreshTiming, now: number, expected: RefreshDecision['action']];
  const timingRows: TimingRow[] = [
    ['jitter makes a token due earlier', { refreshMarginMs: undefined, jitterMs: 5_000 }, 806_000, 'refresh'],
    ['just before margin and jitter', { refreshMarginMs: undefined, jitterMs: 5_000 }, 805_999, 'use'],
    ['a smaller margin option', { refreshMarginMs: 60_000, jitterMs: 0 }, 840_999, 'use'],
    ['a smaller margin option, reached', { refreshMarginMs: 60_000, jitterMs: 0 }, 841_000, 'refresh'],
    [
      'a margin option is capped at half the lifetime',
      { refreshMarginMs: 10_000_000, jitterMs: 0 },
      450_999,
      'use',
    ],
    ['the capped margin, reached', { refreshMarginMs: 10_000_000, jitterMs: 0 }, 451_000, 'refresh'],
  ];

  it.each(timingRows)('request: %s', (_what, timing, now, expected) => {
    expect(decideRefresh({ moment: 'request', current: a4, incoming: null, now, timing }).action).toBe(
      expected,
    );
  });
});

describe('tokenPhase', () => {
  it.each([
    [FRESH, 'fresh'],
    [DUE, 'due'],
    [EXPIRED - 1, 'due'],
    [EXPIRED, 'expired'],
    [SET_BACK, 'due'],
    [SLIGHTLY_BACK, 'fresh'],
  ] as const)('at %d the token is %s', (now, phase) => {
    expect(tokenPhase(live(1), now, noJitter)).toBe(phase);
  });
});

describe('nextSeq', () => {
  it('numbers a new state after every state it knows of', () => {
    expect(nextSeq(null)).toBe(1);
    expect(nextSeq(live(4))).toBe(5);
    expect(nextSeq(live(4), out(7))).toBe(8);
    expect(nextSeq(undefined, null)).toBe(1);
  });
});

describe('refresh margin', () => {
  it('is max(30 s, 10 % of the lifetime)', () => {
    expect(defaultMargin(900_000)).toBe(90_000);
    expect(defaultMargin(120_000)).toBe(30_000);
  });

  it('never exceeds half the lifetime, so short tokens are not refreshed on every request', () => {
    expect(defaultMargin(5_000)).toBe(2_500);
    expect(maxJitter(5_000)).toBe(250);
    expect(maxJitter(900_000)).toBe(5_000);
  });
});
