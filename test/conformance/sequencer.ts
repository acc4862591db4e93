/**
 * The Sequencer + Bus contract (daemon/engine/sequencer.ts, daemon/engine/bus.ts) as
 * one suite every implementation runs (memory now, Redis later), in the manner of
 * centrifuge's map_broker_shared_test.go. A factory builds a fresh, isolated pair
 * per subtest (a Redis factory gives each its own key prefix).
 */
import type { Test } from 'tap';
import { decode } from '../../protocol/codec.js';
import type { EventFrame } from '../../protocol/frames.js';
import type { Bus, BusMessage } from '../../daemon/engine/bus.js';
import type { PublishRequest, Sequencer } from '../../daemon/engine/sequencer.js';

/** A sequencer wired to the bus it publishes on. */
export interface SequencerFixture {
  sequencer: Sequencer;
  bus: Bus;
  /** Releases both (and anything else the factory made). */
  close(): Promise<void>;
}

/** What the suite asks of a fixture. */
export interface SequencerFixtureOptions {
  /** History bound of every session. */
  historySize: number;
}

/** Builds a fresh, isolated fixture. */
export type SequencerFactory = (opts: SequencerFixtureOptions) => Promise<SequencerFixture>;

/** Decodes an encoded `ev` frame; throws when it is not one. */
export function eventOf(bytes: Uint8Array): EventFrame {
  const r = decode(bytes);
  if (!r.ok || typeof r.value !== 'object' || r.value === null || (r.value as { t?: unknown }).t !== 'ev') {
    throw new Error(`not an ev frame: ${r.ok ? JSON.stringify(r.value) : r.reason}`);
  }
  return r.value as EventFrame;
}

const ev = (session: string, n: number, extra: Partial<PublishRequest> = {}): PublishRequest => ({ session, type: 'tick', data: { n }, ...extra });

/** Collects what the bus delivers, per session. */
function busRecorder(bus: Bus): BusMessage[] {
  const got: BusMessage[] = [];
  bus.onMessage((msg) => got.push({ ...msg, frame: Uint8Array.from(msg.frame) }));
  return got;
}

