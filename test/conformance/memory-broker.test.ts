// The shared Broker suite on the standalone engine's memory broker, plain
// (lossless, immediate) and with its network setting (late, jittered, lossy,
// history replies delayed), plus what only the memory broker promises: idle
// sessions are forgotten after the TTL unless active, `resetEpoch` loses a session
// the way a backend restarted empty does, and the network faults behave as set.
import t, { type Test } from 'tap';
import { createMemoryBroker, type MemoryBroker, type MemoryBrokerOptions, type NetworkFaults } from '../../daemon/engine/memory-broker.js';
import { PublishRefused, type PublishRequest } from '../../daemon/engine/broker.js';
import { brokerConformance, eventually, eventOf, recorder, sleep, type Recording } from './broker.js';

const NETWORK: NetworkFaults = { delayMs: 2, jitterMs: 5, dropRate: 0.05, historyDelayMs: 10, seed: 7 };

brokerConformance(t, 'memory', async ({ historySize }) => {
  const broker = createMemoryBroker({ historySizeFor: () => historySize, sessionTtlMs: 3_600_000, isActive: () => false });
  return { broker, lossless: true, close: () => broker.stop(Date.now()) };
});

brokerConformance(t, 'memory over a network', async ({ historySize }) => {
  const broker = createMemoryBroker({ historySizeFor: () => historySize, sessionTtlMs: 3_600_000, isActive: () => false, network: NETWORK });
  return { broker, lossless: false, close: () => broker.stop(Date.now()) };
});

const ev = (session: string, n: number, extra: Partial<PublishRequest> = {}): PublishRequest => ({ session, type: 'tick', data: { n }, ...extra });
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** A started memory broker with a recording handler, stopped at teardown. */
async function started(t: Test, opts: Partial<MemoryBrokerOptions> = {}): Promise<{ broker: MemoryBroker; rec: Recording }> {
  const broker = createMemoryBroker({ historySizeFor: () => 1000, sessionTtlMs: 3_600_000, isActive: () => false, ...opts });
  t.teardown(() => broker.stop(Date.now()));
  const rec = recorder();
  await broker.start(rec.handler);
  return { broker, rec };
}

t.test('memory: idle sessions are forgotten after the TTL unless active', async (t) => {
  let now = 1_000_000;
  const active = new Set(['s:kept']);
  const { broker } = await started(t, { historySizeFor: () => 10, sessionTtlMs: 1000, isActive: (s) => active.has(s), now: () => now });
  const gone = await broker.publish({ session: 's:gone', type: 'a', data: 1, snapshot: 'k' });
  const kept = await broker.publish({ session: 's:kept', type: 'a', data: 1 });
  now += 5000;
  await sleep(1100); // the sweeper runs every max(1 s, ttl)
  const after = await broker.position('s:gone');
  t.equal(after.seq, 0, 'the idle session was forgotten');
  t.not(after.ep, gone.epoch, 'and comes back under a new epoch, so old positions are not complete');
  const h = await broker.history('s:gone', { epoch: gone.epoch, seq: 0 }, 'u');
  t.same([h.complete, h.head, h.snapshot], [false, 0, {}], 'its history and snapshot went with it');
  const still = await broker.position('s:kept');
  t.same([still.seq, still.ep], [1, kept.epoch], 'an active session is kept');
});

t.test('memory: sessions nothing was published to are forgotten after emptySessionTtlMs, the others after sessionTtlMs', async (t) => {
  let now = 1_000_000;
  const { broker } = await started(t, { historySizeFor: () => 10, sessionTtlMs: 3_600_000, emptySessionTtlMs: 1000, isActive: () => false, now: () => now });
  const joined = await broker.position('s:joined-only');
  const published = await broker.publish({ session: 's:published', type: 'a', data: 1 });
  now += 5000;
  await sleep(1100); // the sweeper runs every max(1 s, the shorter TTL)
  const again = await broker.position('s:joined-only');
  t.not(again.ep, joined.ep, 'the session only joined was forgotten: it comes back under a new epoch');
  const h = await broker.history('s:joined-only', { epoch: joined.ep, seq: 0 }, 'u');
  t.equal(h.complete, false, 'so a resume into it from the old epoch is told it is not complete (rec: false)');
  const kept = await broker.position('s:published');
  t.same([kept.ep, kept.seq], [published.epoch, 1], 'a session with an event keeps the full TTL');
});

