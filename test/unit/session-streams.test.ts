// The continuity owner (daemon/primary/session-streams.ts) on a real memory broker,
// with and without its network-like faults: every seq reaches the sink once, in
// order, under one epoch, or after an explicit resync; heals are coalesced; joins
// catch the stream up; lingering, failed subscribes and reconnects behave.
//
// The sink records frames and resyncs in one ordered log and checks continuity as
// it goes: a frame must be the next seq of the position the sink last saw (the
// stream's opening position, the previous frame, or a resync).
import t, { type Test } from 'tap';
import { pino } from 'pino';
import type { Broker, BrokerHandler, HistoryRead, StreamMessage, StreamPosition } from '../../daemon/engine/broker.js';
import { createMemoryBroker, type MemoryBroker, type NetworkFaults } from '../../daemon/engine/memory-broker.js';
import { SessionStreams, type StreamSink } from '../../daemon/primary/session-streams.js';
import type { ResumePoint } from '../../protocol/frames.js';

type Entry =
  | { kind: 'frame'; session: string; epoch: string; seq: number }
  | { kind: 'resync'; session: string; epoch: string; head: number }
  | { kind: 'mark'; label: string };

/** A StreamSink that records everything, in order, and checks continuity per session. */
class Recorder implements StreamSink {
  readonly log: Entry[] = [];
  readonly violations: string[] = [];
  private readonly at = new Map<string, StreamPosition>();

  /** The stream of `session` starts (again) at this position. */
  from(session: string, epoch: string, seq: number): void {
    this.at.set(session, { epoch, seq });
  }

  forward(msg: StreamMessage): void {
    this.log.push({ kind: 'frame', session: msg.session, epoch: msg.epoch, seq: msg.seq });
    if (msg.seq === 0) return;
    const at = this.at.get(msg.session);
    if (at !== undefined && (msg.epoch !== at.epoch || msg.seq !== at.seq + 1)) {
      this.violations.push(`${msg.session}: frame ${msg.epoch}/${msg.seq} after ${at.epoch}/${at.seq}`);
    }
    this.at.set(msg.session, { epoch: msg.epoch, seq: msg.seq });
  }

  resync(session: string, epoch: string, head: number): void {
    this.log.push({ kind: 'resync', session, epoch, head });
    this.at.set(session, { epoch, seq: head });
  }

  mark(label: string): void {
    this.log.push({ kind: 'mark', label });
  }

  /** Seqs of the frames forwarded for the session (optionally of one epoch), in order. */
  frames(session: string, epoch?: string): number[] {
    const out: number[] = [];
    for (const e of this.log) {
      if (e.kind === 'frame' && e.session === session && (epoch === undefined || e.epoch === epoch)) out.push(e.seq);
    }
    return out;
  }

  resyncs(session: string): Array<{ epoch: string; head: number }> {
    const out: Array<{ epoch: string; head: number }> = [];
    for (const e of this.log) if (e.kind === 'resync' && e.session === session) out.push({ epoch: e.epoch, head: e.head });
    return out;
  }

  /** Where the sink's view of the session stands. */
  last(session: string): StreamPosition | undefined {
    return this.at.get(session);
  }
}

/** What the counting proxy around the memory broker saw, and the faults it injects. */
interface Hooks {
  /** History replies wait for this (the read itself is made, at call time). */
  historyGate: Promise<void> | null;
  /** History reads reject. */
  historyFails: boolean;
  /** Past this many reads, history never answers: stops a runaway heal loop from hanging the test. */
  maxHistoryReads: number;
  /** So many next subscribes reject. */
  subscribeFailures: number;
}

interface Fixture {
  /** The real memory broker. */
  inner: MemoryBroker;
  /** The counting proxy SessionStreams uses. */
  broker: Broker;
  streams: SessionStreams;
  sink: Recorder;
  hooks: Hooks;
  calls: { history: number; subscribe: number; unsubscribe: number };
  /** Opening positions the streams read (the first position read after each subscribe). */
  positions: ResumePoint[];
  /** Every message the broker delivered to the handler, dropped by `drop` or not. */
  delivered: StreamMessage[];
  /** Messages for which this returns true never reach the streams (a lossy link under test control). */
  drop: (msg: StreamMessage) => boolean;
  handler: BrokerHandler;
}

interface FixtureOptions {
  network?: NetworkFaults;
  historySize?: number;
  lingerMs?: number;
  /** The streams' position check period (0, the default here: off). */
  checkMs?: number;
}

async function fixture(t: Test, opts: FixtureOptions = {}): Promise<Fixture> {
  const inner = createMemoryBroker({
    historySizeFor: () => opts.historySize ?? 1000,
    sessionTtlMs: 60_000,
    isActive: () => true,
    ...(opts.network ? { network: opts.network } : {}),
  });
  const hooks: Hooks = { historyGate: null, historyFails: false, maxHistoryReads: 10_000, subscribeFailures: 0 };
  const calls = { history: 0, subscribe: 0, unsubscribe: 0 };
  const positions: ResumePoint[] = [];
  const subscribed = new Set<string>();
  const broker: Broker = {
    start: (h) => inner.start(h),
    publish: (req) => inner.publish(req),
    notice: (session, frame) => inner.notice(session, frame),
    async history(session, since, user): Promise<HistoryRead> {
      calls.history++;
      if (calls.history > hooks.maxHistoryReads) return new Promise<HistoryRead>(() => {});
      if (hooks.historyFails) throw new Error('history unavailable');
      const read = await inner.history(session, since, user);
      if (hooks.historyGate !== null) await hooks.historyGate;
      return read;
    },
    async position(session, now) {
      const pos = await inner.position(session, now);
      if (subscribed.delete(session)) positions.push(pos); // not a position check's read
      return pos;
    },
    async subscribe(session) {
      calls.subscribe++;
      if (hooks.subscribeFailures > 0) {
        hooks.subscribeFailures--;
        throw new Error('subscribe refused');
      }
      await inner.subscribe(session);
      subscribed.add(session);
    },
    async unsubscribe(session) {
      calls.unsubscribe++;
      await inner.unsubscribe(session);
    },
    health: () => inner.health(),
    stop: (deadline) => inner.stop(deadline),
  };
  const sink = new Recorder();
  const streams = new SessionStreams(broker, sink, {
    lingerMs: opts.lingerMs ?? 60_000,
    checkMs: opts.checkMs ?? 0,
    log: pino({ level: 'silent' }),
    // Session 's' in the namespace with index 2: drop counts land at that index.
    namespaceOf: (session) => (session === 's' ? 2 : 0),
  });
  const f: Fixture = {
    inner,
    broker,
    streams,
    sink,
    hooks,
    calls,
    positions,
    delivered: [],
    drop: () => false,
    handler: {
      message: (msg) => {
        f.delivered.push(msg);
        if (!f.drop(msg)) streams.onMessage(msg);
      },
      resubscribed: () => streams.onResubscribed(),
    },
  };
  await broker.start(f.handler);
  t.teardown(async () => {
    streams.stop();
    await broker.stop(Date.now());
  });
  return f;
}

