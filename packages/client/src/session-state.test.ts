import { describe, expect, it } from 'vitest';
import {
  defaultMargin,
  isNewer,
  type LiveState,
  maxJitter,
  newest,
  parseState,
  type SignedOutState,
} from './session-state.js';

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

describe('state ordering', () => {
  it('orders by sequence, not by time, so a clock set back cannot resurrect a spent token', () => {
    const older = { ...live(3), obtainedAt: 5_000_000 };
    const newer = { ...live(4), obtainedAt: 1_000 };
    expect(isNewer(newer, older)).toBe(true);
    expect(newest(older, newer)).toBe(newer);
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

describe('parseState', () => {
  it('round-trips what the client stores', () => {
    expect(parseState(JSON.stringify(live(1)))).toEqual(live(1));
    expect(parseState(JSON.stringify(out(2)))).toEqual(out(2));
  });

  it('keeps the device token of sessions and of tombstones (it outlives sign-outs)', () => {
    const withDevice = { ...live(1), deviceToken: 'bdv_a.b' };
    const tombstone = { ...out(2), deviceToken: 'bdv_a.b' };
    expect(parseState(JSON.stringify(withDevice))).toEqual(withDevice);
    expect(parseState(JSON.stringify(tombstone))).toEqual(tombstone);
    // A value that is not a token is dropped, not a reason to discard the session.
    expect(parseState(JSON.stringify({ ...live(1), deviceToken: 42 }))).toEqual(live(1));
  });

  it('reads anything malformed as nothing stored instead of throwing', () => {
    for (const raw of [
      null,
      undefined,
      '',
      '{',
      '[]',
      '"x"',
      '{"v":2}',
      JSON.stringify({ ...live(1), expiresAt: 'soon' }),
    ]) {
      expect(parseState(raw)).toBeNull();
    }
    expect(parseState(JSON.stringify({ ...out(1), reason: 'because' }))).toBeNull();
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
