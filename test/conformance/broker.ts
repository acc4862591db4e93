/**
 * The Broker contract (daemon/engine/broker.ts) as one suite every implementation
 * runs (memory now, Redis later), in the manner of centrifuge's
 * map_broker_shared_test.go. A factory builds a fresh, isolated broker per subtest
 * (a Redis factory gives each its own key prefix); the suite starts it with a
 * handler that records what it delivers.
 *
 * Delivery to subscribers is at-most-once and late. A fixture that says it is
 * `lossless` must deliver every message of a subscribed session; on a lossy one
 * the suite only asks that what arrives comes in seq order, never twice, and that
 * whatever did not arrive is in history.
 */
import type { Test } from 'tap';
import { decode } from '../../protocol/codec.js';
import type { EventFrame } from '../../protocol/frames.js';
import type { Broker, BrokerHandler, PublishRequest, StreamMessage } from '../../daemon/engine/broker.js';

/** A broker the suite starts, and how to release it. */
export interface BrokerFixture {
  /** Not started yet: the suite starts it with its recording handler. */
  broker: Broker;
  /** True when every message of a subscribed session reaches the handler (no network faults). */
  lossless: boolean;
  /** Releases the broker (stopped or not) and anything else the factory made. */
  close(): Promise<void>;
}

/** What the suite asks of a fixture. */
export interface BrokerFixtureOptions {
  /** History bound of every session. */
  historySize: number;
}

/** Builds a fresh, isolated fixture. */
export type BrokerFactory = (opts: BrokerFixtureOptions) => Promise<BrokerFixture>;

/** Decodes an encoded `ev` frame; throws when it is not one. */
export function eventOf(bytes: Uint8Array): EventFrame {
  const r = decode(bytes);
  if (!r.ok || typeof r.value !== 'object' || r.value === null || (r.value as { t?: unknown }).t !== 'ev') {
    throw new Error(`not an ev frame: ${r.ok ? JSON.stringify(r.value) : r.reason}`);
  }
  return r.value as EventFrame;
}

/** What a started broker delivered to its handler. */
export interface Recording {
  messages: StreamMessage[];
  resubscribed: number;
  handler: BrokerHandler;
  /** Messages of one session, in arrival order. */
  of(session: string): StreamMessage[];
}

/** A handler that records every delivery (copying the frame: it may be a view into a reused buffer). */
export function recorder(): Recording {
  const rec: Recording = {
    messages: [],
    resubscribed: 0,
    handler: {
      message(msg) {
        rec.messages.push({ ...msg, frame: Uint8Array.from(msg.frame), ...(msg.to !== undefined ? { to: [...msg.to] } : {}) });
      },
      resubscribed() {
        rec.resubscribed++;
      },
    },
    of: (session) => rec.messages.filter((m) => m.session === session),
  };
  return rec;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Waits until `pred` holds (delivery may be asynchronous across processes). */
export async function eventually(pred: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(5);
  }
}

/**
 * Waits until `done` holds or nothing new arrived for `quietMs` (what a lossy
 * broker dropped never comes); never throws, the assertions after it judge.
 */
async function settle(done: () => boolean, count: () => number, quietMs = 150, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let seen = count();
  let quietSince = Date.now();
  while (!done() && Date.now() < deadline) {
    await sleep(5);
    const n = count();
    if (n !== seen) {
      seen = n;
      quietSince = Date.now();
    } else if (Date.now() - quietSince >= quietMs) {
      return;
    }
  }
}

const ev = (session: string, n: number, extra: Partial<PublishRequest> = {}): PublishRequest => ({ session, type: 'tick', data: { n }, ...extra });
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

interface Started {
  broker: Broker;
  lossless: boolean;
  rec: Recording;
}

/**
 * Waits for the session's events to arrive and checks them against `expected`
 * (the seqs published, in order): all of them on a lossless fixture; in order,
 * none twice, and the missing ones in history on a lossy one. Every delivered event
 * carries `epoch`. Returns the delivered events (notices left out).
 */
