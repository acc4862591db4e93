// Instance-wide connection caps (daemon/primary/admissions.ts): totals and per-user
// counts span shards; releases are by connection id, exact and idempotent, so a
// connection released without ever having been admitted (or twice) frees nothing,
// and one admitted after its shard gave up waiting is released when it closes.
// Each admitted user holds a rate slot (threads/user-rates.ts) while it has
// connections: released on every one of those paths, reset before it is reused.
import t from 'tap';
import { Admissions } from '../../daemon/primary/admissions.js';
import { takeUserFrame } from '../../daemon/threads/user-rates.js';

t.test('per-user cap spans shards; a release frees a place', async (t) => {
  const a = new Admissions(100, 2);
  t.match(a.admit(0, 'u', 'c1'), { admitted: true });
  t.match(a.admit(1, 'u', 'c2'), { admitted: true });
  const third = a.admit(1, 'u', 'c3');
  t.equal(third.admitted, false, 'third connection of the same user refused, whatever the shard');
  t.match(third, { reason: /2 connections/ });
  t.match(a.admit(0, 'v', 'c4'), { admitted: true }, 'other users are unaffected');
  a.release('c1');
  t.match(a.admit(0, 'u', 'c5'), { admitted: true }, 'admitted again after a release');
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
  t.match(a.admit(0, 'c', 'z'), { admitted: true });
  t.match(a.admit(0, 'c', 'z'), { admitted: true }, 'asking again for a counted connection counts it once');
  t.equal(a.connections, 2);
});

t.test('an admission the shard stopped waiting for is released by the close that follows it', async (t) => {
  // The shard asks, times out, closes the socket and sends release; the primary,
  // late, processes admit then release in port order.
  const a = new Admissions(10, 1);
  t.match(a.admit(0, 'u', 'late'), { admitted: true }, 'the late admission counted');
  a.release('late');
  t.equal(a.of('u'), 0, 'and the close released it');
  t.match(a.admit(1, 'u', 'next'), { admitted: true }, 'the user is not locked out (4003 with none open)');
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

t.test('rate slots: one per user across its connections and shards, freed with the last connection', async (t) => {
  const a = new Admissions(100, 5);
  const first = a.admit(0, 'u', 'c1');
  const second = a.admit(1, 'u', 'c2');
  const other = a.admit(0, 'v', 'c3');
  if (!first.admitted || !second.admitted || !other.admitted) throw new Error('all admitted');
  t.equal(second.slot, first.slot, "the user's connections share its slot, whatever the shard");
  t.not(other.slot, first.slot, 'another user has its own');
  t.match(a.admit(0, 'u', 'c1'), { admitted: true, slot: first.slot }, 'asking again answers the same slot');
  t.equal(a.slotsInUse, 2);
  a.release('c1');
  t.equal(a.slotOf('u'), first.slot, 'held while a connection is left');
  a.release('c2');
  t.equal(a.slotOf('u'), undefined, 'freed with the last one');
  t.equal(a.slotsInUse, 1);
});

t.test('rate slots: a crashed shard or a late admission frees them too; a reused slot starts fresh', async (t) => {
  const a = new Admissions(100, 5);
  const table = new Int32Array(a.userRates);
  const now = 1_750_000_000_500;
  const held = a.admit(0, 'u', 's0-a');
  a.admit(0, 'u', 's0-b');
  if (!held.admitted) throw new Error('admitted');
  for (let i = 0; i < 3; i++) t.ok(takeUserFrame(table, held.slot, now, 3), `frame ${i + 1} of 3`);
  t.notOk(takeUserFrame(table, held.slot, now, 3), 'the user is at its limit');
  a.dropShard(0);
  t.equal(a.slotsInUse, 0, 'the crashed shard held all its connections: slot freed');
  const next = a.admit(1, 'w', 'late');
  if (!next.admitted) throw new Error('admitted');
  t.equal(next.slot, held.slot, 'the freed slot is handed out again');
  t.ok(takeUserFrame(table, next.slot, now, 3), 'reset: the new user has its full budget in the same window');
  a.release('late');
  t.equal(a.slotsInUse, 0, 'an admission the shard gave up on frees its slot with the close that follows');
});

t.test('rate slots: never more than the connection cap, always one for an admitted user', async (t) => {
  const a = new Admissions(3, 1);
  for (const u of ['a', 'b', 'c']) t.match(a.admit(0, u, u), { admitted: true });
  t.equal(new Int32Array(a.userRates).length, 6, 'two Int32s per possible connection');
  a.release('b');
  t.match(a.admit(0, 'd', 'd'), { admitted: true, slot: 1 }, "b's slot");
  t.match(a.admit(0, 'e', 'e'), { admitted: false }, 'the connection cap refuses before slots could run out');
});