/** Polls `pred` until it holds; throws (failing the subtest) past the deadline. */
async function waitFor(what: string, pred: () => boolean, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 1));
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function range(from: number, to: number): number[] {
  const out: number[] = [];
  for (let i = from; i <= to; i++) out.push(i);
  return out;
}

/** Opens the session and waits until its stream read its position; the sink starts there. */
async function opened(f: Fixture, session: string): Promise<StreamPosition> {
  const before = f.positions.filter((p) => p.s === session).length;
  f.streams.open(session);
  await waitFor(`${session} positioned`, () => f.positions.filter((p) => p.s === session).length > before);
  const p = f.positions.filter((q) => q.s === session).at(-1)!;
  f.sink.from(session, p.ep, p.seq);
  return { epoch: p.ep, seq: p.seq };
}

let published = 0;
/** Publishes `n` events one after another; resolves with their results. */
async function publish(f: Fixture, session: string, n: number): Promise<Array<{ seq: number; epoch: string }>> {
  const out: Array<{ seq: number; epoch: string }> = [];
  for (let i = 0; i < n; i++) out.push(await f.broker.publish({ session, type: 'e', data: { n: ++published } }));
  return out;
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** Ref'd timers alive in the process (unref'd ones are not listed). */
function refTimers(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
}

t.test('open, then live events: each seq once, in order; events before open are history', async (t) => {
  const f = await fixture(t);
  await publish(f, 's', 3);
  const pos = await opened(f, 's');
  t.same(pos.seq, 3, 'the stream starts at the head');
  await publish(f, 's', 20);
  await waitFor('23 forwarded', () => f.sink.last('s')!.seq >= 23);
  t.same(f.sink.frames('s'), range(4, 23), 'only the events published after open are forwarded, once each, in order');
  t.same(f.sink.frames('s', pos.epoch), range(4, 23), 'all under the opening epoch');
  t.same(f.sink.resyncs('s'), [], 'no resync');
  t.same(f.sink.violations, []);
  t.same(f.streams.counters, { duplicates: 0, stale: 0, gaps: 0, healedFrames: 0, resyncs: 0, sharedReads: 0 });

  const read = await f.streams.join('s', { epoch: pos.epoch, seq: 0 }, 'u');
  t.ok(read.complete, 'a join from the start reads complete history');
  t.same(
    read.entries.map((e) => e.seq),
    range(1, 23),
    'a join gets the events published before open from history',
  );
  t.same(f.sink.frames('s'), range(4, 23), 'the join forwarded nothing again');
});

t.test('duplicates (same epoch, seq <= last) are dropped and counted', async (t) => {
  const f = await fixture(t);
  await opened(f, 's');
  await publish(f, 's', 5);
  await waitFor('5 forwarded', () => f.sink.frames('s').length === 5);
  f.streams.onMessage(f.delivered[2]);
  f.streams.onMessage(f.delivered[4]);
  f.streams.onMessage(f.delivered[0]);
  t.equal(f.streams.counters.duplicates, 3, 'each redelivered message counted as a duplicate');
  t.same(f.streams.drops.snapshot().stream_duplicate, [0, 0, 3], "dropped as stream_duplicate under the session's namespace");
  t.same(f.sink.frames('s'), range(1, 5), 'none forwarded again');
  await publish(f, 's', 1);
  t.same(f.sink.frames('s'), range(1, 6), 'the next seq still flows');
  t.equal(f.calls.history, 0, 'duplicates do not read history');
  t.same(f.sink.violations, []);
});

t.test('own events: the next seq is forwarded from the reply; its bus copy is dropped without counting', async (t) => {
  const f = await fixture(t);
  await opened(f, 's');
  // The bus is slow: nothing it carries reaches the streams until let through.
  f.drop = () => true;
  await publish(f, 's', 3);
  const bus = f.delivered.filter((m) => m.session === 's');
  t.equal(bus.length, 3);
  for (const msg of bus) f.streams.onOwnEvent({ ...msg });
  t.same(f.sink.frames('s'), range(1, 3), 'own events forwarded at once, in order');
  for (const msg of bus) f.streams.onMessage(msg);
  t.same(f.sink.frames('s'), range(1, 3), 'their bus copies forwarded nothing again');
  t.equal(f.streams.counters.duplicates, 0, 'and are not counted as duplicates');
  f.drop = () => false;
  await publish(f, 's', 1);
  t.same(f.sink.frames('s'), range(1, 4), 'the stream goes on from the bus');
  f.streams.onMessage(bus[1]);
  t.equal(f.streams.counters.duplicates, 1, 'a second copy of an own event is a duplicate');
  t.same(f.sink.violations, []);
});

