// The command relay (daemon/egress/command-relay.ts) on a real memory journal with
// test sinks: every command delivered in journal order through sink failures,
// resumes from the saved cursor, redelivers (never skips) when a save is lost, and
// stops while the sink keeps failing.
import t, { type Test } from 'tap';
import type { CommandJournal, JournalEntry } from '../../daemon/engine/command-journal.js';
import { createMemoryCommandJournal } from '../../daemon/engine/memory-command-journal.js';
import { backoffDelay, CommandRelay, MemoryCursorStore, relayedUpstream, type CommandSink, type CursorStore } from '../../daemon/egress/command-relay.js';
import { createLogger } from '../../daemon/log.js';
import { command } from '../conformance/command-journal.js';

interface LogLine {
  level: number;
  msg: string;
}

/** A sink that rejects the calls numbered in `failOn` (1-based), every call when `always`, and while `down`. */
class TestSink implements CommandSink {
  calls = 0;
  /** RabbitMQ down: every call fails until it is set back. */
  down = false;
  readonly delivered: JournalEntry[] = [];
  constructor(private readonly fail: { failOn?: ReadonlySet<number>; always?: boolean } = {}) {}
  async deliver(entries: JournalEntry[]): Promise<void> {
    this.calls++;
    if (this.down || this.fail.always || this.fail.failOn?.has(this.calls)) throw new Error(`broker nacked call ${this.calls}`);
    this.delivered.push(...entries);
  }
}

function logger() {
  const lines: LogLine[] = [];
  const log = createLogger({ level: 'debug', destination: { write: (s: string) => void lines.push(JSON.parse(s) as LogLine) } });
  return { log, lines };
}

