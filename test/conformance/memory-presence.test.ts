// The shared Presence suite on the standalone engine's in-memory presence table,
// plus what only it promises: the default lease of an owner that never refreshed
// is its `leaseMs` option.
import t from 'tap';
import { createMemoryPresence } from '../../daemon/engine/memory-presence.js';
import { presenceConformance } from './presence.js';

presenceConformance(t, 'memory', async ({ now }) => createMemoryPresence({ now }));

t.test('memory: an owner that never refreshed holds the default lease', async (t) => {
  let time = 0;
  const p = createMemoryPresence({ now: () => time, leaseMs: 500 });
  t.teardown(() => p.close());
  await p.join('s:1', 'alice', 'i/0/1');
  time = 499;
  t.same(await p.list('s:1'), [{ u: 'alice', n: 1 }]);
  time = 500;
  t.same(await p.list('s:1'), [], 'lapsed after leaseMs');
  t.same(await p.expire(), [{ session: 's:1', user: 'alice' }]);
});

t.test('memory: the default lease is 30 s and must be a positive integer', async (t) => {
  let time = 0;
  const p = createMemoryPresence({ now: () => time });
  t.teardown(() => p.close());
  await p.join('s:1', 'alice', 'i/0/1');
  time = 29_999;
  t.equal((await p.list('s:1')).length, 1);
  time = 30_000;
  t.equal((await p.list('s:1')).length, 0);
  t.throws(() => createMemoryPresence({ leaseMs: 0 }), RangeError);
});