t.test('own events: one that is not the next seq waits for its bus copy, behind the others', async (t) => {
  const f = await fixture(t);
  await opened(f, 's');
  f.drop = () => true;
  await publish(f, 's', 2); // seq 1 from "another instance", seq 2 our own
  const [first, second] = f.delivered.filter((m) => m.session === 's');
  f.streams.onOwnEvent({ ...second });
  t.same(f.sink.frames('s'), [], 'seq 2 before seq 1 is not forwarded from the reply');
  t.equal(f.calls.history, 0, 'nor does it start a heal');
  f.streams.onMessage(first);
  f.streams.onMessage(second);
  t.same(f.sink.frames('s'), [1, 2], 'both arrive from the bus, in order');
  t.equal(f.streams.counters.duplicates, 0);
  t.same(f.sink.violations, []);
});

t.test('own events: copies lost on the bus are forgotten when a later one arrives', async (t) => {
  const f = await fixture(t);
  await opened(f, 's');
  f.drop = () => true;
  await publish(f, 's', 4);
  const bus = f.delivered.filter((m) => m.session === 's');
  for (const msg of bus) f.streams.onOwnEvent({ ...msg });
  // The copies of 1 and 2 never come; 3's does: 1 and 2 are forgotten with it.
  f.streams.onMessage(bus[2]);
  f.streams.onMessage(bus[0]);
  t.equal(f.streams.counters.duplicates, 1, 'a copy of 1 after 3 is no longer known: a duplicate');
  f.streams.onMessage(bus[3]);
  t.equal(f.streams.counters.duplicates, 1, "4's copy is still known");
  t.same(f.sink.frames('s'), range(1, 4));
  t.same(f.sink.violations, []);
});

t.test('a gap is healed from history: the missing seqs, then the later one, in order', async (t) => {
  const f = await fixture(t);
  await opened(f, 's');
  await publish(f, 's', 3);
  t.same(f.sink.frames('s'), range(1, 3));
  f.drop = () => true;
  await publish(f, 's', 2); // seqs 4, 5 never reach the stream
  f.drop = () => false;
  const five = f.delivered.find((m) => m.seq === 5)!;
  f.streams.onMessage(five); // last + 2
  await waitFor('healed to 5', () => f.sink.last('s')!.seq === 5);
  t.same(f.sink.frames('s'), range(1, 5), 'the missing seq, then the later one, once each');
  t.equal(f.streams.counters.gaps, 1, 'one gap');
  t.equal(f.streams.counters.healedFrames, 2, 'seqs 4 and 5 came from history');
  t.equal(f.streams.counters.duplicates, 1, 'the live seq 5 that triggered the heal was then a duplicate');
  t.equal(f.calls.history, 1, 'one history read');
  f.streams.onMessage(f.delivered.find((m) => m.seq === 4)!);
  t.equal(f.streams.counters.duplicates, 2, 'a late seq 4 is a duplicate');
  await publish(f, 's', 1);
  await waitFor('6 forwarded', () => f.sink.last('s')!.seq === 6);
  t.same(f.sink.frames('s'), range(1, 6));
  t.same(f.sink.violations, []);
});

t.test('a lossy, late network: the sink gets exactly 1..500 in order', async (t) => {
  for (const seed of [1, 2, 3, 7, 42, 1234]) {
    await t.test(`seed ${seed}`, async (t) => {
      const f = await fixture(t, {
        network: { delayMs: 1, jitterMs: 4, dropRate: 0.2, historyDelayMs: 8, seed },
        checkMs: 10, // a dropped tail has no later message to reveal it: the position check does
      });
      await opened(f, 's');
      let sent = 0;
      while (sent < 500) {
        // Bursts of concurrent publishes, with pauses so heals interleave with live traffic.
        const burst = Math.min(500 - sent, 1 + (sent % 13));
        await Promise.all(Array.from({ length: burst }, () => f.broker.publish({ session: 's', type: 'e', data: sent })));
        sent += burst;
        if (sent % 50 < burst) await sleep(2);
        else await new Promise((r) => setImmediate(r));
      }
      await waitFor('the sink to reach 500', () => f.sink.last('s')!.seq >= 500);
      // Every message was either delivered or dropped by the network: late ones were handled too.
      await waitFor('the network to drain', () => f.delivered.length + f.inner.dropped === 500);
      await waitFor('no heal in flight', () => f.calls.history === f.streams.counters.gaps);
      t.same(f.sink.frames('s'), range(1, 500), 'exactly 1..500, in order, once each');
      t.same(f.sink.resyncs('s'), [], 'no resync');
      t.same(f.sink.violations, []);
      t.ok(f.inner.dropped > 0, 'the network dropped messages');
      t.ok(f.streams.counters.gaps > 0, 'gaps were noticed');
      t.ok(f.streams.counters.healedFrames > 0, 'frames were healed from history');
      t.equal(f.streams.counters.stale, 0);
    });
  }
});

t.test('the position check heals a lost tail that no later message reveals', async (t) => {
  const f = await fixture(t, { checkMs: 10 });
  await opened(f, 's');
  f.drop = (m) => m.seq >= 4;
  await publish(f, 's', 6); // 4..6 lost, nothing follows
  t.same(f.sink.frames('s'), range(1, 3));
  await waitFor('the tail healed', () => f.sink.last('s')!.seq === 6);
  t.same(f.sink.frames('s'), range(1, 6));
  t.equal(f.streams.counters.healedFrames, 3);
  t.same(f.sink.violations, []);
});

