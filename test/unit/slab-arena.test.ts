// The slab arena under the memory journal (daemon/engine/slab-arena.ts): strings
// are copied in and come back intact; slabs are let go once nothing in them is
// live, sparse ones are compacted, and what it holds stays within about four times
// the live bytes whatever the order of frees.
import t from 'tap';
import { SlabArena, type SlabCell } from '../../daemon/engine/slab-arena.js';
import { seededRandom } from '../../daemon/engine/seeded-random.js';

const SLAB = 1024;
const cell = (): SlabCell => ({ data: new Uint8Array(0), slab: null });
const bytes = (n: number, fill: number) => new Uint8Array(n).fill(fill);

t.test('strings are copied in; a slab goes once nothing in it is live and it is no longer the current one', async (t) => {
  const released: number[] = [];
  const arena = new SlabArena((n) => released.push(n), SLAB);
  const input = bytes(100, 1);
  const a = cell();
  arena.store(a, input);
  input.fill(9);
  t.same([...a.data], [...bytes(100, 1)], 'a copy: changing the input does not change what is stored');
  t.equal(arena.held, SLAB, 'one slab held');
  const b = cell();
  arena.store(b, bytes(1000, 2));
  t.equal(arena.held, 2 * SLAB, 'a string that does not fit starts a second slab');
  arena.free(a);
  t.same(released, [SLAB], 'the first slab, no longer current and now empty, is let go');
  t.equal(arena.held, SLAB);
  arena.free(b);
  t.equal(arena.held, SLAB, 'the current slab stays, even empty: the next string goes there');
  t.equal(a.data.length + b.data.length, 0, 'freed cells hold nothing');
});

t.test('a string too long for a slab gets an allocation of its own', async (t) => {
  const released: number[] = [];
  const arena = new SlabArena((n) => released.push(n), SLAB);
  const big = cell();
  arena.store(big, bytes(SLAB + 1, 3));
  t.equal(big.slab, null);
  t.equal(arena.held, SLAB + 1);
  t.equal(big.data[SLAB], 3);
  arena.free(big);
  t.same(released, [SLAB + 1]);
  t.equal(arena.held, 0);
});

t.test('a slab under a quarter live is compacted into the current one', async (t) => {
  const released: number[] = [];
  const arena = new SlabArena((n) => released.push(n), SLAB);
  const first = Array.from({ length: 10 }, (_, i) => {
    const c = cell();
    arena.store(c, bytes(100, i + 1));
    return c;
  });
  const next = cell();
  arena.store(next, bytes(100, 99)); // the second slab
  const firstSlab = first[0].slab;
  for (const c of first.slice(0, 8)) arena.free(c);
  t.same(released, [], 'nothing let go yet: two strings still live in the first slab');
  arena.compact();
  t.same(released, [SLAB], 'compaction let the first slab go');
  t.equal(arena.held, SLAB);
  for (const [i, c] of first.slice(8).entries()) {
    t.not(c.slab, firstSlab, 'moved');
    t.equal(c.slab, next.slab, 'into the current slab');
    t.same([...c.data], [...bytes(100, 9 + i)], 'with its bytes');
  }
});

t.test('under random stores and frees, strings stay intact and the arena holds at most ~4× the live bytes', async (t) => {
  const random = seededRandom(7);
  const arena = new SlabArena(() => {}, SLAB);
  const live: { cell: SlabCell; fill: number; length: number }[] = [];
  let liveBytes = 0;
  let worst = 0;
  // Mostly stores, then mostly frees: the frees leave every slab sparse.
  for (let op = 0; op < 20_000; op++) {
    if (live.length === 0 || random() < (op < 10_000 ? 0.8 : 0.2)) {
      const length = 1 + Math.floor(random() * 200);
      const fill = Math.floor(random() * 256);
      const c = cell();
      arena.store(c, bytes(length, fill));
      live.push({ cell: c, fill, length });
      liveBytes += length;
    } else {
      // Frees anywhere, not only the oldest: the worst case for pinned slabs.
      const [gone] = live.splice(Math.floor(random() * live.length), 1);
      arena.free(gone.cell);
      liveBytes -= gone.length;
    }
    arena.compact();
    worst = Math.max(worst, arena.held - 4 * liveBytes);
  }
  t.ok(worst <= 2 * SLAB, `held ≤ 4 × live + 2 slabs throughout (worst excess ${worst} bytes)`);
  t.ok(
    live.every(({ cell, fill, length }) => cell.data.length === length && cell.data.every((b) => b === fill)),
    'every live string reads back as stored',
  );
});