t.test('memory: past maxEmptySessions the oldest empty session nobody here joined is forgotten; joined ones and those with events stay', async (t) => {
  const active = new Set(['s:e0']);
  const { broker } = await started(t, { historySizeFor: () => 10, sessionTtlMs: 3_600_000, maxEmptySessions: 3, isActive: (s) => active.has(s) });
  const epochs = new Map<string, string>();
  const join = async (s: string) => {
    const { ep } = await broker.position(s);
    const known = epochs.get(s);
    epochs.set(s, ep);
    return known === undefined || known === ep;
  };
  const published = await broker.publish({ session: 's:p', type: 'a', data: 1 });
  for (let i = 0; i < 3; i++) await join(`s:e${i}`);
  t.ok(await join('s:e3'), 'a fourth empty session is taken');
  t.notOk(await join('s:e1'), 's:e1, the oldest not joined here, was forgotten (s:e0 is joined): it comes back under a new epoch');
  t.ok(await join('s:e0'), 'the joined one stayed');
  t.notOk(await join('s:e2'), 'coming back, s:e1 pushed out the next oldest, s:e2');
  const kept = await broker.position('s:p');
  t.same([kept.ep, kept.seq], [published.epoch, 1], 'a session with an event does not count and stays');
  for (let i = 0; i < 1000; i++) await join(`s:flood${i}`);
  t.ok(await join('s:e0'), 'after 1,000 more, the joined one is still there');
  t.same([(await broker.position('s:p')).ep], [published.epoch], 'and so is the one with an event');
  const h = await broker.history('s:e3', { epoch: epochs.get('s:e3')!, seq: 0 }, 'u');
  t.equal(h.complete, false, 'a resume into a forgotten one is told it is not complete (rec: false)');
});

t.test('memory: resetEpoch starts the session over under a new epoch', async (t) => {
  const { broker, rec } = await started(t);
  await broker.subscribe('s:r');
  let old = { epoch: '', seq: 0 };
  for (let i = 1; i <= 3; i++) {
    const r = await broker.publish(ev('s:r', i, { snapshot: 'q', id: `e${i}` }));
    old = { epoch: r.epoch, seq: r.seq };
  }
  broker.resetEpoch('s:r');
  const pos = await broker.position('s:r');
  t.not(pos.ep, old.epoch, 'a new epoch');
  t.equal(pos.seq, 0, 'nothing in it yet');
  const lost = await broker.history('s:r', old, 'u');
  t.same(
    [lost.complete, lost.epoch, lost.head, lost.entries],
    [false, pos.ep, 0, []],
    'an old position is not complete',
  );
  t.same(lost.snapshot, {}, 'and gets the snapshot, empty after the reset');
  const fromStart = await broker.history('s:r', { epoch: old.epoch, seq: 0 }, 'u');
  t.equal(fromStart.complete, false, 'not even from 0 of the old epoch');
  const next = await broker.publish(ev('s:r', 4, { snapshot: 'q' }));
  t.same([next.epoch, next.seq, next.duplicate], [pos.ep, 1, false], 'seq restarts at 1 under the new epoch');
  const later = await broker.history('s:r', old, 'u');
  t.same([later.complete, later.head, later.snapshot?.q?.seq, later.snapshot?.q?.data], [false, 1, 1, { n: 4 }], 'the snapshot holds only what came after');
  const fresh = await broker.history('s:r', { epoch: pos.ep, seq: 0 });
  t.same(
    fresh.entries.map((e) => [e.epoch, e.seq]),
    [[pos.ep, 1]],
    'history of the new epoch',
  );
  await eventually(() => rec.of('s:r').length >= 4);
  t.same(
    rec.of('s:r').map((m) => [m.epoch, m.seq]),
    [[old.epoch, 1], [old.epoch, 2], [old.epoch, 3], [pos.ep, 1]],
    'subscribers see the epoch change',
  );
  t.equal(eventOf(rec.of('s:r')[3].frame).ep, pos.ep, 'the frame names the new epoch');
});

