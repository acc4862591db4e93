// Instance-wide connection caps (daemon/primary/admissions.ts): totals and per-user
// counts span shards, releases free places, a crashed shard's connections go at once.
import t from 'tap';
import { Admissions } from '../../daemon/primary/admissions.js';

t.test('per-user cap spans shards; a release frees a place', async (t) => {
  const a = new Admissions(100, 2);
  t.same(a.admit(0, 'u'), { admitted: true });
  t.same(a.admit(1, 'u'), { admitted: true });
  const third = a.admit(1, 'u');
  t.equal(third.admitted, false, 'third connection of the same user refused, whatever the shard');
  t.match(third, { reason: /2 connections/ });
  t.same(a.admit(0, 'v'), { admitted: true }, 'other users are unaffected');
  a.release(0, 'u');
  t.same(a.admit(0, 'u'), { admitted: true }, 'admitted again after a release');
  t.equal(a.connections, 3);
});

t.test('total cap; releasing what was never admitted changes nothing', async (t) => {
  const a = new Admissions(2, 10);
  a.admit(0, 'a');
  a.admit(1, 'b');
  t.match(a.admit(0, 'c'), { admitted: false, reason: /connection limit/ });
  a.release(1, 'zzz');
  a.release(0, 'b');
  t.equal(a.connections, 2, 'a release on the wrong shard is ignored');
  a.release(1, 'b');
  t.same(a.admit(0, 'c'), { admitted: true });
});

t.test('dropping a crashed shard releases all it held', async (t) => {
  const a = new Admissions(10, 2);
  a.admit(1, 'u');
  a.admit(1, 'u');
  a.admit(1, 'w');
  a.admit(0, 'w');
  a.dropShard(1);
  t.equal(a.connections, 1);
  t.same(a.admit(0, 'u'), { admitted: true });
  t.same(a.admit(0, 'u'), { admitted: true });
  t.match(a.admit(0, 'w'), { admitted: true }, 'w had one left on shard 0');
  t.match(a.admit(0, 'w'), { admitted: false });
});
