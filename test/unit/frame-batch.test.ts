// Frame batches between the primary and a shard (daemon/threads/frame-batch.ts):
// everything written (frames and resync markers) comes back exactly, in order,
// across growth of the buffer and after the batch is taken and the writer reused.
import { MessageChannel } from 'node:worker_threads';
import t from 'tap';
import { FrameBatchWriter, readFrameBatch, type RoutedFrame } from '../../daemon/threads/frame-batch.js';

interface Resync {
  session: string;
  epoch: string;
  head: number;
}

type Entry = { frame: RoutedFrame } | { resync: Resync };

/** Every entry of a batch, in order. */
function entries(batch: ArrayBuffer): Entry[] {
  const out: Entry[] = [];
  readFrameBatch(batch, {
    frame: (msg) => out.push({ frame: msg }),
    resync: (session, epoch, head) => out.push({ resync: { session, epoch, head } }),
  });
  return out;
}

/** The frames of a batch that holds frames only (a resync entry throws). */
function read(batch: ArrayBuffer): RoutedFrame[] {
  const out: RoutedFrame[] = [];
  readFrameBatch(batch, {
    frame: (msg) => out.push(msg),
    resync: (session) => {
      throw new Error(`unexpected resync entry for ${session}`);
    },
  });
  return out;
}

function plain(msg: RoutedFrame) {
  return { session: msg.session, seq: msg.seq, frame: Buffer.from(msg.frame).toString('hex'), to: msg.to, conflateKey: msg.conflateKey };
}

function plainEntry(e: Entry) {
  return 'frame' in e ? { frame: plain(e.frame) } : e;
}

function frameOf(n: number, size: number): Uint8Array {
  const f = new Uint8Array(size);
  for (let i = 0; i < size; i++) f[i] = (n * 31 + i) & 0xff;
  return f;
}

t.test('round trip of many entries with every optional part', async (t) => {
  const w = new FrameBatchWriter();
  const sent: RoutedFrame[] = [];
  for (let i = 0; i < 2000; i++) {
    const msg: RoutedFrame = { session: `quiz:${i % 7}`, seq: i + 1, frame: frameOf(i, 1 + (i % 300)) };
    if (i % 3 === 0) msg.to = [`user${i}`, `user${i + 1}`];
    if (i % 5 === 0) msg.conflateKey = `board${i % 2}`;
    if (i % 11 === 0) msg.to = [];
    w.add(msg);
    sent.push(msg);
  }
  t.equal(w.size, 2000);
  const batch = w.take();
  t.equal(w.size, 0, 'taking starts a new batch');
  const got = read(batch);
  t.equal(got.length, 2000);
  t.same(got.map(plain), sent.map(plain), 'every entry comes back exactly, in order');
});

t.test('seq values: 0 (presence notices) and large seqs survive', async (t) => {
  const w = new FrameBatchWriter();
  const seqs = [0, 1, 2 ** 31, 2 ** 32 + 5, Number.MAX_SAFE_INTEGER];
  for (const seq of seqs) w.add({ session: 's', seq, frame: Uint8Array.of(seq % 256) });
  t.same(read(w.take()).map((m) => m.seq), seqs);
});

t.test('unicode session ids, recipients and keys', async (t) => {
  const w = new FrameBatchWriter();
  const weird = ['ü', '日本語のセッション', '😀👍🏽', 'a\u0000b', 'x'.repeat(128), '\uD83D'];
  for (const [i, s] of weird.entries()) {
    w.add({ session: s, seq: i + 1, frame: Uint8Array.of(i), to: [s, `${s}-2`], conflateKey: `${s}!` });
  }
  const got = read(w.take());
  // A lone surrogate cannot be UTF-8: it becomes U+FFFD, like every TextEncoder would make it.
  const expect = weird.map((s) => (s === '\uD83D' ? '\uFFFD' : s));
  t.same(got.map((m) => m.session), expect);
  t.same(got.map((m) => m.to), expect.map((s) => [s, `${s}-2`]));
  t.same(got.map((m) => m.conflateKey), expect.map((s) => `${s}!`));
});

