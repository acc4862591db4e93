// The primary's routing table (daemon/primary/router.ts): session → shards holding
// its subscribers. addInterest reports the session's first shard and removeInterest
// its last (the primary opens and closes the session's stream on those), and a
// crashed shard is forgotten everywhere, naming the sessions it leaves without
// shards. (Opening and closing streams in order is session-streams' business.)
import t from 'tap';
import { Router } from '../../daemon/primary/router.js';

const shardsOf = (router: Router, session: string) => [...(router.shardsFor(session) ?? [])].sort((a, b) => a - b);

t.test('the first shard of a session is reported, and the last to leave', async (t) => {
  const router = new Router();
  t.equal(router.shardsFor('s:1'), undefined);
  t.equal(router.size, 0);
  t.equal(router.addInterest('s:1', 0), true, 'the first shard');
  t.equal(router.addInterest('s:1', 1), false, 'a second shard is not first');
  t.equal(router.addInterest('s:1', 1), false, 'nor is a repeat');
  t.same(shardsOf(router, 's:1'), [0, 1]);
  t.equal(router.size, 1);
  t.equal(router.removeInterest('s:1', 5), false, 'a shard that never came is not the last');
  t.same(shardsOf(router, 's:1'), [0, 1], 'and changes nothing');
  t.equal(router.removeInterest('s:1', 0), false, 'shard 1 still holds subscribers');
  t.same(shardsOf(router, 's:1'), [1]);
  t.equal(router.removeInterest('s:1', 1), true, 'the last shard left');
  t.equal(router.shardsFor('s:1'), undefined);
  t.equal(router.size, 0);
  t.equal(router.removeInterest('s:1', 1), false, 'stray uninterest is harmless');
  t.equal(router.removeInterest('s:never', 3), false);
  t.equal(router.size, 0);
  t.equal(router.addInterest('s:1', 2), true, 'after the last left, the next shard is first again');
  t.same(shardsOf(router, 's:1'), [2]);
});

t.test('several shards per session, several sessions per shard', async (t) => {
  const router = new Router();
  const firsts: string[] = [];
  for (let shard = 0; shard < 4; shard++) {
    for (let s = 0; s < 10; s++) {
      if ((s + shard) % 3 === 0) continue; // every session misses some shards
      if (router.addInterest(`s:${s}`, shard)) firsts.push(`s:${s}`);
    }
  }
  t.same([...firsts].sort(), range(10).map((s) => `s:${s}`).sort(), 'each session had exactly one first shard');
  t.equal(router.size, 10);
  for (let s = 0; s < 10; s++) {
    t.same(
      shardsOf(router, `s:${s}`),
      [0, 1, 2, 3].filter((shard) => (s + shard) % 3 !== 0),
      `s:${s} routes to its shards`,
    );
  }
  const sizeOf = (session: string) => router.shardsFor(session)?.size ?? 0;
  t.equal(sizeOf('s:1'), 3);
  t.equal(router.removeInterest('s:1', 0), false);
  t.equal(router.removeInterest('s:1', 1), false);
  t.equal(router.removeInterest('s:1', 3), true, 's:1 had shards 0, 1, 3');
  t.equal(router.size, 9);
  t.same(shardsOf(router, 's:2'), [0, 2, 3], 'other sessions untouched');
});

t.test('dropShard forgets a shard everywhere and names the orphaned sessions', async (t) => {
  const router = new Router();
  router.addInterest('s:a', 0);
  router.addInterest('s:b', 0);
  router.addInterest('s:b', 1);
  router.addInterest('s:c', 1);
  router.addInterest('s:d', 0);
  t.same([...router.dropShard(0)].sort(), ['s:a', 's:d'], 'the sessions only shard 0 held');
  t.equal(router.shardsFor('s:a'), undefined);
  t.equal(router.shardsFor('s:d'), undefined);
  t.same(shardsOf(router, 's:b'), [1], 's:b stays for shard 1');
  t.same(shardsOf(router, 's:c'), [1]);
  t.equal(router.size, 2);
  t.same(router.dropShard(0), [], 'dropping it again orphans nothing');
  t.same(router.dropShard(7), [], 'nor does an unknown shard');
  t.equal(router.size, 2);
  t.equal(router.addInterest('s:a', 2), true, 'an orphaned session is new again');
  t.equal(router.removeInterest('s:b', 0), false, 'the dropped shard is gone from s:b');
  t.same([...router.dropShard(1)].sort(), ['s:b', 's:c']);
  t.same([...router.dropShard(2)], ['s:a']);
  t.equal(router.size, 0);
});

t.test('a random run agrees with a plain model', async (t) => {
  let seed = 12345;
  const random = (n: number) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return (seed >>> 8) % n;
  };
  const router = new Router();
  const model = new Map<string, Set<number>>();
  let wrong = 0;
  for (let i = 0; i < 5000; i++) {
    const session = `s:${random(12)}`;
    const shard = random(5);
    const op = random(10);
    if (op < 5) {
      const first = !model.has(session);
      if (first) model.set(session, new Set());
      model.get(session)!.add(shard);
      if (router.addInterest(session, shard) !== first) wrong++;
    } else if (op < 9) {
      const set = model.get(session);
      const last = set !== undefined && set.delete(shard) && set.size === 0;
      if (last) model.delete(session);
      if (router.removeInterest(session, shard) !== last) wrong++;
    } else {
      const orphaned: string[] = [];
      for (const [s, set] of model) if (set.delete(shard) && set.size === 0) orphaned.push(s);
      for (const s of orphaned) model.delete(s);
      if ([...router.dropShard(shard)].sort().join() !== orphaned.sort().join()) wrong++;
    }
    if (router.size !== model.size) wrong++;
    if (shardsOf(router, session).join() !== [...(model.get(session) ?? [])].sort((a, b) => a - b).join()) wrong++;
  }
  t.equal(wrong, 0, 'every answer and the table matched the model over 5000 steps');
});

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}