t.test('memory over a network: a message arrives no sooner than delayMs', async (t) => {
  const delayMs = 60;
  const broker = createMemoryBroker({
    historySizeFor: () => 10,
    sessionTtlMs: 3_600_000,
    isActive: () => false,
    network: { delayMs, jitterMs: 0, dropRate: 0, historyDelayMs: 0, seed: 1 },
  });
  t.teardown(() => broker.stop(Date.now()));
  const rec = recorder();
  const arrivals: number[] = [];
  await broker.start({
    message(msg) {
      arrivals.push(Date.now());
      rec.handler.message(msg);
    },
    resubscribed: () => rec.handler.resubscribed(),
  });
  await broker.subscribe('s:late');
  const sentAt = Date.now();
  await broker.publish(ev('s:late', 1));
  await broker.notice('s:late', Uint8Array.of(0xc0));
  t.equal(rec.messages.length, 0, 'nothing has arrived when publish resolved');
  await eventually(() => rec.messages.length >= 2);
  t.same(
    rec.messages.map((m) => m.seq),
    [1, 0],
  );
  t.ok(arrivals.every((at) => at - sentAt >= delayMs), `arrived after ${arrivals.map((at) => at - sentAt).join(', ')} ms (≥ ${delayMs})`);
  t.equal(broker.dropped, 0);
});

t.test('memory over a network: per-session order holds over 500 messages with jitter', async (t) => {
  const { broker, rec } = await started(t, { network: { delayMs: 1, jitterMs: 15, dropRate: 0, historyDelayMs: 0, seed: 3 } });
  await broker.subscribe('s:o1');
  await broker.subscribe('s:o2');
  const sent: string[] = [];
  for (let i = 1; i <= 500; i++) {
    await broker.publish(ev('s:o1', i));
    await broker.publish(ev('s:o2', i));
    sent.push('s:o1', 's:o2');
    if (i % 25 === 0) await sleep(2); // spread the publishes over the jitter
  }
  await eventually(() => rec.messages.length >= 1000);
  await sleep(30);
  t.same(
    rec.of('s:o1').map((m) => m.seq),
    range(1, 500),
    's:o1: every message, in order, once',
  );
  t.same(
    rec.of('s:o2').map((m) => m.seq),
    range(1, 500),
    's:o2: every message, in order, once',
  );
  t.not(
    rec.messages.map((m) => m.session).join(),
    sent.join(),
    'the jitter did reorder across sessions (so the order held per session is not luck)',
  );
  t.equal(broker.dropped, 0);
});

/** Publishes 500 events on a lossy network and reports which seqs never arrived. */
async function dropsWith(t: Test, seed: number): Promise<{ missing: number[]; dropped: number; seqs: number[]; broker: MemoryBroker }> {
  const { broker, rec } = await started(t, { network: { delayMs: 1, jitterMs: 3, dropRate: 0.2, historyDelayMs: 0, seed } });
  await broker.subscribe('s:drop');
  for (let i = 1; i <= 500; i++) await broker.publish(ev('s:drop', i));
  await eventually(() => rec.messages.length + broker.dropped >= 500);
  await sleep(30);
  const seqs = rec.messages.map((m) => m.seq);
  return { missing: range(1, 500).filter((s) => !seqs.includes(s)), dropped: broker.dropped, seqs, broker };
}

t.test('memory over a network: the drop count matches the messages missing', async (t) => {
  const { missing, dropped, seqs, broker } = await dropsWith(t, 11);
  t.equal(dropped, missing.length, `${dropped} dropped, ${missing.length} missing`);
  t.equal(seqs.length + dropped, 500, 'every other message arrived');
  t.ok(dropped >= 50 && dropped <= 150, `about a fifth dropped (${dropped})`);
  t.ok(
    seqs.every((s, i) => i === 0 || s > seqs[i - 1]),
    'what arrived came in order, once',
  );
  const pos = await broker.position('s:drop');
  const h = await broker.history('s:drop', { epoch: pos.ep, seq: 0 });
  const kept = new Set(h.entries.map((e) => e.seq));
  t.ok(h.complete && missing.every((s) => kept.has(s)), 'the dropped ones are in history');
});

t.test('memory over a network: the same seed drops the same messages', async (t) => {
  const a = await dropsWith(t, 42);
  const b = await dropsWith(t, 42);
  const c = await dropsWith(t, 43);
  t.ok(a.missing.length > 0);
  t.same(b.missing, a.missing, 'replayed with the same seed');
  t.not(c.missing.join(), a.missing.join(), 'another seed drops others');
});

t.test('memory over a network: history replies come late, from the point they were read', async (t) => {
  const { broker } = await started(t, { network: { delayMs: 0, jitterMs: 0, dropRate: 0, historyDelayMs: 80, seed: 5 } });
  const first = await broker.publish(ev('s:hd', 1));
  await broker.publish(ev('s:hd', 2));
  const asked = Date.now();
  const reads = Array.from({ length: 10 }, () => broker.history('s:hd', { epoch: first.epoch, seq: 0 }));
  await broker.publish(ev('s:hd', 3)); // stored while the replies are on their way
  const replies = await Promise.all(reads);
  const took = Date.now() - asked;
  t.ok(
    replies.every((r) => r.head === 2 && r.entries.map((e) => e.seq).join() === '1,2'),
    'each reply holds the history as it was read',
  );
  t.ok(took > 10 && took < 1000, `the replies were delayed (${took} ms)`);
  t.equal((await broker.position('s:hd')).seq, 3);
});

