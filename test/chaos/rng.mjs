// A small seeded random number generator, so a run's fault schedule, clock
// offsets and kill times repeat exactly for a given seed (which requests they
// land on still depends on timing).

/**
 * Mulberry32: a 32-bit state PRNG, plenty for a fault schedule (not for secrets).
 * @param {number} seed an integer
 * @returns {() => number} uniform in [0, 1)
 */
export function seededRandom(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A child seed for one component (the balancer, a worker, a scenario), so that
 * adding draws in one component does not shift the schedule of another.
 * @param {number} seed
 * @param {string} label
 */
export function deriveSeed(seed, label) {
  let h = seed >>> 0;
  for (let i = 0; i < label.length; i++) h = Math.imul(h ^ label.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}