/** Waits until `pred` holds (bus delivery may be asynchronous across processes). */
async function eventually(pred: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Runs the shared Sequencer + Bus contract suite against `factory`. */
export function sequencerConformance(t: Test, name: string, factory: SequencerFactory): void {
  const fixture = async (t: Test, historySize = 100): Promise<SequencerFixture> => {
    const f = await factory({ historySize });
    t.teardown(() => f.close());
    return f;
  };

  t.test(`${name}: dense seq from 1 under one epoch, per session`, async (t) => {
    const { sequencer } = await fixture(t);
    const a1 = await sequencer.publish(ev('s:a', 1));
    const a2 = await sequencer.publish(ev('s:a', 2));
    const b1 = await sequencer.publish(ev('s:b', 1));
    const a3 = await sequencer.publish(ev('s:a', 3));
    t.same([a1.seq, a2.seq, a3.seq], [1, 2, 3]);
    t.equal(b1.seq, 1, 'sessions count independently');
    t.same([a1.duplicate, a2.duplicate, a3.duplicate], [false, false, false]);
    t.type(a1.epoch, 'string');
    t.ok(a1.epoch.length > 0 && a1.epoch.length <= 64, 'epoch fits the protocol bound');
    t.equal(a2.epoch, a1.epoch);
    t.equal(a3.epoch, a1.epoch);
    t.same(await sequencer.position('s:a'), { s: 's:a', ep: a1.epoch, seq: 3 });
    const fresh = await sequencer.position('s:new');
    t.equal(fresh.seq, 0, 'an unknown session starts at 0');
    const first = await sequencer.publish(ev('s:new', 1));
    t.equal(first.seq, 1);
    t.equal(first.epoch, fresh.ep, 'position() created the epoch the first event uses');
  });

  t.test(`${name}: concurrent publishes to one session stay dense and ordered on the bus`, async (t) => {
    const { sequencer, bus } = await fixture(t);
    const got = busRecorder(bus);
    await bus.subscribe('s:c');
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => sequencer.publish(ev('s:c', i))));
    t.same(results.map((r) => r.seq).sort((x, y) => x - y), Array.from({ length: 50 }, (_, i) => i + 1), 'each seq once');
    await eventually(() => got.length >= 50);
    t.same(got.map((m) => m.seq), Array.from({ length: 50 }, (_, i) => i + 1), 'the bus sees them in seq order');
  });

  t.test(`${name}: the encoded frame carries the event`, async (t) => {
    const { sequencer, bus } = await fixture(t);
    const got = busRecorder(bus);
    await bus.subscribe('s:f');
    const before = Date.now();
    const r = await sequencer.publish({ session: 's:f', type: 'board', data: { top: ['a', 'b'], raw: Uint8Array.of(1, 2) }, snapshot: 'board', conflate: true });
    const plain = await sequencer.publish({ session: 's:f', type: 'q', data: null, snapshot: 'q' });
    await eventually(() => got.length >= 2);
    const f = eventOf(got[0].frame);
    t.equal(f.s, 's:f');
    t.equal(f.seq, r.seq);
    t.equal(f.ep, r.epoch);
    t.equal(f.type, 'board');
    t.same(f.data, { top: ['a', 'b'], raw: Buffer.from([1, 2]) });
    t.ok(f.ts >= before - 1000 && f.ts <= Date.now() + 1000, 'ts is the sequencing time');
    t.equal(f.k, 'board');
    t.equal(f.c, true);
    t.equal(got[0].conflateKey, 'board', 'the bus message names the conflation key');
    const g = eventOf(got[1].frame);
    t.equal(g.k, 'q');
    t.equal(g.c, undefined, 'not conflatable unless asked');
    t.equal(got[1].conflateKey, undefined);
    t.equal(g.seq, plain.seq);
  });

  t.test(`${name}: an event id is sequenced once; a repeat returns the first outcome`, async (t) => {
    const { sequencer, bus } = await fixture(t);
    const got = busRecorder(bus);
    await bus.subscribe('s:d');
    const first = await sequencer.publish(ev('s:d', 1, { id: 'e1' }));
    await sequencer.publish(ev('s:d', 2));
    const again = await sequencer.publish(ev('s:d', 99, { id: 'e1' }));
    t.same(again, { seq: first.seq, epoch: first.epoch, duplicate: true });
    const other = await sequencer.publish(ev('s:other', 1, { id: 'e1' }));
    t.equal(other.duplicate, false, 'ids are per session');
    const next = await sequencer.publish(ev('s:d', 3));
    t.equal(next.seq, 3, 'the repeat used no seq');
    await eventually(() => got.filter((m) => m.session === 's:d').length >= 3);
    await new Promise((r) => setTimeout(r, 20));
    const seqs = got.filter((m) => m.session === 's:d').map((m) => m.seq);
    t.same(seqs, [1, 2, 3], 'the repeat was not published again');
    const h = await sequencer.history('s:d', { epoch: first.epoch, seq: 0 }, 'u');
    t.same(h.frames.map((b) => (eventOf(b).data as { n: number }).n), [1, 2, 3], 'history holds the first version only');
    const concurrent = await Promise.all(Array.from({ length: 10 }, () => sequencer.publish(ev('s:e', 1, { id: 'same' }))));
    t.equal(concurrent.filter((r) => !r.duplicate).length, 1, 'concurrent repeats: exactly one is sequenced');
    t.ok(concurrent.every((r) => r.seq === 1));
  });

  t.test(`${name}: history after a position returns exactly the later frames, in order`, async (t) => {
    const { sequencer, bus } = await fixture(t);
    const got = busRecorder(bus);
    await bus.subscribe('s:h');
    let epoch = '';
    for (let i = 1; i <= 10; i++) epoch = (await sequencer.publish(ev('s:h', i))).epoch;
    const h = await sequencer.history('s:h', { epoch, seq: 6 }, 'u');
    t.equal(h.recovered, true);
    t.equal(h.epoch, epoch);
    t.equal(h.head, 10);
    t.same(h.frames.map((b) => eventOf(b).seq), [7, 8, 9, 10]);
    await eventually(() => got.length >= 10);
    t.same(h.frames.map((b) => Buffer.from(b)), got.slice(6).map((m) => Buffer.from(m.frame)), 'history holds the very bytes the bus carried');
    const atHead = await sequencer.history('s:h', { epoch, seq: 10 }, 'u');
    t.same([atHead.recovered, atHead.frames.length, atHead.head], [true, 0, 10], 'at the head: recovered, nothing to replay');
    const fromZero = await sequencer.history('s:h', { epoch, seq: 0 }, 'u');
    t.same(fromZero.frames.map((b) => eventOf(b).seq), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 'from 0 while history covers all');
    const ahead = await sequencer.history('s:h', { epoch, seq: 11 }, 'u');
    t.equal(ahead.recovered, false, 'a position beyond the head is not recoverable');
  });

  t.test(`${name}: positions older than the history bound or from another epoch get the snapshot`, async (t) => {
    const { sequencer } = await fixture(t, 5);
    let epoch = '';
    for (let i = 1; i <= 12; i++) epoch = (await sequencer.publish(ev('s:b', i, i % 4 === 0 ? { snapshot: 'q' } : {}))).epoch;
    const within = await sequencer.history('s:b', { epoch, seq: 7 }, 'u');
    t.equal(within.recovered, true, 'the oldest kept event is 8: seq 7 is still covered');
    t.same(within.frames.map((b) => eventOf(b).seq), [8, 9, 10, 11, 12]);
    const old = await sequencer.history('s:b', { epoch, seq: 6 }, 'u');
    t.equal(old.recovered, false, 'seq 7 fell out of the bound');
    t.same(old.frames, []);
    t.equal(old.head, 12);
    t.equal(old.snapshot?.q?.seq, 12, 'the snapshot holds the latest value of each key');
    t.same(old.snapshot?.q?.data, { n: 12 });
    t.equal(old.snapshot?.q?.type, 'tick');
    t.type(old.snapshot?.q?.ts, 'number');
    const wrongEpoch = await sequencer.history('s:b', { epoch: `${epoch}x`, seq: 11 }, 'u');
    t.equal(wrongEpoch.recovered, false, 'another epoch is never recovered');
    t.equal(wrongEpoch.epoch, epoch, 'the reply names the current epoch');
    t.equal(wrongEpoch.snapshot?.q?.seq, 12);
    const fresh = await sequencer.history('s:b', null, 'u');
    t.same([fresh.recovered, fresh.head, fresh.frames.length], [false, 12, 0], 'no position: the snapshot, at the head');
    t.equal(fresh.snapshot?.q?.seq, 12);
    const empty = await sequencer.history('s:nothing', null, 'u');
    t.same([empty.recovered, empty.head], [false, 0]);
    t.same(empty.snapshot ?? {}, {}, 'a session without snapshot keys has an empty snapshot');
  });

  t.test(`${name}: a session without history always answers with the snapshot`, async (t) => {
    const { sequencer } = await fixture(t, 0);
    const r = await sequencer.publish(ev('s:z', 1, { snapshot: 'k' }));
    await sequencer.publish(ev('s:z', 2));
    const h = await sequencer.history('s:z', { epoch: r.epoch, seq: 1 }, 'u');
    t.equal(h.recovered, false);
    t.equal(h.snapshot?.k?.seq, 1);
    const atHead = await sequencer.history('s:z', { epoch: r.epoch, seq: 2 }, 'u');
    t.equal(atHead.frames.length, 0, 'at the head nothing is missing');
  });

  t.test(`${name}: frames addressed to users are filtered per user in history`, async (t) => {
    const { sequencer, bus } = await fixture(t);
    const got = busRecorder(bus);
    await bus.subscribe('s:to');
    const first = await sequencer.publish(ev('s:to', 1));
    await sequencer.publish(ev('s:to', 2, { to: ['bob'] }));
    await sequencer.publish(ev('s:to', 3, { to: ['alice', 'bob'] }));
    await sequencer.publish(ev('s:to', 4));
    const since = { epoch: first.epoch, seq: 0 };
    const seqsFor = async (user: string) => (await sequencer.history('s:to', since, user)).frames.map((b) => eventOf(b).seq);
    t.same(await seqsFor('alice'), [1, 3, 4]);
    t.same(await seqsFor('bob'), [1, 2, 3, 4]);
    t.same(await seqsFor('carol'), [1, 4]);
    t.equal((await sequencer.history('s:to', since, 'carol')).head, 4, 'the head counts every event');
    await eventually(() => got.length >= 4);
    t.same(got.map((m) => m.to), [undefined, ['bob'], ['alice', 'bob'], undefined], 'the bus carries the recipients');
  });

  t.test(`${name}: snapshot keys per user`, async (t) => {
    const { sequencer } = await fixture(t);
    await sequencer.publish({ session: 's:k', type: 'q', data: 'question 1', snapshot: 'question' });
    await sequencer.publish({ session: 's:k', type: 'r', data: 'bob: right', snapshot: 'result', to: ['bob'] });
    await sequencer.publish({ session: 's:k', type: 'r', data: 'everyone', snapshot: 'score' });
    await sequencer.publish({ session: 's:k', type: 's', data: 'alice: 3', snapshot: 'score', to: ['alice'] });
    await sequencer.publish({ session: 's:k', type: 'q', data: 'question 2', snapshot: 'question' });
    const snap = async (user: string) => (await sequencer.history('s:k', null, user)).snapshot ?? {};
    const alice = await snap('alice');
    const bob = await snap('bob');
    const carol = await snap('carol');
    t.same(Object.keys(alice).sort(), ['question', 'score']);
    t.equal(alice.score.data, 'alice: 3', "a user's own value of a key wins over the shared one");
    t.equal(alice.question.data, 'question 2', 'the latest shared value');
    t.same(Object.keys(bob).sort(), ['question', 'result', 'score']);
    t.equal(bob.result.data, 'bob: right');
    t.equal(bob.score.data, 'everyone');
    t.same(Object.keys(carol).sort(), ['question', 'score']);
    t.equal(carol.score.data, 'everyone');
  });

  t.test(`${name}: the bus delivers subscribed sessions only, until unsubscribed`, async (t) => {
    const { sequencer, bus } = await fixture(t);
    const got = busRecorder(bus);
    await sequencer.publish(ev('s:early', 1));
    await bus.subscribe('s:x');
    for (let i = 1; i <= 20; i++) {
      await sequencer.publish(ev('s:x', i));
      await sequencer.publish(ev('s:y', i));
    }
    await eventually(() => got.length >= 20);
    await new Promise((r) => setTimeout(r, 20));
    t.ok(got.every((m) => m.session === 's:x'), 'only the subscribed session');
    t.same(got.map((m) => m.seq), Array.from({ length: 20 }, (_, i) => i + 1), 'every frame, in order, once');
    await bus.unsubscribe('s:x');
    await sequencer.publish(ev('s:x', 21));
    await new Promise((r) => setTimeout(r, 50));
    t.equal(got.length, 20, 'nothing after unsubscribe');
  });
}