async function waitFor(what: string, cond: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function recordMany(j: CommandJournal, from: number, to: number): Promise<number[]> {
  const pos: number[] = [];
  for (let i = from; i <= to; i++) pos.push((await j.record(command({ cid: `c${i}` }))).pos);
  return pos;
}

const FAST = { batch: 7, idleMs: 10, retryMs: { min: 1, max: 4 } };

/** The relay's timers do not hold the process up (a daemon has its sockets): a test only waiting on them needs this. */
function keepAlive(t: Test): void {
  const alive = setInterval(() => {}, 1000);
  t.teardown(() => clearInterval(alive));
}

t.test('every command is delivered once, in journal order, through sink failures', async (t) => {
  const journal = createMemoryCommandJournal({ capacity: 10_000, maxBytes: 2 ** 40 });
  const sink = new TestSink({ failOn: new Set([1, 3, 4, 7, 12]) });
  const cursor = new MemoryCursorStore();
  const { log, lines } = logger();
  const relay = new CommandRelay(journal, sink, { ...FAST, log, cursor });
  t.teardown(() => relay.stop());
  const first = await recordMany(journal, 1, 50);
  relay.start();
  relay.start(); // idempotent: one loop
  await waitFor('50 deliveries', () => sink.delivered.length >= 50);
  // More commands while it runs, recorded concurrently, each followed by notify().
  const more = await Promise.all(
    Array.from({ length: 30 }, async (_, i) => {
      const { pos } = await journal.record(command({ cid: `c${51 + i}` }));
      relay.notify();
      return pos;
    }),
  );
  const all = [...first, ...more].sort((a, b) => a - b);
  await waitFor('80 deliveries', () => sink.delivered.length >= 80);
  await relay.stop();
  t.same(sink.delivered.map((e) => e.pos), all, 'every position exactly once, in increasing order');
  t.same(sink.delivered.slice(0, 3).map((e) => e.cid), ['c1', 'c2', 'c3'], 'entries carry their commands');
  t.ok(sink.calls > 12, 'the failing calls were retried');
  t.ok(sink.delivered.length <= 80 && sink.calls >= Math.ceil(80 / 7), 'batches of at most `batch`');
  t.equal(relay.cursor, all[all.length - 1], 'the cursor is the last accepted position');
  t.equal(await cursor.load(), all[all.length - 1], 'and it was saved');
  t.equal(lines.filter((l) => /command delivery failed/.test(l.msg)).length, 5, 'each failure logged once');
});

t.test('a memory journal frees what the relay delivered, never what it has only read while the sink fails', async (t) => {
  const journal = createMemoryCommandJournal({ capacity: 1000, maxBytes: 2 ** 40, keepTakenMs: 100 });
  t.teardown(() => journal.close());
  const sink = new TestSink();
  sink.down = true;
  const relay = new CommandRelay(journal, sink, { ...FAST, log: logger().log });
  t.teardown(() => relay.stop());
  const pos = await recordMany(journal, 1, 10);
  relay.start();
  // The relay reads the first batch again and again; well past keepTakenMs, it must all still be there.
  await sleep(1500);
  t.same((await journal.read(0, 100)).map((e) => e.pos), pos, 'nothing went while the sink failed');
  sink.down = false;
  await waitFor('10 deliveries', () => sink.delivered.length === 10);
  t.same(sink.delivered.map((e) => e.pos), pos, 'all delivered, in order');
  await sleep(1500);
  t.same(await journal.read(0, 100), [], 'once delivered, they went after keepTakenMs');
});

t.test('relayedUpstream: a command pushed out of the memory journal before the relay read it is recorded again, and waited for until it went', async (t) => {
  // Three readable commands at most; the sink fails until told otherwise (RabbitMQ down).
  const journal = createMemoryCommandJournal({ capacity: 3, maxBytes: 2 ** 40 });
  t.teardown(() => journal.close());
  const sink = new TestSink();
  sink.down = true;
  const relay = new CommandRelay(journal, sink, { ...FAST, log: logger().log });
  t.teardown(() => relay.stop());
  relay.start();
  keepAlive(t);
  const first = command({ cid: 'first' });
  const { pos } = await journal.record(first);
  let acked = false;
  const waiting = relayedUpstream(journal, relay, first, pos, 5000).then(() => (acked = true));
  await recordMany(journal, 1, 5); // pushes `first` out before anything was relayed
  t.notOk((await journal.read(0, 100)).some((e) => e.cid === 'first'), 'first was pushed out');
  await sleep(100);
  sink.down = false;
  await waiting;
  t.ok(acked, 'the wait ends');
  t.ok(sink.delivered.some((e) => e.cid === 'first'), 'and only once the command itself went upstream (recorded again, relayed)');
});

t.test('relayedUpstream: a command the relay delivered resolves at once; one it cannot deliver rejects at the deadline', async (t) => {
  const journal = createMemoryCommandJournal({ capacity: 100, maxBytes: 2 ** 40 });
  t.teardown(() => journal.close());
  const sink = new TestSink();
  const relay = new CommandRelay(journal, sink, { ...FAST, log: logger().log });
  t.teardown(() => relay.stop());
  relay.start();
  const ok = command({ cid: 'ok' });
  const { pos } = await journal.record(ok);
  relay.notify();
  await relayedUpstream(journal, relay, ok, pos, 2000);
  t.equal(sink.delivered.filter((e) => e.cid === 'ok').length, 1, 'delivered once, not recorded again');
  sink.down = true;
  const late = command({ cid: 'late' });
  const at = await journal.record(late);
  keepAlive(t);
  const outcome = await relayedUpstream(journal, relay, late, at.pos, 300).then(
    () => 'resolved',
    (err: Error) => err.message,
  );
  t.match(outcome, /not relayed within 300 ms/, 'RabbitMQ down: rejects when the time is up');
});

t.test('notify() cuts the idle wait short', async (t) => {
  const journal = createMemoryCommandJournal({ capacity: 100, maxBytes: 2 ** 40 });
  const sink = new TestSink();
  const relay = new CommandRelay(journal, sink, { batch: 10, idleMs: 60_000, retryMs: { min: 1, max: 4 }, log: logger().log });
  t.teardown(() => relay.stop());
  relay.start();
  await sleep(50); // the relay found the journal empty and waits its idle minute
  await journal.record(command({ cid: 'a' }));
  await sleep(200);
  t.equal(sink.delivered.length, 0, 'without notify the relay is still idle');
  relay.notify();
  await waitFor('the delivery after notify', () => sink.delivered.length === 1, 1000);
  t.same(sink.delivered.map((e) => e.cid), ['a']);
});

t.test('a restarted relay resumes from the saved cursor', async (t) => {
  const journal = createMemoryCommandJournal({ capacity: 1000, maxBytes: 2 ** 40 });
  const cursor = new MemoryCursorStore();
  const first = new TestSink();
  const relay1 = new CommandRelay(journal, first, { ...FAST, log: logger().log, cursor });
  const pos = await recordMany(journal, 1, 10);
  relay1.start();
  await waitFor('the first ten', () => first.delivered.length === 10);
  await relay1.stop();
  t.equal(await cursor.load(), pos[9]);
  const later = await recordMany(journal, 11, 15);
  const second = new TestSink({ failOn: new Set([1]) });
  const relay2 = new CommandRelay(journal, second, { ...FAST, log: logger().log, cursor });
  t.teardown(() => relay2.stop());
  relay2.start();
  await waitFor('the next five', () => second.delivered.length >= 5);
  await sleep(30);
  t.same(second.delivered.map((e) => e.pos), later, 'only what came after the saved cursor, in order');
  t.equal(relay2.cursor, later[4]);
});

t.test('a lost cursor save means redelivery after a restart, never a skip', async (t) => {
  const journal = createMemoryCommandJournal({ capacity: 1000, maxBytes: 2 ** 40 });
  // The process "crashes" after every delivery, before the cursor is saved.
  let saved = 0;
  const neverSaves: CursorStore = { load: async () => saved, save: () => Promise.reject(new Error('disk full')) };
  const first = new TestSink();
  const { log, lines } = logger();
  const relay1 = new CommandRelay(journal, first, { ...FAST, log, cursor: neverSaves });
  const pos = await recordMany(journal, 1, 10);
  relay1.start();
  await waitFor('ten deliveries', () => first.delivered.length === 10);
  await relay1.stop();
  t.equal(relay1.cursor, pos[9], 'the relay went on from its cursor in memory');
  t.ok(lines.some((l) => l.level === 50 && /saving the command relay cursor failed/.test(l.msg)), 'the failed save was logged');
  saved = pos[4]; // an older save that did land
  const second = new TestSink();
  const relay2 = new CommandRelay(journal, second, { ...FAST, log: logger().log, cursor: neverSaves });
  t.teardown(() => relay2.stop());
  relay2.start();
  await waitFor('the redelivery', () => second.delivered.length >= 5);
  t.same(second.delivered.map((e) => e.pos), pos.slice(5), 'everything after the last landed save is delivered again');
});

t.test('stop() resolves while the sink keeps failing, and skips nothing', async (t) => {
  const journal = createMemoryCommandJournal({ capacity: 100, maxBytes: 2 ** 40 });
  await recordMany(journal, 1, 3);
  const quick = new TestSink({ always: true });
  const relay = new CommandRelay(journal, quick, { ...FAST, log: logger().log });
  relay.start();
  await waitFor('a few failed attempts', () => quick.calls >= 5);
  await relay.stop();
  const calls = quick.calls;
  await sleep(50);
  t.equal(quick.calls, calls, 'no attempt after stop()');
  t.equal(relay.cursor, 0, 'the cursor did not move past undelivered commands');

  const slow = new TestSink({ always: true });
  const patient = new CommandRelay(journal, slow, { batch: 10, idleMs: 10, retryMs: { min: 60_000, max: 60_000 }, log: logger().log });
  patient.start();
  await waitFor('the first failure', () => slow.calls === 1);
  const stopped = await Promise.race([patient.stop().then(() => 'stopped'), sleep(1000).then(() => 'still waiting')]);
  t.equal(stopped, 'stopped', 'stop() ends a minute-long backoff at once');
});

t.test('retries back off instead of hammering a failing sink', async (t) => {
  const journal = createMemoryCommandJournal({ capacity: 100, maxBytes: 2 ** 40 });
  await recordMany(journal, 1, 1);
  const sink = new TestSink({ always: true });
  const relay = new CommandRelay(journal, sink, { batch: 10, idleMs: 10, retryMs: { min: 40, max: 80 }, log: logger().log });
  relay.start();
  await sleep(300);
  await relay.stop();
  // Waits of at least 20, 40, 40, … ms: about six attempts in 300 ms; a hot loop makes thousands.
  t.ok(sink.calls >= 2 && sink.calls <= 10, `${sink.calls} attempts in 300 ms`);
});

t.test('a failing journal read is retried from the same cursor', async (t) => {
  const inner = createMemoryCommandJournal({ capacity: 100, maxBytes: 2 ** 40 });
  let readFailures = 2;
  const journal: CommandJournal = {
    record: (cmd) => inner.record(cmd),
    read: (after, limit) => (readFailures-- > 0 ? Promise.reject(new Error('connection reset')) : inner.read(after, limit)),
    readEncoded: (after, limit) => inner.readEncoded(after, limit),
    head: () => inner.head(),
    taken: (upTo) => inner.taken(upTo),
    close: () => inner.close(),
  };
  const pos = await recordMany(inner, 1, 4);
  const sink = new TestSink();
  const { log, lines } = logger();
  const relay = new CommandRelay(journal, sink, { ...FAST, log });
  t.teardown(() => relay.stop());
  relay.start();
  await waitFor('four deliveries', () => sink.delivered.length === 4);
  t.same(sink.delivered.map((e) => e.pos), pos);
  t.equal(lines.filter((l) => /reading the command journal failed/.test(l.msg)).length, 2);
});

t.test('entries at or below the cursor are refused, not delivered', async (t) => {
  const inner = createMemoryCommandJournal({ capacity: 100, maxBytes: 2 ** 40 });
  await recordMany(inner, 1, 2);
  // A journal that ignores `after`: delivering would repeat the same batch forever.
  const journal: CommandJournal = { ...inner, read: (_after, limit) => inner.read(0, limit) };
  const sink = new TestSink();
  const { log, lines } = logger();
  const relay = new CommandRelay(journal, sink, { ...FAST, log });
  relay.start();
  await waitFor('the contract breach to be logged', () => lines.some((l) => /journal contract broken/.test(l.msg)));
  await relay.stop();
  t.equal(sink.delivered.length, 2, 'the first batch only, once');
});

t.test('backoffDelay: the cap doubles from min to max, jittered into [cap/2, cap]', async (t) => {
  const retry = { min: 100, max: 1000 };
  t.same([1, 2, 3, 4, 5, 6].map((n) => backoffDelay(n, retry, () => 0.999999)), [100, 200, 400, 800, 1000, 1000]);
  t.same([1, 2, 3, 4, 5].map((n) => backoffDelay(n, retry, () => 0)), [50, 100, 200, 400, 500]);
  t.equal(backoffDelay(1_000_000, retry, () => 0.5), 750, 'huge attempt numbers stay at max');
});

t.test('the constructor refuses nonsensical settings', async (t) => {
  const journal = createMemoryCommandJournal({ capacity: 10, maxBytes: 2 ** 40 });
  const sink = new TestSink();
  const log = logger().log;
  t.throws(() => new CommandRelay(journal, sink, { ...FAST, batch: 0, log }), /batch must be an integer ≥ 1/);
  t.throws(() => new CommandRelay(journal, sink, { ...FAST, idleMs: 0, log }), /idleMs/);
  t.throws(() => new CommandRelay(journal, sink, { ...FAST, retryMs: { min: 10, max: 5 }, log }), /1 ≤ min ≤ max/);
});