t.test('an epoch change: resync before any frame of the new epoch; old messages are stale', async (t) => {
  const f = await fixture(t);
  const pos = await opened(f, 's');
  await publish(f, 's', 3);
  t.same(f.sink.frames('s'), range(1, 3));
  const old = f.delivered.slice();
  f.inner.resetEpoch('s');
  const next = await publish(f, 's', 3);
  const epoch = next[0].epoch;
  t.not(epoch, pos.epoch, 'the broker continues under a new epoch');
  await waitFor('new epoch at 3', () => f.sink.last('s')?.epoch === epoch && f.sink.last('s')!.seq === 3);
  const at = f.sink.log.findIndex((e) => e.kind === 'resync');
  t.ok(at >= 0, 'a resync was forwarded');
  const resync = f.sink.log[at] as Extract<Entry, { kind: 'resync' }>;
  t.equal(resync.session, 's');
  t.equal(resync.epoch, epoch, 'the resync names the new epoch');
  t.ok(resync.head >= 1 && resync.head <= 3, 'at the head the heal read');
  t.notOk(
    f.sink.log.slice(0, at).some((e) => e.kind === 'frame' && e.epoch === epoch),
    'no frame of the new epoch before the resync',
  );
  t.same(
    f.sink.log.slice(at + 1).map((e) => (e.kind === 'frame' ? `${e.epoch}/${e.seq}` : e.kind)),
    range(resync.head + 1, 3).map((s) => `${epoch}/${s}`),
    'after the resync: the new epoch, in order, from its head',
  );
  t.equal(f.streams.counters.resyncs, 1);

  const before = f.sink.log.length;
  f.streams.onMessage(old[2]); // a late message of the old epoch
  await waitFor('the old message counted stale', () => f.streams.counters.stale === 1);
  t.equal(f.sink.log.length, before, 'the stale message was not forwarded');
  await publish(f, 's', 1);
  await waitFor('new epoch at 4', () => f.sink.last('s')!.seq === 4);
  t.same(f.sink.frames('s', epoch).at(-1), 4, 'the new epoch continues');
  t.equal(f.streams.counters.resyncs, 1, 'the stale message caused no resync');
  const drops = f.streams.drops.snapshot();
  t.same(drops.stream_stale, [0, 0, 1], 'the stale message dropped as stream_stale');
  t.same(drops.resync_skipped, [], 'an epoch change resyncs without a frame count (the old epoch\'s length is unknown)');
  t.same(f.sink.violations, []);
});

t.test('an epoch change on a lossy network: one resync, then the new epoch exactly', async (t) => {
  for (const seed of [5, 11, 99]) {
    await t.test(`seed ${seed}`, async (t) => {
      const f = await fixture(t, {
        network: { delayMs: 1, jitterMs: 4, dropRate: 0.2, historyDelayMs: 8, seed },
        checkMs: 10,
      });
      await opened(f, 's');
      const first = await Promise.all(Array.from({ length: 100 }, () => f.broker.publish({ session: 's', type: 'e', data: 1 })));
      await sleep(2); // some old-epoch messages are still in flight when the epoch changes
      f.inner.resetEpoch('s');
      const second = await Promise.all(Array.from({ length: 100 }, () => f.broker.publish({ session: 's', type: 'e', data: 2 })));
      const epoch = second[0].epoch;
      t.not(epoch, first[0].epoch);
      await waitFor('the new epoch at 100', () => f.sink.last('s')!.epoch === epoch && f.sink.last('s')!.seq === 100);
      await waitFor('the network to drain', () => f.delivered.length + f.inner.dropped === 200);
      const resyncs = f.sink.resyncs('s');
      t.equal(resyncs.length, 1, 'one resync');
      t.equal(resyncs[0].epoch, epoch);
      t.same(f.sink.frames('s', epoch), range(resyncs[0].head + 1, 100), 'the new epoch from the resync head, exactly');
      const at = f.sink.log.findIndex((e) => e.kind === 'resync');
      t.notOk(
        f.sink.log.slice(at + 1).some((e) => e.kind === 'frame' && e.epoch !== epoch),
        'no old-epoch frame after the resync',
      );
      t.same(f.sink.violations, []);
    });
  }
});

t.test('history trimmed past the gap: resync in the same epoch at the head, then later frames', async (t) => {
  const f = await fixture(t, { historySize: 5 });
  const pos = await opened(f, 's');
  await publish(f, 's', 2);
  f.drop = () => true;
  await publish(f, 's', 18); // 3..20; history keeps 16..20
  f.drop = () => false;
  f.streams.onMessage(f.delivered.find((m) => m.seq === 20)!);
  await waitFor('a resync', () => f.sink.resyncs('s').length === 1);
  await publish(f, 's', 2);
  await waitFor('22 forwarded', () => f.sink.last('s')!.seq === 22);
  t.same(
    f.sink.log.map((e) => (e.kind === 'frame' ? `frame ${e.seq}` : e.kind === 'resync' ? `resync ${e.epoch === pos.epoch ? 'same' : 'other'} ${e.head}` : e.label)),
    ['frame 1', 'frame 2', 'resync same 20', 'frame 21', 'frame 22'],
  );
  t.equal(f.streams.counters.resyncs, 1);
  t.equal(f.streams.counters.gaps, 1);
  t.equal(f.streams.counters.healedFrames, 0, 'nothing forwarded from a trimmed history');
  const drops = f.streams.drops.snapshot();
  t.same(drops.resync_skipped, [0, 0, 18], '3..20 never forwarded: the resync skipped them');
  t.same(drops.stream_duplicate, [0, 0, 1], 'the copy of 20 that started the heal, dropped after the resync passed it');
  t.same(f.sink.violations, []);
});

/** Opens 's' at seq 1 and starts a heal (2 dropped, 3 arrives) whose history reply waits on the returned gate. */
async function healInFlight(f: Fixture): Promise<{ promise: Promise<void>; resolve: () => void }> {
  await opened(f, 's');
  await publish(f, 's', 1);
  const gate = deferred();
  f.hooks.historyGate = gate.promise;
  f.drop = (m) => m.seq === 2;
  await publish(f, 's', 2);
  await waitFor('the heal read', () => f.calls.history === 1);
  return gate;
}

