import { afterEach, describe, expect, it, vi } from 'vitest';
import { type WakeUp, watchWakeUps } from './wake-up.js';

afterEach(() => {
  vi.unstubAllGlobals();
});

function stubPage() {
  const win = new EventTarget();
  const doc = Object.assign(new EventTarget(), { visibilityState: 'visible' as 'visible' | 'hidden' });
  vi.stubGlobal('addEventListener', win.addEventListener.bind(win));
  vi.stubGlobal('removeEventListener', win.removeEventListener.bind(win));
  vi.stubGlobal('document', doc);
  return { win, doc };
}

describe('watchWakeUps', () => {
  it('reports online, pageshow, focus and becoming visible, but not becoming hidden', () => {
    const { win, doc } = stubPage();
    let clock = 0;
    const wakes: WakeUp[] = [];
    watchWakeUps(
      () => clock,
      (wake) => wakes.push(wake),
    );
    win.dispatchEvent(new Event('online'));
    clock += 2_000;
    win.dispatchEvent(new Event('pageshow'));
    clock += 2_000;
    win.dispatchEvent(new Event('focus'));
    doc.visibilityState = 'hidden';
    doc.dispatchEvent(new Event('visibilitychange'));
    clock += 2_000;
    doc.visibilityState = 'visible';
    doc.dispatchEvent(new Event('visibilitychange'));
    expect(wakes).toEqual([
      { online: true, askPeers: true },
      { online: false, askPeers: true },
      { online: false, askPeers: true },
      { online: false, askPeers: true },
    ]);
  });

  it('asks the peers at most once a second, also when the clock was set back', () => {
    const { win } = stubPage();
    let clock = 10_000;
    const asked: boolean[] = [];
    watchWakeUps(
      () => clock,
      (wake) => asked.push(wake.askPeers),
    );
    win.dispatchEvent(new Event('focus'));
    clock += 500;
    win.dispatchEvent(new Event('focus'));
    clock -= 5_000;
    win.dispatchEvent(new Event('focus'));
    expect(asked).toEqual([true, false, true]);
  });

  it('stops listening when told to', () => {
    const { win, doc } = stubPage();
    let wakes = 0;
    const stop = watchWakeUps(
      () => 0,
      () => wakes++,
    );
    stop();
    win.dispatchEvent(new Event('focus'));
    doc.dispatchEvent(new Event('visibilitychange'));
    expect(wakes).toBe(0);
  });

  it('listens to nothing where there is no window or document (Node)', () => {
    expect(() =>
      watchWakeUps(
        () => 0,
        () => {},
      )(),
    ).not.toThrow();
  });
});
