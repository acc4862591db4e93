// A user's replay bucket: what one join may take, what the user may take per second
// over all of its joins, refilled with time; a refusal takes nothing; users are apart;
// full buckets are forgotten so idle users cost no memory.
import t from 'tap';
import { ReplayBudgets } from '../../daemon/primary/replay-budgets.js';

t.test('per join, per user per second, refilled with time; a refusal takes nothing', async (t) => {
  // 1,000 bytes/s, bucket of 4,000, at most 3,000 per join.
  const b = new ReplayBudgets(1000, 4000, 3000);
  t.ok(b.take('u', 0, 0), 'an empty replay always passes');
  t.equal(b.size, 0, 'and costs no bucket');
  t.notOk(b.take('u', 3001, 0), 'over the per-join limit: refused');
  t.ok(b.take('u', 3000, 0), 'at it: taken');
  t.notOk(b.take('u', 1001, 0), '1,000 left: 1,001 refused');
  t.ok(b.take('u', 1000, 0), 'the last 1,000 taken (the refusal took nothing)');
  t.notOk(b.take('u', 1, 0), 'spent');
  t.ok(b.take('other', 3000, 0), 'another user has a bucket of its own');
  t.notOk(b.take('u', 501, 500), 'half a second later: 500 back, not 501');
  t.ok(b.take('u', 500, 500), '500 taken');
  t.ok(b.take('u', 3000, 60_000), 'a minute later: full again (4,000, capped), a whole join taken');
});

t.test('buckets that filled up again are forgotten, at most every 10 s', async (t) => {
  const b = new ReplayBudgets(1000, 4000, 4000);
  for (let i = 0; i < 100; i++) t.ok(b.take(`user-${i}`, 2000, 0));
  t.equal(b.size, 100);
  b.take('late', 4000, 15_000);
  t.equal(b.size, 1, '15 s later: the 100 refilled buckets are gone; the one just spent stays');
  t.notOk(b.take('late', 2, 15_001), 'and it is still spent (1 ms refilled 1 byte)');
  t.ok(b.take('user-0', 4000, 15_001), 'a forgotten user starts full');
});