async function checkDelivery(t: Test, f: Started, session: string, expected: number[], epoch: string): Promise<StreamMessage[]> {
  const got = () => f.rec.of(session).filter((m) => m.seq > 0);
  const last = expected.at(-1);
  if (f.lossless) {
    await eventually(() => got().length >= expected.length);
    await sleep(20); // a duplicate would come now
    t.same(
      got().map((m) => m.seq),
      expected,
      `${session}: every message arrived, in seq order, once`,
    );
  } else {
    await settle(() => got().some((m) => m.seq === last), () => got().length);
    const seqs = got().map((m) => m.seq);
    t.equal(new Set(seqs).size, seqs.length, `${session}: no message arrived twice`);
    t.ok(
      seqs.every((s, i) => i === 0 || s > seqs[i - 1]),
      `${session}: messages arrived in seq order (${seqs.length} of ${expected.length})`,
    );
    t.same(
      seqs.filter((s) => !expected.includes(s)),
      [],
      `${session}: only published messages arrived`,
    );
    const missing = expected.filter((s) => !seqs.includes(s));
    const h = await f.broker.history(session, { epoch, seq: 0 });
    const kept = new Set(h.entries.map((e) => e.seq));
    t.same(
      missing.filter((s) => !kept.has(s)),
      [],
      `${session}: the ${missing.length} that did not arrive are in history`,
    );
  }
  t.ok(
    got().every((m) => m.epoch === epoch),
    `${session}: every message carries the epoch`,
  );
  return got();
}