t.test('coalescing: gap-triggering messages during a heal share one history read', async (t) => {
  const f = await fixture(t);
  const gate = await healInFlight(f);
  f.drop = () => false;
  for (let i = 0; i < 7; i++) {
    await publish(f, 's', 1); // 4..10, each past last + 1 while the heal is in flight
    f.streams.onMessage(f.delivered.at(-1)!); // and each delivered twice
    await new Promise((r) => setImmediate(r));
  }
  f.streams.onMessage(f.delivered.find((m) => m.seq === 3)!);
  t.equal(f.calls.history, 1, 'one read while the heal is in flight');
  t.same(f.sink.frames('s'), [1], 'nothing forwarded past the gap meanwhile');
  gate.resolve();
  await waitFor('10 forwarded', () => f.sink.last('s')!.seq === 10);
  t.same(f.sink.frames('s'), range(1, 10), 'exact: 1..10, once each, in order');
  t.equal(f.calls.history, 1, 'one history read for the heal round');
  t.equal(f.streams.counters.gaps, 1, 'one gap');
  t.equal(f.streams.counters.healedFrames, 2, 'seqs 2 and 3 from history');
  t.equal(f.streams.counters.duplicates, 9, 'the redelivered copies and the live 3 were duplicates');
  t.same(f.sink.violations, []);
});

t.test('join catches the stream up before it resolves; late live frames are duplicates', async (t) => {
  const f = await fixture(t, { network: { delayMs: 30, jitterMs: 0, dropRate: 0, historyDelayMs: 0, seed: 1 } });
  const pos = await opened(f, 's');
  await publish(f, 's', 10);
  const read = await f.streams.join('s', { epoch: pos.epoch, seq: 0 }, 'u');
  const atJoin = f.sink.frames('s');
  const dupsAtJoin = f.streams.counters.duplicates;
  t.equal(read.epoch, pos.epoch);
  t.equal(read.head, 10);
  t.ok(read.complete);
  t.same(
    read.entries.map((e) => e.seq),
    range(1, 10),
  );
  t.same(atJoin, range(1, 10), 'when the join resolves, every seq up to its head was forwarded');
  t.equal(dupsAtJoin, 0, 'the live frames had not arrived yet: the join healed them');
  await waitFor('the late live frames', () => f.streams.counters.duplicates === 10);
  t.same(f.sink.frames('s'), range(1, 10), 'the late live frames were dropped as duplicates');
  await publish(f, 's', 1);
  await waitFor('11 forwarded', () => f.sink.last('s')!.seq === 11);
  t.same(f.sink.frames('s'), range(1, 11));
  t.same(f.sink.violations, []);
});

t.test('join with a stale epoch resolves with the new epoch, after the stream resynced', async (t) => {
  const f = await fixture(t, { network: { delayMs: 30, jitterMs: 0, dropRate: 0, historyDelayMs: 0, seed: 1 } });
  const pos = await opened(f, 's');
  await publish(f, 's', 3);
  await waitFor('3 forwarded', () => f.sink.last('s')!.seq === 3);
  f.inner.resetEpoch('s');
  const next = await publish(f, 's', 2);
  const epoch = next[0].epoch;
  const read = await f.streams.join('s', { epoch: pos.epoch, seq: 3 }, 'u');
  f.sink.mark('joined');
  t.equal(read.epoch, epoch, 'the join answers in the new epoch');
  t.equal(read.head, 2);
  t.notOk(read.complete, 'the old position is not recoverable');
  t.same(
    f.sink.log.map((e) => (e.kind === 'frame' ? `${e.epoch === epoch ? 'new' : 'old'} ${e.seq}` : e.kind === 'resync' ? `resync ${e.epoch === epoch ? 'new' : 'old'} ${e.head}` : e.label)),
    ['old 1', 'old 2', 'old 3', 'resync new 2', 'joined'],
    'the stream resynced to the new epoch before the join resolved',
  );
  await waitFor('the late new-epoch frames', () => f.streams.counters.duplicates === 2);
  await publish(f, 's', 1);
  await waitFor('new 3 forwarded', () => f.sink.last('s')!.seq === 3 && f.sink.last('s')!.epoch === epoch);
  t.same(f.sink.frames('s', epoch), [3]);
  t.same(f.sink.violations, []);
});

t.test('joins racing a lossy network each resolve with the stream caught up', async (t) => {
  for (const seed of [3, 8, 21]) {
    await t.test(`seed ${seed}`, async (t) => {
      const f = await fixture(t, { network: { delayMs: 1, jitterMs: 4, dropRate: 0.2, historyDelayMs: 8, seed } });
      const pos = await opened(f, 's');
      const behind: string[] = [];
      const errors: string[] = [];
      const joins: Array<Promise<void>> = [];
      for (let i = 0; i < 300; i++) {
        await f.broker.publish({ session: 's', type: 'e', data: i });
        if (i % 15 === 7) {
          const since = i % 2 === 0 ? null : { epoch: pos.epoch, seq: Math.floor(i / 2) };
          joins.push(
            f.streams.join('s', since, 'u').then(
              (read) => {
                const at = f.sink.last('s')!;
                if (at.epoch !== read.epoch || at.seq < read.head) behind.push(`join at ${i}: head ${read.head}, stream at ${at.seq}`);
              },
              (err: Error) => {
                errors.push(`join at ${i}: ${err.message}`);
              },
            ),
          );
        }
        if (i % 5 === 0) await sleep(1);
      }
      await Promise.all(joins);
      t.same(errors, [], 'every join resolved');
      t.same(behind, [], 'each join resolved after the stream reached its head');
      t.same(f.sink.violations, []);
    });
  }
});

