import t from 'tap';
import { backoffCap, backoffDelay, backoffPolicy, DEFAULT_BACKOFF, MIN_CAP_MS, MIN_FLOOR_MS } from '../../protocol/client/index.js';

t.test('jitter: uniform in [minMs, min(maxMs, max(baseMs, failingForMs / 2)))', async (t) => {
  const policy = { minMs: 100, baseMs: 200, maxMs: 1000 };
  const caps: [number, number][] = [[0, 200], [300, 200], [400, 200], [600, 300], [1200, 600], [2000, 1000], [60_000, 1000]];
  for (const [failingFor, cap] of caps) {
    t.equal(backoffCap(failingFor, policy), cap, `failing for ${failingFor} ms: cap ${cap}`);
    t.equal(backoffDelay(failingFor, policy, () => 0), 100, `failing for ${failingFor} ms: lowest is the floor`);
    t.equal(backoffDelay(failingFor, policy, () => 0.5), 100 + Math.floor((cap - 100) / 2), `failing for ${failingFor} ms: middle`);
    t.equal(backoffDelay(failingFor, policy, () => 0.999999), cap - 1, `failing for ${failingFor} ms: highest is just under ${cap}`);
  }
});

t.test('by default, attempts in the first 600 ms of an outage come every 100–300 ms; after a 1 s outage the wait is under 500 ms', async (t) => {
  t.same(DEFAULT_BACKOFF, { minMs: 100, baseMs: 300, maxMs: 10_000 });
  for (let i = 0; i < 3000; i++) {
    const d = backoffDelay(i % 600);
    if (!(d >= 100 && d < 300)) t.fail(`delay out of [100, 300): ${d}`);
  }
  t.equal(backoffCap(1000), 500);
  t.equal(backoffCap(30_000), 10_000, 'a long outage: at most 10 s between attempts');
});

t.test('a gateway that stays down sees logarithmically many attempts per client', async (t) => {
  // Expected delays (mid-range) simulated over a 60 s outage.
  let at = 0;
  let attempts = 0;
  while (at < 60_000) {
    at += backoffDelay(at, DEFAULT_BACKOFF, () => 0.5);
    attempts++;
  }
  t.ok(attempts < 40, `${attempts} attempts over a 60 s outage`);
});

t.test('options cannot set the floor or the cap to zero', async (t) => {
  t.same(backoffPolicy({ minMs: 0, baseMs: 0, maxMs: 0 }), { minMs: MIN_FLOOR_MS, baseMs: MIN_FLOOR_MS, maxMs: MIN_CAP_MS });
  t.same(backoffPolicy({ minMs: -5, baseMs: Number.NaN, maxMs: Infinity }), { minMs: MIN_FLOOR_MS, baseMs: 300, maxMs: 10_000 }, 'non-finite values take the defaults');
  t.same(backoffPolicy({ baseMs: 5_000, maxMs: 2_000 }), { minMs: 100, baseMs: 5_000, maxMs: 5_000 }, 'the cap is at least the first cap');
  t.same(backoffPolicy(), DEFAULT_BACKOFF);
  const zero = backoffPolicy({ minMs: 0, baseMs: 0, maxMs: 0 });
  for (let failingFor = 0; failingFor < 5000; failingFor += 100) {
    if (backoffDelay(failingFor, zero, () => 0) < MIN_FLOOR_MS) t.fail(`failing for ${failingFor} ms: below the floor`);
  }
});

t.test('negative or huge ages stay in range', async (t) => {
  t.equal(backoffCap(-3), DEFAULT_BACKOFF.baseMs);
  t.equal(backoffCap(Number.MAX_SAFE_INTEGER), DEFAULT_BACKOFF.maxMs);
});