t.test('memory over a network: stop answers history reads in flight', async (t) => {
  const broker = createMemoryBroker({
    historySizeFor: () => 10,
    sessionTtlMs: 3_600_000,
    isActive: () => false,
    network: { delayMs: 0, jitterMs: 0, dropRate: 0, historyDelayMs: 60_000, seed: 9 },
  });
  await broker.start(recorder().handler);
  const r = await broker.publish(ev('s:in-flight', 1));
  const read = broker.history('s:in-flight', { epoch: r.epoch, seq: 0 });
  const started = Date.now();
  await broker.stop(started);
  const reply = await Promise.race([read, sleep(1000).then(() => 'never')]);
  t.not(reply, 'never', 'the read was answered');
  t.ok(Date.now() - started < 1000);
  t.equal(broker.health().ok, false, 'a stopped broker is not healthy');
});

t.test('memory: snapshot keys are bounded per session and per user; updates stay allowed', async (t) => {
  const { broker } = await started(t, { maxSnapshotKeys: 3 });
  for (const k of ['a', 'b', 'c']) await broker.publish({ session: 's:snap', type: 't', data: k, snapshot: k });
  const first = await broker.position('s:snap');
  const refused = (p: Promise<unknown>) => p.then(() => 'stored', (err: unknown) => (err instanceof PublishRefused ? err.message : `other error: ${String(err)}`));
  t.match(await refused(broker.publish({ session: 's:snap', type: 't', data: 'd', snapshot: 'd' })), /already has 3 snapshot keys \(maxSnapshotKeys\)/, 'a 4th shared key is refused');
  t.same(await broker.position('s:snap'), first, 'and took no seq');
  const update = await broker.publish({ session: 's:snap', type: 't', data: 'a2', snapshot: 'a' });
  t.equal(update.seq, first.seq + 1, 'updating an existing key is fine');
  t.ok(await broker.publish({ session: 's:snap', type: 't', data: 'plain' }), 'events without a key are unaffected');
  for (const k of ['x', 'y', 'z']) await broker.publish({ session: 's:snap', type: 't', data: k, snapshot: k, to: ['alice'] });
  t.match(await refused(broker.publish({ session: 's:snap', type: 't', data: 'w', snapshot: 'w', to: ['bob', 'alice'] })), /user alice already has 3 own snapshot keys/, "a 4th own key of alice's is refused, for every recipient");
  const bob = await broker.history('s:snap', null, 'bob');
  t.notOk('w' in (bob.snapshot ?? {}), 'nothing of the refused event was stored for bob either');
  const alice = await broker.history('s:snap', null, 'alice');
  t.same(Object.keys(alice.snapshot ?? {}).sort(), ['a', 'b', 'c', 'x', 'y', 'z'], "alice's snapshot: 3 shared and 3 own keys");
});

t.test('memory: sessions that are only read cost little, and never share what others write', async (t) => {
  const { broker } = await started(t);
  const read = await broker.history('s:quiet', null, 'u');
  t.same(read.snapshot, {}, 'an unknown session reads empty');
  await broker.publish({ session: 's:busy', type: 't', data: 1, snapshot: 'k', id: 'e1' });
  await broker.publish({ session: 's:busy', type: 't', data: 2, snapshot: 'mine', to: ['u'] });
  t.same((await broker.history('s:quiet', null, 'u')).snapshot, {}, "another session's writes do not show up in it");
  const again = await broker.publish({ session: 's:quiet', type: 't', data: 1, id: 'e1' });
  t.equal(again.duplicate, false, "nor do another session's event ids");
  const { setFlagsFromString } = await import('node:v8');
  const { runInNewContext } = await import('node:vm');
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  gc();
  const before = process.memoryUsage().heapUsed;
  for (let i = 0; i < 20_000; i++) await broker.position(`s:idle-${i}`);
  gc();
  const perSession = (process.memoryUsage().heapUsed - before) / 20_000;
  t.ok(perSession < 600, `a session only read costs ~${Math.round(perSession)} bytes (~970 with its own three maps)`);
});
