import t from 'tap';
import { backoffDelay, DEFAULT_BACKOFF } from '../../protocol/client/index.js';

t.test('full jitter: uniform in [0, min(maxMs, baseMs * 2^attempt))', async (t) => {
  const policy = { baseMs: 100, maxMs: 1000 };
  const caps = [100, 200, 400, 800, 1000, 1000];
  caps.forEach((cap, attempt) => {
    t.equal(backoffDelay(attempt, policy, () => 0), 0, `attempt ${attempt}: lowest is 0`);
    t.equal(backoffDelay(attempt, policy, () => 0.5), cap / 2, `attempt ${attempt}: middle is cap/2`);
    t.equal(backoffDelay(attempt, policy, () => 0.999999), cap - 1, `attempt ${attempt}: highest is just under ${cap}`);
  });
});

t.test('huge attempt numbers stay at maxMs (no Infinity/NaN)', async (t) => {
  t.equal(backoffDelay(5000, DEFAULT_BACKOFF, () => 0.5), DEFAULT_BACKOFF.maxMs / 2);
  t.equal(backoffDelay(-3, DEFAULT_BACKOFF, () => 0.5), DEFAULT_BACKOFF.baseMs / 2, 'negative attempts count as 0');
});

t.test('defaults: 500 ms base, 30 s max; with Math.random values stay in range', async (t) => {
  t.same(DEFAULT_BACKOFF, { baseMs: 500, maxMs: 30_000 });
  for (let i = 0; i < 1000; i++) {
    const d = backoffDelay(i % 12);
    if (!(d >= 0 && d < Math.min(30_000, 500 * 2 ** (i % 12)))) t.fail(`out of range: ${d}`);
  }
});
