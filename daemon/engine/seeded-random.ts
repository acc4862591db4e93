/**
 * mulberry32: a small seeded PRNG giving the same sequence on every machine, so a
 * run with injected faults (the network-like memory broker) or a randomised test can
 * be replayed from its seed. Not for anything secret.
 */

/** Returns a generator of numbers in [0, 1) determined by `seed`. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
