// daemon/engine/fifo.ts: order, peek/last, and order kept across the cuts of the consumed prefix.
import t from 'tap';
import { Fifo } from '../../daemon/engine/fifo.js';

t.test('first in, first out, across cuts of the consumed prefix', async (t) => {
  const q = new Fifo<number>();
  t.equal(q.shift(), undefined);
  t.equal(q.last(), undefined);
  for (let i = 0; i < 1000; i++) q.push(i);
  const out: number[] = [];
  for (let i = 0; i < 700; i++) {
    out.push(q.shift()!);
    if (i % 3 === 0) q.push(1000 + i);
  }
  t.same(out, Array.from({ length: 700 }, (_, i) => i), 'shifted in push order');
  t.equal(q.peek(), 700, 'peek: the oldest');
  t.equal(q.last(), 1000 + 699, 'last: the newest');
  t.equal(q.size, 300 + 234);
  while (q.size > 0) q.shift();
  t.equal(q.peek(), undefined, 'empty again');
  q.push(5);
  t.same([q.peek(), q.last(), q.size], [5, 5, 1]);
  q.push(6);
  q.shift();
  q.prepend([3, 4]);
  const rest: number[] = [];
  while (q.size > 0) rest.push(q.shift()!);
  t.same(rest, [3, 4, 6], 'prepend puts items ahead, in their order');
});
