// The lag queue of a connection (daemon/shard/outbound-queue.ts): FIFO order,
// conflation of frames with the same session and key, byte accounting, and the
// compaction that keeps a long-lived queue from growing without bound.
import t from 'tap';
import { OutboundQueue } from '../../daemon/shard/outbound-queue.js';
import { shardDrops } from '../../daemon/shard/shard-counters.js';

const bytes = (n: number) => new Uint8Array(n);

function drain(q: OutboundQueue): Array<[string, number]> {
  const out: Array<[string, number]> = [];
  for (let item = q.shift(); item !== undefined; item = q.shift()) out.push([item.session, item.seq]);
  return out;
}

t.test('plain frames keep their order; bytes and length track the content', async (t) => {
  const q = new OutboundQueue();
  t.equal(q.shift(), undefined, 'an empty queue shifts nothing');
  for (let i = 1; i <= 10; i++) q.push(bytes(i), 's', i);
  t.equal(q.length, 10);
  t.equal(q.bytes, 55);
  const first = q.shift();
  t.same([first?.seq, first?.frame.length], [1, 1]);
  t.equal(q.bytes, 54);
  t.equal(q.length, 9);
  t.same(drain(q).map(([, s]) => s), [2, 3, 4, 5, 6, 7, 8, 9, 10]);
  t.same([q.length, q.bytes], [0, 0]);
});

t.test('a conflatable frame replaces the queued one of the same session and key', async (t) => {
  const q = new OutboundQueue();
  q.push(bytes(100), 's', 1, 'board');
  q.push(bytes(10), 's', 2);
  q.push(bytes(100), 's2', 3, 'board');
  q.push(bytes(120), 's', 4, 'board');
  q.push(bytes(10), 's', 5, 'other');
  q.push(bytes(130), 's', 6, 'board');
  t.equal(q.length, 4, 'two board frames of s were replaced');
  t.equal(q.conflated, 2);
  t.equal(q.bytes, 10 + 100 + 10 + 130, 'replaced frames no longer count');
  t.same(drain(q), [['s', 2], ['s2', 3], ['s', 5], ['s', 6]], 'seq order kept: the newest takes the place at the end');
  t.same([q.length, q.bytes], [0, 0]);
});

t.test('a key whose frame was already sent starts a new slot', async (t) => {
  const q = new OutboundQueue();
  q.push(bytes(5), 's', 1, 'k');
  q.push(bytes(5), 's', 2);
  t.equal(q.shift()?.seq, 1, 'the first board frame went out');
  q.push(bytes(5), 's', 3, 'k');
  q.push(bytes(5), 's', 4, 'k');
  t.equal(q.conflated, 1, 'only the queued one was replaced, not the sent one');
  t.same(drain(q).map(([, s]) => s), [2, 4]);
});

t.test('frames without a key are never dropped', async (t) => {
  const q = new OutboundQueue();
  for (let i = 1; i <= 100; i++) q.push(bytes(1), 's', i, i % 2 === 0 ? 'k' : undefined);
  const got = drain(q).map(([, s]) => s);
  t.same(got.filter((s) => s % 2 === 1), Array.from({ length: 50 }, (_, i) => 2 * i + 1), 'every plain frame');
  t.same(got.filter((s) => s % 2 === 0), [100], 'only the newest keyed frame');
  t.same(got, [...got].sort((a, b) => a - b), 'in seq order');
});

t.test('compaction past 1024 shifted items keeps order, slots and accounting', async (t) => {
  const q = new OutboundQueue();
  let seq = 0;
  const expected: number[] = [];
  // 3000 frames, every tenth one a conflatable leaderboard.
  const pushOne = () => {
    seq++;
    const keyed = seq % 10 === 0;
    q.push(bytes(keyed ? 7 : 3), 's', seq, keyed ? 'board' : undefined);
  };
  for (let i = 0; i < 3000; i++) pushOne();
  let shifted = 0;
  for (let i = 0; i < 2500; i++) {
    const item = q.shift();
    if (item === undefined) break;
    expected.push(item.seq);
    shifted++;
    if (i % 3 === 0) pushOne(); // keep pushing while draining, across compactions
  }
  t.ok(shifted > 1024, `shifted ${shifted} items`);
  // After compactions, a new board frame must still replace the queued one.
  const queuedBefore = q.length;
  const conflatedBefore = q.conflated;
  q.push(bytes(7), 's', ++seq, 'board');
  t.equal(q.conflated, conflatedBefore + 1, 'the slot still points at the queued board frame after compaction');
  t.equal(q.length, queuedBefore, 'replaced, not added');
  let sum = 0;
  const rest: number[] = [];
  for (let item = q.shift(); item !== undefined; item = q.shift()) {
    rest.push(item.seq);
    sum += item.frame.length;
  }
  const all = [...expected, ...rest];
  t.same(all, [...all].sort((a, b) => a - b), 'strictly in seq order overall');
  t.equal(new Set(all).size, all.length, 'no frame twice');
  t.ok(rest.filter((s) => s % 10 === 0 || s === seq).length <= 1, 'at most one board frame was queued at the end');
  t.equal(all.filter((s) => s % 10 !== 0 && s !== seq).length, seq - Math.floor(seq / 10) - (seq % 10 === 0 ? 0 : 1), 'every plain frame delivered');
  t.same([q.length, q.bytes], [0, 0], 'accounting back to zero');
  t.ok(sum > 0);
});

t.test('conflation and discarded queues are counted by reason under each frame\'s namespace index', async (t) => {
  // shardDrops is this thread's (module state): compare before and after.
  const before = shardDrops.snapshot();
  const delta = (reason: 'conflated' | 'slow_consumer', ns: number) => (shardDrops.snapshot()[reason]?.[ns] ?? 0) - (before[reason]?.[ns] ?? 0);
  const q = new OutboundQueue();
  q.push(bytes(5), 'poll:1', 1, 'tally', 3);
  q.push(bytes(5), 'poll:1', 2, 'tally', 3);
  q.push(bytes(5), 'poll:1', 3, 'tally', 3);
  q.push(bytes(5), 'room', 4, undefined, 0);
  q.push(bytes(5), 'quiz:1', 5, 'board', 1);
  t.equal(delta('conflated', 3), 2, 'two tallies replaced, counted under namespace 3');
  t.equal(delta('conflated', 0) + delta('conflated', 1), 0, 'nothing conflated elsewhere');
  t.equal(q.discard('slow_consumer'), 3, 'three frames were left: the latest tally, the room frame, the board');
  t.same([delta('slow_consumer', 3), delta('slow_consumer', 0), delta('slow_consumer', 1)], [1, 1, 1], 'each counted under its namespace');
  t.same([q.length, q.bytes, q.shift()], [0, 0, undefined], 'the queue is empty after');
});
