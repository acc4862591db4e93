// Instance-wide connection caps (daemon/primary/admissions.ts): totals and per-user
// counts span shards; releases are by connection id, exact and idempotent, so a
// connection released without ever having been admitted (or twice) frees nothing,
// and one admitted after its shard gave up waiting is released when it closes.
import t from 'tap';
import { Admissions } from '../../daemon/primary/admissions.js';

t.test('per-user cap spans shards; a release frees a place', async (t) => {
  const a = new Admissions(100, 2);
  t.same(a.admit(0, 'u', 'c1'), { admitted: true });
  t.same(a.admit(1, 'u', 'c2'), { admitted: true });
  const third = a.admit(1, 'u', 'c3');
  t.equal(third.admitted, false, 'third connection of the same user refused, whatever the shard');
  t.match(third, { reason: /2 connections/ });
  t.same(a.admit(0, 'v', 'c4'), { admitted: true }, 'other users are unaffected');
  a.release('c1');
  t.same(a.admit(0, 'u', 'c5'), { admitted: true }, 'admitted again after a release');
  t.equal(a.connections, 3);
});

t.test('total cap; releasing what was never admitted, or twice, changes nothing', async (t) => {
  const a = new Admissions(2, 10);
  a.admit(0, 'a', 'x');
  a.admit(1, 'b', 'y');
  t.match(a.admit(0, 'c', 'z'), { admitted: false, reason: /connection limit/ });
  a.release('z');
  a.release('never');
  t.equal(a.connections, 2, 'unknown connections release nothing');
  a.release('y');
  a.release('y');
  t.equal(a.connections, 1, 'a second release of the same connection frees nothing more');
  t.same(a.admit(0, 'c', 'z'), { admitted: true });
  t.same(a.admit(0, 'c', 'z'), { admitted: true }, 'asking again for a counted connection counts it once');
  t.equal(a.connections, 2);
});

t.test('an admission the shard stopped waiting for is released by the close that follows it', async (t) => {
  // The shard asks, times out, closes the socket and sends release; the primary,
  // late, processes admit then release in port order.
  const a = new Admissions(10, 1);
  t.same(a.admit(0, 'u', 'late'), { admitted: true }, 'the late admission counted');
  a.release('late');
  t.equal(a.of('u'), 0, 'and the close released it');
  t.same(a.admit(1, 'u', 'next'), { admitted: true }, 'the user is not locked out (4003 with none open)');
});

t.test('a crashed shard releases all its connections at once', async (t) => {
  const a = new Admissions(100, 5);
  for (let i = 0; i < 3; i++) a.admit(0, 'u', `s0-${i}`);
  a.admit(1, 'u', 's1-0');
  a.dropShard(0);
  t.equal(a.connections, 1);
  t.equal(a.of('u'), 1);
  a.release('s0-1');
  t.equal(a.connections, 1, 'a release after the drop frees nothing more');
});