t.test('big frames force the buffer to grow, without losing earlier entries', async (t) => {
  const w = new FrameBatchWriter();
  const sizes = [10, 70 * 1024, 5, 300 * 1024, 1024 * 1024 + 3, 1];
  for (const [i, size] of sizes.entries()) w.add({ session: `s:${i}`, seq: i + 1, frame: frameOf(i, size) });
  const batch = w.take();
  const got = read(batch);
  t.same(got.map((m) => m.frame.length), sizes);
  for (const [i, m] of got.entries()) t.ok(Buffer.from(m.frame).equals(Buffer.from(frameOf(i, sizes[i]))), `frame ${i} intact`);
  t.ok(got.every((m) => m.frame.buffer === batch), 'frames are views into the batch, not copies');
  t.ok(batch.byteLength < 1024 * 1024 + 400 * 1024, `the taken batch is exact-size (${batch.byteLength} bytes)`);
});

t.test('the writer is reusable after take; batches are independent', async (t) => {
  const w = new FrameBatchWriter();
  w.add({ session: 'a', seq: 1, frame: frameOf(1, 50_000) });
  const first = w.take();
  w.add({ session: 'b', seq: 2, frame: Uint8Array.of(9, 9) });
  const second = w.take();
  t.same(read(first).map(plain), [{ session: 'a', seq: 1, frame: Buffer.from(frameOf(1, 50_000)).toString('hex'), to: undefined, conflateKey: undefined }]);
  t.same(read(second).map((m) => [m.session, m.seq, [...m.frame]]), [['b', 2, [9, 9]]], 'the second batch holds only its own entry');
  t.equal(read(w.take()).length, 0, 'an empty batch reads as nothing');
  t.equal(w.take().byteLength, 0);
});

t.test('a batch survives transfer to another thread intact', async (t) => {
  const w = new FrameBatchWriter();
  w.add({ session: 'quiz:1', seq: 5, frame: frameOf(5, 1000), to: ['u1'], conflateKey: 'k' });
  const batch = w.take();
  const { port1, port2 } = new MessageChannel();
  const received = new Promise<ArrayBuffer>((resolve) => port2.once('message', resolve));
  port1.postMessage(batch, [batch]);
  const moved = await received;
  port1.close();
  port2.close();
  t.equal(batch.byteLength, 0, 'transferred, not cloned');
  const [m] = read(moved);
  t.same([m.session, m.seq, m.to, m.conflateKey, m.frame.length], ['quiz:1', 5, ['u1'], 'k', 1000]);
});

t.test('resync entries round-trip interleaved with frames, in order', async (t) => {
  const w = new FrameBatchWriter();
  const epochs = ['3f2a9c1d0e7b', 'épöque-ü', '日本語のエポック', '😀👍🏽-ep', '', 'e'.repeat(64)];
  const heads = [0, 1, 127, 2 ** 31, 2 ** 32 + 5, 2 ** 53 - 1];
  const sent: Entry[] = [];
  let r = 0;
  for (let i = 0; i < 300; i++) {
    if (i % 4 === 1) {
      const resync = { session: r % 2 === 0 ? 'セッション:1' : `quiz:${i % 5}`, epoch: epochs[r % epochs.length], head: heads[(r * 5) % heads.length] };
      r++;
      w.addResync(resync.session, resync.epoch, resync.head);
      sent.push({ resync });
    } else {
      const msg: RoutedFrame = { session: `quiz:${i % 5}`, seq: i + 1, frame: frameOf(i, 1 + (i % 40)), ...(i % 3 === 0 ? { to: ['u1'], conflateKey: 'k' } : {}) };
      w.add(msg);
      sent.push({ frame: msg });
    }
  }
  const got = entries(w.take());
  t.equal(got.length, 300);
  t.equal(got.filter((e) => 'resync' in e).length, 75, 'every resync came back');
  t.same(got.map(plainEntry), sent.map(plainEntry), 'frames and resyncs come back exactly, in the order written');
  const resyncs = got.flatMap((e) => ('resync' in e ? [e.resync] : []));
  t.same(
    [...new Set(resyncs.map((r) => r.head))].sort((a, b) => a - b),
    heads,
    'heads up to 2^53-1 survive',
  );
  t.same(
    [...new Set(resyncs.map((r) => r.epoch))].sort(),
    [...epochs].sort(),
    'epochs in multi-byte UTF-8 survive',
  );
});

t.test('a batch holding only a resync is not empty', async (t) => {
  const w = new FrameBatchWriter();
  w.addResync('s:1', 'ép😀', Number.MAX_SAFE_INTEGER);
  t.equal(w.size, 1, 'the resync counts, so the batch is sent');
  t.same(entries(w.take()), [{ resync: { session: 's:1', epoch: 'ép😀', head: Number.MAX_SAFE_INTEGER } }]);
  t.equal(w.size, 0);
  t.same(entries(w.take()), []);
});