t.test('linger: a quick re-open keeps the subscription; after lingerMs it is dropped', async (t) => {
  const f = await fixture(t, { lingerMs: 30 });
  await opened(f, 's');
  f.streams.close('s');
  f.streams.open('s');
  await sleep(90); // well past the linger: nothing may happen
  t.equal(f.calls.unsubscribe, 0, 'no unsubscribe: the re-open cancelled the linger');
  t.ok(f.streams.has('s'));
  t.equal(f.calls.subscribe, 1, 'still the one subscription');
  await publish(f, 's', 2);
  t.same(f.sink.frames('s'), [1, 2], 'frames still flow');

  f.streams.close('s');
  f.streams.close('s'); // a second close does not restart the linger
  await waitFor('the unsubscribe', () => f.calls.unsubscribe === 1);
  t.notOk(f.streams.has('s'), 'the session is no longer streamed');
  t.equal(f.streams.size, 0);
  await publish(f, 's', 1);
  t.same(f.sink.frames('s'), [1, 2], 'nothing forwarded after the stream ended');

  const pos = await opened(f, 's');
  t.equal(f.calls.subscribe, 2, 'a later open subscribes again');
  t.equal(pos.seq, 3, 'and starts at the head');
  await publish(f, 's', 1);
  t.same(f.sink.frames('s'), [1, 2, 4]);
  t.same(f.sink.violations, []);
});

t.test('stop() clears linger timers and sends no unsubscribe', async (t) => {
  const f = await fixture(t, { lingerMs: 20 });
  await opened(f, 'a');
  await opened(f, 'b');
  f.streams.close('a');
  f.streams.stop();
  t.equal(f.streams.size, 0);
  t.notOk(f.streams.has('a'));
  t.notOk(f.streams.has('b'));
  await sleep(60);
  t.equal(f.calls.unsubscribe, 0, 'no unsubscribe after stop()');
  await publish(f, 'b', 1);
  t.same(f.sink.log, [], 'nothing forwarded after stop()');
});

t.test('stop() during a failing heal leaves no retry timer and reads no more', async (t) => {
  const f = await fixture(t);
  await opened(f, 's');
  const baseline = refTimers();
  f.hooks.historyFails = true;
  f.drop = (m) => m.seq === 1;
  await publish(f, 's', 2); // 2 starts a heal whose reads fail and are retried
  await waitFor('a retried read', () => f.calls.history >= 2);
  f.streams.stop();
  await new Promise((r) => setImmediate(r));
  const reads = f.calls.history;
  t.equal(refTimers(), baseline, 'no timer of the stream left running after stop()');
  await sleep(250); // past the retry backoff in flight
  t.equal(f.calls.history, reads, 'no history read after stop()');
  t.same(f.sink.log, []);
});

t.test('a failed subscribe rejects the join, forgets the session, and a later open retries', async (t) => {
  const f = await fixture(t);
  f.hooks.subscribeFailures = 1;
  f.streams.open('s');
  t.ok(f.streams.has('s'), 'streamed while subscribing');
  await t.rejects(f.streams.join('s', null, 'u'), /subscribe refused/, 'the join sees the failure');
  t.notOk(f.streams.has('s'), 'the session is forgotten');
  t.equal(f.calls.unsubscribe, 1, 'the half-made subscription is undone');
  await t.rejects(f.streams.join('s', null, 'u'), /not streamed/, 'a join without a stream is refused');
  await publish(f, 's', 1);
  t.same(f.sink.log, [], 'a failed subscription forwards nothing');

  const pos = await opened(f, 's');
  t.equal(f.calls.subscribe, 2, 'the later open subscribed again');
  t.equal(pos.seq, 1);
  const read = await f.streams.join('s', { epoch: pos.epoch, seq: 0 }, 'u');
  t.equal(read.head, 1);
  await publish(f, 's', 1);
  t.same(f.sink.frames('s'), [2]);
  t.same(f.sink.violations, []);
});

t.test('onResubscribed: every stream heals to the head', async (t) => {
  const f = await fixture(t);
  await opened(f, 'a');
  await opened(f, 'b');
  await opened(f, 'c');
  await publish(f, 'a', 2);
  f.drop = () => true; // the broker connection is down: everything is missed
  await publish(f, 'a', 3);
  await publish(f, 'b', 5);
  f.drop = () => false;
  f.handler.resubscribed();
  await waitFor('a and b healed', () => f.sink.last('a')!.seq === 5 && f.sink.last('b')!.seq === 5);
  t.same(f.sink.frames('a'), range(1, 5));
  t.same(f.sink.frames('b'), range(1, 5));
  t.same(f.sink.frames('c'), [], 'a stream with nothing missed forwards nothing');
  t.equal(f.streams.counters.healedFrames, 8);
  t.equal(f.streams.counters.gaps, 0, 'healed without a gap');
  t.equal(f.calls.history, 3, 'one read per stream');
  await publish(f, 'a', 1);
  t.same(f.sink.frames('a'), range(1, 6));
  t.same(f.sink.violations, []);
});

t.test('onResubscribed during a heal in flight still heals past what was missed after its read', async (t) => {
  const f = await fixture(t);
  const gate = await healInFlight(f); // its read reaches up to 3
  f.drop = () => true; // the connection drops: 4..6 are missed
  await publish(f, 's', 3);
  f.drop = () => false;
  f.handler.resubscribed(); // while the heal (read at head 3) is still in flight
  gate.resolve();
  await waitFor('healed to the head (6)', () => f.sink.last('s')!.seq === 6, 1000).catch((err: Error) => t.fail(err.message));
  t.same(f.sink.frames('s'), range(1, 6), 'frames missed during the reconnect are healed');
  t.same(f.sink.violations, []);
});

