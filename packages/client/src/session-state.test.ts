import { describe, expect, it } from 'vitest';
import { type LiveState, parseState, type SignedOutState } from './session-state.js';

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