/** Runs the shared Broker contract suite against `factory`. */
export function brokerConformance(t: Test, name: string, factory: BrokerFactory): void {
  const fixture = async (t: Test, historySize = 100): Promise<Started> => {
    const f = await factory({ historySize });
    t.teardown(() => f.close());
    const rec = recorder();
    await f.broker.start(rec.handler);
    return { broker: f.broker, lossless: f.lossless, rec };
  };

  t.test(`${name}: dense seq from 1 under one epoch, per session`, async (t) => {
    const { broker } = await fixture(t);
    const a1 = await broker.publish(ev('s:a', 1));
    const a2 = await broker.publish(ev('s:a', 2));
    const b1 = await broker.publish(ev('s:b', 1));
    const a3 = await broker.publish(ev('s:a', 3));
    t.same([a1.seq, a2.seq, a3.seq], [1, 2, 3]);
    t.equal(b1.seq, 1, 'sessions count independently');
    t.same([a1.duplicate, a2.duplicate, a3.duplicate, b1.duplicate], [false, false, false, false]);
    t.type(a1.epoch, 'string');
    t.ok(a1.epoch.length > 0 && a1.epoch.length <= 64, 'epoch fits the protocol bound');
    t.notOk(a1.epoch.startsWith('-'), 'epoch does not look like a command-line option');
    t.equal(a2.epoch, a1.epoch);
    t.equal(a3.epoch, a1.epoch);
    t.same(await broker.position('s:a'), { s: 's:a', ep: a1.epoch, seq: 3 });
    t.same(await broker.position('s:b'), { s: 's:b', ep: b1.epoch, seq: 1 });
  });

  t.test(`${name}: position creates the session`, async (t) => {
    const { broker } = await fixture(t);
    const fresh = await broker.position('s:new');
    t.equal(fresh.s, 's:new');
    t.equal(fresh.seq, 0, 'an unknown session starts at 0');
    t.ok(fresh.ep.length > 0 && fresh.ep.length <= 64, 'with an epoch already');
    const again = await broker.position('s:new');
    t.same(again, fresh, 'a second look finds the same session');
    const h = await broker.history('s:new', { epoch: fresh.ep, seq: 0 });
    t.same([h.epoch, h.head, h.complete, h.entries.length], [fresh.ep, 0, true, 0], 'history knows the created session: nothing missed since 0');
    const first = await broker.publish(ev('s:new', 1));
    t.equal(first.seq, 1);
    t.equal(first.epoch, fresh.ep, 'position() created the epoch the first event uses');
  });

  t.test(`${name}: publish resolves once the event is stored`, async (t) => {
    const { broker } = await fixture(t);
    let epoch = '';
    for (let i = 1; i <= 5; i++) {
      const pending = broker.publish(ev('s:stored', i));
      t.type(pending.then, 'function', 'publish returns a promise');
      const r = await pending;
      epoch = r.epoch;
      // No waiting: the moment publish resolved, the event is readable.
      const pos = await broker.position('s:stored');
      t.same([pos.ep, pos.seq], [r.epoch, r.seq], `after publish ${i}: position has it`);
      const h = await broker.history('s:stored', { epoch: r.epoch, seq: r.seq - 1 });
      t.same(
        [h.complete, h.head, h.entries.map((e) => e.seq)],
        [true, r.seq, [r.seq]],
        `after publish ${i}: history has it`,
      );
      t.same(eventOf(h.entries[0].frame).data, { n: i });
    }
    t.equal((await broker.history('s:stored', { epoch, seq: 0 })).entries.length, 5);
  });

  t.test(`${name}: concurrent publishes to one session stay dense, in call order, and arrive in seq order`, async (t) => {
    const f = await fixture(t);
    const { broker, rec } = f;
    await broker.subscribe('s:c');
    const results = await Promise.all(range(0, 49).map((i) => broker.publish(ev('s:c', i))));
    t.same(
      results.map((r) => r.seq),
      range(1, 50),
      'each seq once, in call order',
    );
    t.ok(
      results.every((r) => r.epoch === results[0].epoch && !r.duplicate),
      'one epoch, no duplicates',
    );
    const h = await broker.history('s:c', { epoch: results[0].epoch, seq: 0 });
    t.same(
      h.entries.map((e) => (eventOf(e.frame).data as { n: number }).n),
      range(0, 49),
      'history holds the events in call order',
    );
    const got = await checkDelivery(t, f, 's:c', range(1, 50), results[0].epoch);
    if (!f.lossless) t.ok(got.length > 0, 'some of 50 messages arrive even on a lossy broker');
    t.equal(rec.messages.length, rec.of('s:c').length, 'nothing from other sessions');
  });

  t.test(`${name}: an event that cannot be encoded is refused and takes no seq`, async (t) => {
    const { broker } = await fixture(t);
    const first = await broker.publish(ev('s:enc', 1));
    const huge: Record<string, number> = {};
    for (let i = 0; i <= 65_535; i++) huge[`k${i}`] = i;
    await t.rejects(broker.publish({ session: 's:enc', type: 'big', data: huge }), 'a map past map 16 rejects');
    const next = await broker.publish(ev('s:enc', 2));
    t.equal(next.seq, first.seq + 1, 'the next event takes the next seq: no gap');
    const read = await broker.history('s:enc', { epoch: first.epoch, seq: 0 });
    t.same(read.entries.map((e) => e.seq), [1, 2], 'history has no hole');
  });

  t.test(`${name}: the encoded frame carries the event`, async (t) => {
    const f = await fixture(t);
    const { broker } = f;
    await broker.subscribe('s:f');
    const before = Date.now();
    const r = await broker.publish({ session: 's:f', type: 'board', data: { top: ['a', 'b'], raw: Uint8Array.of(1, 2) }, snapshot: 'board', conflate: true });
    const plain = await broker.publish({ session: 's:f', type: 'q', data: null, snapshot: 'q' });
    const after = Date.now();
    const h = await broker.history('s:f', { epoch: r.epoch, seq: 0 });
    t.equal(h.entries.length, 2);
    const [first, second] = h.entries;
    t.same([first.session, first.epoch, first.seq], ['s:f', r.epoch, r.seq], 'the message names session, epoch and seq');
    const e = eventOf(first.frame);
    t.equal(e.t, 'ev');
    t.equal(e.s, 's:f');
    t.equal(e.seq, r.seq);
    t.equal(e.ep, r.epoch);
    t.equal(e.type, 'board');
    t.same(e.data, { top: ['a', 'b'], raw: Buffer.from([1, 2]) });
    t.ok(e.ts >= before - 1000 && e.ts <= after + 1000, 'ts is the sequencing time');
    t.equal(e.k, 'board');
    t.equal(e.c, true);
    t.equal(first.conflateKey, 'board', 'the message names the conflation key');
    t.equal(first.to, undefined);
    const g = eventOf(second.frame);
    t.same([second.epoch, second.seq], [plain.epoch, plain.seq]);
    t.equal(g.seq, plain.seq);
    t.equal(g.ep, plain.epoch);
    t.equal(g.k, 'q');
    t.equal(g.c, undefined, 'not conflatable unless asked');
    t.equal(second.conflateKey, undefined, 'a snapshot key alone is no conflation key');
    const got = await checkDelivery(t, f, 's:f', [1, 2], r.epoch);
    for (const m of got) {
      const stored = h.entries.find((x) => x.seq === m.seq)!;
      t.equal(hex(m.frame), hex(stored.frame), `seq ${m.seq}: subscribers get the bytes history holds`);
      t.equal(m.conflateKey, stored.conflateKey, `seq ${m.seq}: and the same conflation key`);
    }
  });

  t.test(`${name}: an event id is sequenced once; a repeat returns the first outcome`, async (t) => {
    const f = await fixture(t);
    const { broker } = f;
    await broker.subscribe('s:d');
    const first = await broker.publish(ev('s:d', 1, { id: 'e1' }));
    t.equal(first.duplicate, false);
    await broker.publish(ev('s:d', 2));
    const again = await broker.publish(ev('s:d', 99, { id: 'e1' }));
    t.same(again, { seq: first.seq, epoch: first.epoch, duplicate: true });
    const other = await broker.publish(ev('s:other', 1, { id: 'e1' }));
    t.equal(other.duplicate, false, 'ids are per session');
    const next = await broker.publish(ev('s:d', 3));
    t.equal(next.seq, 3, 'the repeat used no seq');
    await checkDelivery(t, f, 's:d', [1, 2, 3], first.epoch);
    await sleep(20);
    t.notOk(
      f.rec.of('s:d').some((m) => (eventOf(m.frame).data as { n: number }).n === 99),
      'the repeat was not delivered',
    );
    const h = await broker.history('s:d', { epoch: first.epoch, seq: 0 });
    t.same(
      h.entries.map((e) => (eventOf(e.frame).data as { n: number }).n),
      [1, 2, 3],
      'history holds the first version only',
    );
    const concurrent = await Promise.all(Array.from({ length: 10 }, () => broker.publish(ev('s:e', 1, { id: 'same' }))));
    t.equal(concurrent.filter((r) => !r.duplicate).length, 1, 'concurrent repeats: exactly one is sequenced');
    t.ok(concurrent.every((r) => r.seq === 1 && r.epoch === concurrent[0].epoch));
    t.equal((await broker.position('s:e')).seq, 1);
  });

  t.test(`${name}: history after a position returns exactly the later events, in order`, async (t) => {
    const f = await fixture(t);
    const { broker } = f;
    await broker.subscribe('s:h');
    let epoch = '';
    for (let i = 1; i <= 10; i++) epoch = (await broker.publish(ev('s:h', i))).epoch;
    const h = await broker.history('s:h', { epoch, seq: 6 }, 'u');
    t.equal(h.complete, true);
    t.equal(h.epoch, epoch);
    t.equal(h.head, 10);
    t.same(
      h.entries.map((e) => eventOf(e.frame).seq),
      [7, 8, 9, 10],
    );
    t.same(
      h.entries.map((e) => [e.session, e.epoch, e.seq]),
      [7, 8, 9, 10].map((s) => ['s:h', epoch, s]),
      'entries name session, epoch and seq',
    );
    t.equal(h.snapshot, undefined, 'a complete read carries no snapshot');
    const got = await checkDelivery(t, f, 's:h', range(1, 10), epoch);
    const delivered = new Map(got.map((m) => [m.seq, hex(m.frame)]));
    t.same(
      h.entries.filter((e) => delivered.has(e.seq)).map((e) => hex(e.frame)),
      h.entries.filter((e) => delivered.has(e.seq)).map((e) => delivered.get(e.seq)),
      'history holds the very bytes subscribers got',
    );
    if (f.lossless) t.equal(h.entries.filter((e) => delivered.has(e.seq)).length, 4, 'all four were delivered');
    const atHead = await broker.history('s:h', { epoch, seq: 10 }, 'u');
    t.same([atHead.complete, atHead.entries.length, atHead.head], [true, 0, 10], 'at the head: complete, nothing to replay');
    const fromZero = await broker.history('s:h', { epoch, seq: 0 }, 'u');
    t.same(
      fromZero.entries.map((e) => eventOf(e.frame).seq),
      range(1, 10),
      'from 0 while history covers all',
    );
    const ahead = await broker.history('s:h', { epoch, seq: 11 }, 'u');
    t.equal(ahead.complete, false, 'a position beyond the head is not complete');
    t.same(ahead.entries, [], 'and replays nothing');
    t.equal(ahead.head, 10);
  });

  t.test(`${name}: positions older than the history bound or from another epoch get the snapshot`, async (t) => {
    const { broker } = await fixture(t, 5);
    let epoch = '';
    for (let i = 1; i <= 12; i++) epoch = (await broker.publish(ev('s:b', i, i % 4 === 0 ? { snapshot: 'q' } : {}))).epoch;
    const within = await broker.history('s:b', { epoch, seq: 7 }, 'u');
    t.equal(within.complete, true, 'the oldest kept event is 8: seq 7 is still covered');
    t.same(
      within.entries.map((e) => eventOf(e.frame).seq),
      [8, 9, 10, 11, 12],
    );
    const old = await broker.history('s:b', { epoch, seq: 6 }, 'u');
    t.equal(old.complete, false, 'seq 7 fell out of the bound');
    t.same(old.entries, []);
    t.equal(old.head, 12);
    t.equal(old.epoch, epoch);
    t.equal(old.snapshot?.q?.seq, 12, 'the snapshot holds the latest value of each key');
    t.same(old.snapshot?.q?.data, { n: 12 });
    t.equal(old.snapshot?.q?.type, 'tick');
    t.type(old.snapshot?.q?.ts, 'number');
    const wrongEpoch = await broker.history('s:b', { epoch: `${epoch}x`, seq: 11 }, 'u');
    t.equal(wrongEpoch.complete, false, 'another epoch is never complete');
    t.same(wrongEpoch.entries, []);
    t.equal(wrongEpoch.epoch, epoch, 'the reply names the current epoch');
    t.equal(wrongEpoch.head, 12);
    t.equal(wrongEpoch.snapshot?.q?.seq, 12);
    const fresh = await broker.history('s:b', null, 'u');
    t.same([fresh.complete, fresh.head, fresh.entries.length, fresh.epoch], [false, 12, 0, epoch], 'no position: the snapshot, at the head');
    t.equal(fresh.snapshot?.q?.seq, 12);
    const empty = await broker.history('s:nothing', null, 'u');
    t.same([empty.complete, empty.head, empty.entries.length], [false, 0, 0]);
    t.same(empty.snapshot ?? {}, {}, 'a session without snapshot keys has an empty snapshot');
  });

  t.test(`${name}: a session without history always answers with the snapshot`, async (t) => {
    const { broker } = await fixture(t, 0);
    const r = await broker.publish(ev('s:z', 1, { snapshot: 'k' }));
    await broker.publish(ev('s:z', 2));
    const h = await broker.history('s:z', { epoch: r.epoch, seq: 1 }, 'u');
    t.equal(h.complete, false);
    t.same(h.entries, []);
    t.equal(h.head, 2);
    t.equal(h.snapshot?.k?.seq, 1);
    const atHead = await broker.history('s:z', { epoch: r.epoch, seq: 2 }, 'u');
    t.equal(atHead.entries.length, 0, 'at the head nothing is missing');
    t.equal(atHead.head, 2);
  });

  t.test(`${name}: events addressed to users carry their recipients, in history and to subscribers`, async (t) => {
    const f = await fixture(t);
    const { broker } = f;
    await broker.subscribe('s:to');
    const first = await broker.publish(ev('s:to', 1));
    await broker.publish(ev('s:to', 2, { to: ['bob'] }));
    await broker.publish(ev('s:to', 3, { to: ['alice', 'bob'] }));
    await broker.publish(ev('s:to', 4));
    const since = { epoch: first.epoch, seq: 0 };
    const h = await broker.history('s:to', since, 'carol');
    t.equal(h.head, 4, 'the head counts every event');
    t.same(
      h.entries.map((e) => e.seq),
      [1, 2, 3, 4],
      'history is not filtered by the reader: every event is there',
    );
    const recipients = [undefined, ['bob'], ['alice', 'bob'], undefined];
    t.same(
      h.entries.map((e) => (e.to === undefined ? undefined : [...e.to])),
      recipients,
      'each entry names its recipients',
    );
    // What each user may see follows from `to` alone (the receiver filters).
    const visible = (user: string) => h.entries.filter((e) => e.to === undefined || e.to.includes(user)).map((e) => e.seq);
    t.same(visible('alice'), [1, 3, 4]);
    t.same(visible('bob'), [1, 2, 3, 4]);
    t.same(visible('carol'), [1, 4]);
    const got = await checkDelivery(t, f, 's:to', [1, 2, 3, 4], first.epoch);
    t.same(
      got.map((m) => m.to),
      got.map((m) => recipients[m.seq - 1]),
      'subscribers get the recipients too',
    );
  });

  t.test(`${name}: scheduled events carry \`at\`; position tells where the still-held ones begin`, async (t) => {
    const f = await fixture(t);
    const { broker } = f;
    await broker.subscribe('s:at');
    const now = Date.now();
    const first = await broker.publish(ev('s:at', 1));
    await broker.publish(ev('s:at', 2, { at: now + 10_000 }));
    await broker.publish(ev('s:at', 3));
    await broker.publish(ev('s:at', 4, { at: now + 20_000, to: ['bob'], snapshot: 'q', conflate: true }));
    const h = await broker.history('s:at', { epoch: first.epoch, seq: 0 });
    t.same(h.entries.map((e) => e.at), [undefined, now + 10_000, undefined, now + 20_000], 'history entries keep their release time');
    t.same(h.entries[3].to, ['bob'], 'next to recipients');
    const got = await checkDelivery(t, f, 's:at', [1, 2, 3, 4], first.epoch);
    const atOf = [undefined, now + 10_000, undefined, now + 20_000];
    t.same(got.map((m) => m.at), got.map((m) => atOf[m.seq - 1]), 'subscribers get it too');
    const pos = (at: number) => broker.position('s:at', at).then((p) => p.heldFrom);
    t.equal(await pos(now), 2, 'before both: held from the first');
    t.equal(await pos(now + 10_000), 4, 'at the first release time it is released: held from the second');
    t.equal(await pos(now + 20_000), undefined, 'after both: nothing held');
    t.equal((await broker.position('s:plain')).heldFrom, undefined, 'a session without scheduled events holds nothing');
  });

  t.test(`${name}: snapshot keys per user`, async (t) => {
    const { broker } = await fixture(t);
    await broker.publish({ session: 's:k', type: 'q', data: 'question 1', snapshot: 'question' });
    await broker.publish({ session: 's:k', type: 'r', data: 'bob: right', snapshot: 'result', to: ['bob'] });
    await broker.publish({ session: 's:k', type: 'r', data: 'everyone', snapshot: 'score' });
    await broker.publish({ session: 's:k', type: 's', data: 'alice: 3', snapshot: 'score', to: ['alice'] });
    await broker.publish({ session: 's:k', type: 'q', data: 'question 2', snapshot: 'question' });
    const snap = async (user: string) => (await broker.history('s:k', null, user)).snapshot ?? {};
    const alice = await snap('alice');
    const bob = await snap('bob');
    const carol = await snap('carol');
    t.same(Object.keys(alice).sort(), ['question', 'score']);
    t.equal(alice.score.data, 'alice: 3', "a user's own value of a key wins over the shared one");
    t.equal(alice.score.seq, 4);
    t.equal(alice.question.data, 'question 2', 'the latest shared value');
    t.equal(alice.question.seq, 5);
    t.same(Object.keys(bob).sort(), ['question', 'result', 'score']);
    t.equal(bob.result.data, 'bob: right');
    t.equal(bob.score.data, 'everyone');
    t.same(Object.keys(carol).sort(), ['question', 'score']);
    t.equal(carol.score.data, 'everyone');
    t.equal(carol.score.type, 'r');
  });

  t.test(`${name}: subscribed sessions only are delivered, until unsubscribed`, async (t) => {
    const f = await fixture(t);
    const { broker, rec } = f;
    await broker.publish(ev('s:early', 1));
    await broker.subscribe('s:x');
    let epoch = '';
    for (let i = 1; i <= 20; i++) {
      epoch = (await broker.publish(ev('s:x', i))).epoch;
      await broker.publish(ev('s:y', i));
    }
    const got = await checkDelivery(t, f, 's:x', range(1, 20), epoch);
    if (!f.lossless) t.ok(got.length > 0, 'some of 20 messages arrive even on a lossy broker');
    await sleep(20);
    t.ok(
      rec.messages.every((m) => m.session === 's:x'),
      'only the subscribed session',
    );
    const before = rec.messages.length;
    await broker.unsubscribe('s:x');
    await broker.publish(ev('s:x', 21));
    await sleep(100);
    t.equal(rec.messages.length, before, 'nothing after unsubscribe');
    t.equal((await broker.position('s:x')).seq, 21, 'publishing goes on without subscribers');
  });

  t.test(`${name}: notices reach subscribers with seq 0 and are never in history`, async (t) => {
    const f = await fixture(t);
    const { broker, rec } = f;
    await broker.subscribe('s:n');
    const r = await broker.publish(ev('s:n', 1));
    // Opaque frames to the broker: msgpack {n: i}.
    const notice = (i: number) => Uint8Array.of(0x81, 0xa1, 0x6e, i);
    for (let i = 0; i < 20; i++) {
      const pending = broker.notice('s:n', notice(i));
      t.type(pending.then, 'function');
      await pending;
    }
    await broker.publish(ev('s:n', 2));
    await broker.notice('s:quiet', notice(99));
    const notices = () => rec.of('s:n').filter((m) => m.seq === 0);
    if (f.lossless) await eventually(() => notices().length >= 20);
    await settle(() => f.lossless || notices().length >= 20, () => rec.messages.length);
    await sleep(20);
    const got = notices();
    t.ok(got.length > 0, 'notices arrive');
    t.ok(
      got.every((m) => m.seq === 0 && m.session === 's:n' && typeof m.epoch === 'string'),
      'as seq 0 of the session',
    );
    const indexes = got.map((m) => m.frame[3]);
    t.ok(
      got.every((m, i) => hex(m.frame) === hex(notice(indexes[i]))),
      'with their bytes untouched',
    );
    t.ok(
      indexes.every((x, i) => i === 0 || x > indexes[i - 1]),
      'in order, none twice',
    );
    if (f.lossless) t.same(indexes, range(0, 19), 'every notice arrived');
    t.same(rec.of('s:quiet'), [], 'a notice reaches subscribers only');
    const h = await broker.history('s:n', { epoch: r.epoch, seq: 0 });
    t.same(
      [h.head, h.entries.map((e) => e.seq)],
      [2, [1, 2]],
      'notices took no seq and are not in history',
    );
    t.ok(
      h.entries.every((e) => e.seq > 0),
      'history holds events only',
    );
    t.equal((await broker.position('s:n')).seq, 2);
  });

  t.test(`${name}: a started broker is healthy`, async (t) => {
    const { broker } = await fixture(t);
    t.equal(broker.health().ok, true);
    await broker.publish(ev('s:ok', 1));
    t.equal(broker.health().ok, true, 'and stays so while it works');
  });

  t.test(`${name}: stop resolves promptly, even with history reads in flight`, async (t) => {
    const { broker } = await fixture(t);
    await broker.subscribe('s:stop');
    const r = await broker.publish(ev('s:stop', 1, { snapshot: 'k' }));
    const reads = [
      ...Array.from({ length: 10 }, () => broker.history('s:stop', { epoch: r.epoch, seq: 0 }, 'u')),
      ...Array.from({ length: 10 }, () => broker.history('s:stop', null, 'u')),
    ];
    for (const read of reads) read.catch(() => {}); // how a read in flight ends is the broker's business
    const started = Date.now();
    const outcome = await Promise.race([broker.stop(started + 500).then(() => 'stopped'), sleep(1000).then(() => 'still running')]);
    t.equal(outcome, 'stopped', `stop resolved after ${Date.now() - started} ms`);
    await t.rejects(broker.publish(ev('s:stop', 2)), 'a stopped broker stores nothing: publish rejects');
  });
}
