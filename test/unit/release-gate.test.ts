// The release gate of scheduled events (daemon/primary/release-gate.ts) on a fake
// clock: frames pass at once until one is held; then everything waits in seq order
// until its `at`; adopted history goes ahead of what queued since; the hold is
// bounded.
import t from 'tap';
import type { StreamMessage } from '../../daemon/engine/broker.js';
import { MAX_HELD_FRAMES, ReleaseGate } from '../../daemon/primary/release-gate.js';

const msg = (seq: number, at?: number): StreamMessage => ({ session: 's', epoch: 'e', seq, frame: Uint8Array.of(seq & 0xff), ...(at !== undefined ? { at } : {}) });

function gate(head = 0, clock = { now: 1000 }) {
  const out: number[] = [];
  let overflows = 0;
  const g = new ReleaseGate(head, (m) => out.push(m.seq), () => overflows++, () => clock.now);
  return { g, out, clock, overflows: () => overflows };
}

t.test('frames pass at once; a held one and those after it wait for its at; notices never wait', async (t) => {
  const { g, out, clock } = gate();
  g.push(msg(1));
  g.push(msg(2, 999));
  t.same(out, [1, 2], 'an at already past is no hold');
  g.push(msg(3, 1050)); // the timer waits 50 ms of real time
  g.push(msg(4));
  g.push(msg(0));
  t.same(out, [1, 2, 0], 'held from 3 on; the notice passed');
  t.equal(g.released, 2);
  t.equal(g.held, 2);
  g.push(msg(5));
  t.same(out, [1, 2, 0], 'pushing behind a queue waits for the timer');
  await new Promise((r) => setTimeout(r, 100));
  t.same(out, [1, 2, 0], 'a timer that fires before at (by the gate clock) re-arms');
  clock.now = 1050;
  await new Promise((r) => setTimeout(r, 100));
  t.same(out, [1, 2, 0, 3, 4, 5], 'once at has come, everything goes, in order');
  t.equal(g.released, 5);
  g.close();
});

t.test('the timer releases at at on the real clock', async (t) => {
  const out: number[] = [];
  const g = new ReleaseGate(0, (m) => out.push(m.seq), () => {});
  const at = Date.now() + 80;
  g.push(msg(1, at));
  g.push(msg(2, at + 40));
  t.same(out, []);
  await new Promise((r) => setTimeout(r, 200));
  t.same(out, [1, 2]);
  g.close();
});

t.test('adopt: stored frames from the first still held one go ahead of the queue', async (t) => {
  const { g, out } = gate(5);
  g.push(msg(6, 50_000));
  g.adopt([msg(2), msg(3, 500), msg(4, 9_000), msg(5), msg(6, 50_000)]);
  t.equal(g.released, 3, 'released up to the seq before the first held one');
  t.equal(g.held, 3, '4 and 5 adopted; 6 was queued already and is not taken twice');
  t.same(out, []);
  g.adopt([msg(1), msg(2)]);
  t.equal(g.released, 3, 'nothing held in it: no change');
  g.close();
});

t.test('reset drops what is held; more than MAX_HELD_FRAMES held releases the oldest early', async (t) => {
  const { g, out, overflows } = gate();
  g.push(msg(1, 50_000));
  g.reset(10);
  t.equal(g.released, 10);
  t.equal(g.held, 0);
  g.push(msg(11, 50_000));
  for (let s = 12; s <= 11 + MAX_HELD_FRAMES; s++) g.push(msg(s));
  t.equal(overflows(), 1, 'the overflow is reported');
  t.equal(out[0], 11, 'the held frame went out early rather than the gate grow without bound');
  t.equal(out.length, 1 + MAX_HELD_FRAMES, 'and with nothing else held, the frames behind it too, in order');
  t.ok(out.every((s, i) => s === 11 + i));
  t.equal(g.held, 0);
  g.push(msg(200_000, 50_000));
  g.adopt([]);
  g.close();
  t.equal(g.held, 0);
});