t.test('a stream that ended during a heal reads no more and forwards nothing', async (t) => {
  const f = await fixture(t, { lingerMs: 5 });
  f.hooks.maxHistoryReads = 50; // a runaway heal loop would otherwise spin forever
  await opened(f, 's');
  await publish(f, 's', 1);
  const gate = deferred();
  f.hooks.historyGate = gate.promise;
  f.drop = (m) => m.seq === 2;
  await publish(f, 's', 3); // 2 dropped, 3 starts a heal; 4 waits in pending
  f.drop = () => false;
  await waitFor('the heal read', () => f.calls.history === 1);
  f.streams.close('s');
  await waitFor('the stream to end', () => !f.streams.has('s'));
  const pos = await opened(f, 's'); // a new stream of the same session
  t.equal(pos.seq, 4);
  gate.resolve();
  await sleep(20);
  t.equal(f.calls.history, 1, 'the ended stream read no more history');
  await publish(f, 's', 1);
  await waitFor('5 forwarded', () => f.sink.last('s')!.seq === 5);
  t.same(f.sink.frames('s'), [1, 5], 'only the new stream forwards, from its own position');
  t.same(f.sink.violations, []);
});

t.test('a stream that ended during a heal does not forward what it held', async (t) => {
  const f = await fixture(t, { lingerMs: 5 });
  f.hooks.maxHistoryReads = 50;
  await opened(f, 's');
  await publish(f, 's', 1);
  const gate = deferred();
  f.hooks.historyGate = gate.promise;
  f.handler.resubscribed(); // a heal (no gap) is in flight
  await waitFor('the heal read', () => f.calls.history === 1);
  await publish(f, 's', 2); // 2 and 3 arrive during the heal and wait in pending
  f.streams.close('s');
  await waitFor('the stream to end', () => !f.streams.has('s'));
  const pos = await opened(f, 's'); // a new stream of the same session starts at 3
  t.equal(pos.seq, 3);
  gate.resolve();
  await sleep(20);
  await publish(f, 's', 1);
  await waitFor('4 forwarded', () => f.sink.last('s')!.seq === 4);
  t.same(f.sink.frames('s'), [1, 4], 'the ended stream forwarded nothing after it ended');
  t.same(f.sink.violations, [], 'the new stream\'s frames are not preceded by stale ones');
});

t.test('stop() during a heal ends it: no more reads, nothing forwarded', async (t) => {
  const f = await fixture(t);
  f.hooks.maxHistoryReads = 50;
  await opened(f, 's');
  await publish(f, 's', 1);
  const gate = deferred();
  f.hooks.historyGate = gate.promise;
  f.drop = (m) => m.seq === 2 || m.seq === 4;
  await publish(f, 's', 4); // 2 dropped, 3 starts a heal reading up to 3; 5 waits in pending
  f.drop = () => false;
  await waitFor('the heal read', () => f.calls.history === 1);
  f.streams.stop();
  gate.resolve();
  await sleep(20);
  t.equal(f.calls.history, 1, 'the stopped stream read no more history');
  t.same(f.sink.frames('s'), [1], 'nothing forwarded after stop()');
});

t.test('joins from one position in one turn share one history read; a join in a later turn reads again', async (t) => {
  const f = await fixture(t);
  const pos = await opened(f, 's');
  await publish(f, 's', 5);
  await waitFor('5 forwarded', () => f.sink.last('s')?.seq === 5);
  const before = f.calls.history;
  const since = { epoch: pos.epoch, seq: 2 };
  const reads = await Promise.all(Array.from({ length: 50 }, (_, i) => f.streams.join('s', since, `u${i}`)));
  t.equal(f.calls.history - before, 1, '50 joins of one turn: one read');
  t.equal(f.streams.counters.sharedReads, 49, 'counted as shared');
  t.ok(reads.every((r) => r.complete && r.head === 5 && r.entries.map((e) => e.seq).join() === '3,4,5'), 'each got the replay');
  // A read begun before a join asked must not serve it: the join below comes in a
  // later turn, after seq 6, and must see it.
  await publish(f, 's', 1);
  const later = await f.streams.join('s', since, 'late');
  t.same(later.entries.map((e) => e.seq), [3, 4, 5, 6], 'a later join reads anew');
  const other = await Promise.all([f.streams.join('s', { epoch: pos.epoch, seq: 1 }, 'a'), f.streams.join('s', { epoch: 'gone', seq: 1 }, 'b')]);
  t.same(other.map((r) => r.complete), [true, false], 'different positions do not share');
  t.type(other[1].snapshot, 'object', 'a read that cannot replay is made per user, with the snapshot');
});

t.test('joins from one position arriving while its read is in flight share the next read, which sees what came meanwhile', async (t) => {
  const f = await fixture(t);
  const pos = await opened(f, 's');
  await publish(f, 's', 5);
  await waitFor('5 forwarded', () => f.sink.last('s')?.seq === 5);
  const before = f.calls.history;
  const since = { epoch: pos.epoch, seq: 2 };
  let open!: () => void;
  f.hooks.historyGate = new Promise<void>((resolve) => (open = resolve));
  const first = f.streams.join('s', since, 'first');
  await waitFor('the first read', () => f.calls.history === before + 1);
  await publish(f, 's', 1); // seq 6: after the first read, before the others asked
  // A go-away storm: 20 joins from one position, each in its own turn.
  const storm: Array<Promise<HistoryRead>> = [];
  for (let i = 0; i < 20; i++) {
    storm.push(f.streams.join('s', since, `u${i}`));
    await new Promise((r) => setImmediate(r));
  }
  t.equal(f.calls.history, before + 1, 'no second read while the first is in flight');
  f.hooks.historyGate = null;
  open();
  const [a, ...rest] = await Promise.all([first, ...storm]);
  t.equal(f.calls.history, before + 2, '21 joins over 21 turns: two reads');
  t.same(a.entries.map((e) => e.seq), [3, 4, 5], 'the first join got what its read saw');
  t.ok(rest.every((r) => r.entries.map((e) => e.seq).join() === '3,4,5,6'), 'the later joins share a read begun after they asked: it has seq 6');
});

