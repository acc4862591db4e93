import t from 'tap';
import { backoffCap, backoffDelay, backoffPolicy, DEFAULT_BACKOFF, MIN_CAP_MS, MIN_FLOOR_MS } from '../../protocol/client/index.js';

t.test('jitter: uniform in [minMs, min(maxMs, baseMs * 1.5^attempt))', async (t) => {
  const policy = { minMs: 100, baseMs: 200, maxMs: 1000 };
  const caps = [200, 300, 450, 675, 1000, 1000];
  caps.forEach((cap, attempt) => {
    t.equal(backoffCap(attempt, policy), cap, `attempt ${attempt}: cap ${cap}`);
    t.equal(backoffDelay(attempt, policy, () => 0), 100, `attempt ${attempt}: lowest is the floor`);
    t.equal(backoffDelay(attempt, policy, () => 0.5), 100 + Math.floor((cap - 100) / 2), `attempt ${attempt}: middle`);
    t.equal(backoffDelay(attempt, policy, () => 0.999999), cap - 1, `attempt ${attempt}: highest is just under ${cap}`);
  });
});

t.test('the first attempt after a loss comes within a few hundred ms by default', async (t) => {
  t.same(DEFAULT_BACKOFF, { minMs: 100, baseMs: 300, maxMs: 10_000 });
  for (let i = 0; i < 1000; i++) {
    const d = backoffDelay(0);
    if (!(d >= 100 && d < 300)) t.fail(`first delay out of [100, 300): ${d}`);
  }
});

t.test('options cannot set the floor or the cap to zero', async (t) => {
  t.same(backoffPolicy({ minMs: 0, baseMs: 0, maxMs: 0 }), { minMs: MIN_FLOOR_MS, baseMs: MIN_FLOOR_MS, maxMs: MIN_CAP_MS });
  t.same(backoffPolicy({ minMs: -5, baseMs: Number.NaN, maxMs: Infinity }), { minMs: MIN_FLOOR_MS, baseMs: 300, maxMs: 10_000 }, 'non-finite values take the defaults');
  t.same(backoffPolicy({ baseMs: 5_000, maxMs: 2_000 }), { minMs: 100, baseMs: 5_000, maxMs: 5_000 }, 'the cap is at least the first cap');
  t.same(backoffPolicy(), DEFAULT_BACKOFF);
  const zero = backoffPolicy({ minMs: 0, baseMs: 0, maxMs: 0 });
  for (let attempt = 0; attempt < 50; attempt++) {
    if (backoffDelay(attempt, zero, () => 0) < MIN_FLOOR_MS) t.fail(`attempt ${attempt} below the floor`);
  }
});

t.test('huge attempt numbers stay at maxMs (no Infinity/NaN)', async (t) => {
  t.equal(backoffCap(5000), DEFAULT_BACKOFF.maxMs);
  t.equal(backoffDelay(5000, DEFAULT_BACKOFF, () => 0.999999), DEFAULT_BACKOFF.maxMs - 1);
  t.equal(backoffCap(-3), DEFAULT_BACKOFF.baseMs, 'negative attempts count as 0');
});