/** Forward times of the sink's frames, by seq (for the scheduled-release tests). */
function timedSink(f: Fixture, session: string): Map<number, number> {
  const at = new Map<number, number>();
  const forward = f.sink.forward.bind(f.sink);
  f.sink.forward = (msg) => {
    if (msg.session === session) at.set(msg.seq, Date.now());
    forward(msg);
  };
  return at;
}

t.test('scheduled: a frame with `at` and every frame after it wait until `at`; notices do not', async (t) => {
  const f = await fixture(t);
  const forwardedAt = timedSink(f, 's');
  const pos = await opened(f, 's');
  await publish(f, 's', 1);
  const at = Date.now() + 400;
  await f.broker.publish({ session: 's', type: 'question', data: 1, at });
  await publish(f, 's', 2);
  await f.broker.notice('s', Uint8Array.of(0x80));
  await waitFor('the first frame', () => forwardedAt.has(pos.seq + 1));
  await sleep(100);
  t.same(f.sink.frames('s'), [pos.seq + 1, 0], 'before at: the frame before it and the notice only');
  const read = await f.streams.join('s', { epoch: pos.epoch, seq: 0 }, 'u');
  t.same(read.entries.map((e) => e.seq), [1], 'a join meanwhile replays only what was released');
  t.equal(read.head, 1, 'and its head is the last released seq');
  const fresh = await f.streams.join('s', null, 'u');
  t.equal(fresh.head, 1, 'a fresh join starts at the last released seq');
  await waitFor('all released', () => forwardedAt.has(4), 2000);
  t.ok(forwardedAt.get(2)! >= at, `the scheduled frame went out no earlier than at (${forwardedAt.get(2)! - at} ms after)`);
  t.ok(forwardedAt.get(3)! >= at && forwardedAt.get(4)! >= at, 'the frames after it waited too');
  t.same(f.sink.frames('s'), [1, 0, 2, 3, 4], 'in seq order');
  t.same(f.sink.violations, []);
  const after = await f.streams.join('s', { epoch: pos.epoch, seq: 0 }, 'u');
  t.same(after.entries.map((e) => e.seq), [1, 2, 3, 4], 'after at, joins replay it');
});

t.test('scheduled: a snapshot read leaves out values of held events', async (t) => {
  const f = await fixture(t);
  await opened(f, 's');
  await f.broker.publish({ session: 's', type: 'board', data: 'b1', snapshot: 'board' });
  await f.broker.publish({ session: 's', type: 'question', data: 'q1', snapshot: 'question' });
  await f.broker.publish({ session: 's', type: 'question', data: 'q2', snapshot: 'question', at: Date.now() + 300 });
  await f.broker.publish({ session: 's', type: 'board', data: 'b2', snapshot: 'board' });
  await waitFor('two released', () => f.sink.frames('s').length === 2);
  const read = await f.streams.join('s', { epoch: 'gone', seq: 9 }, 'u');
  t.equal(read.complete, false);
  t.same(read.snapshot, {}, 'keys whose latest value is held (q2, and b2 behind it) are left out: the broker keeps only the latest value');
  await waitFor('all released', () => f.sink.frames('s').length === 4, 2000);
  const later = await f.streams.join('s', { epoch: 'gone', seq: 9 }, 'u');
  t.same(Object.fromEntries(Object.entries(later.snapshot ?? {}).map(([k, v]) => [k, v.data])), { board: 'b2', question: 'q2' }, 'once released, the snapshot has them');
});

t.test('scheduled: a stream opened while events are held holds them too', async (t) => {
  const f = await fixture(t);
  await publish(f, 's', 2);
  const at = Date.now() + 400;
  await f.broker.publish({ session: 's', type: 'question', data: 1, at });
  await publish(f, 's', 1);
  const forwardedAt = timedSink(f, 's');
  f.streams.open('s');
  await waitFor('positioned', () => f.positions.some((p) => p.s === 's'));
  f.sink.from('s', f.positions[0].ep, 2);
  const read = await f.streams.join('s', { epoch: f.positions[0].ep, seq: 0 }, 'u');
  t.same(read.entries.map((e) => e.seq), [1, 2], 'a join before at replays up to the held event');
  await waitFor('released', () => forwardedAt.has(4), 2000);
  t.ok(forwardedAt.get(3)! >= at, 'the held event reaches the shards at its time, though sequenced before the stream opened');
  t.same(f.sink.frames('s'), [3, 4]);
  t.same(f.sink.violations, []);
});

t.test('scheduled: a resync drops what was held; stop() leaves no timer', async (t) => {
  const f = await fixture(t, { historySize: 2 });
  const pos = await opened(f, 's');
  t.equal(pos.seq, 0);
  f.drop = (msg) => msg.seq === 3 || msg.seq === 4; // lost: the heal finds them trimmed
  await publish(f, 's', 1);
  await f.broker.publish({ session: 's', type: 'e', data: 1, at: Date.now() + 60_000 });
  await publish(f, 's', 3);
  await waitFor('resync', () => f.sink.resyncs('s').length === 1);
  t.same(f.sink.resyncs('s'), [{ epoch: pos.epoch, head: 5 }]);
  await publish(f, 's', 1);
  await waitFor('6', () => f.sink.frames('s').includes(6));
  t.same(f.sink.frames('s'), [1, 6], 'the held frame was dropped with the resync; the stream goes on after it');
  const drops = f.streams.drops.snapshot();
  t.same(drops.resync_held, [0, 0, 1], 'the held frame (2) counted as resync_held');
  t.same(drops.resync_skipped, [0, 0, 3], '3..5 counted as resync_skipped');
  const timers = refTimers();
  f.streams.stop();
  t.equal(refTimers(), timers, 'no ref\'d timer is left');
});
