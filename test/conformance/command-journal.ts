/**
 * The CommandJournal contract (daemon/engine/command-journal.ts) as one suite every
 * implementation runs (memory now, Postgres later). A factory builds a fresh,
 * isolated journal per subtest (a Postgres factory gives each its own schema/table).
 */
import { compactPackr } from '../support/msgpack-bytes.js';
import { decode } from '../../protocol/codec.js';
import type { Test } from 'tap';
import type { Command, CommandJournal, JournalEntry } from '../../daemon/engine/command-journal.js';

/** Builds a fresh, isolated journal (closed by the suite). */
export type CommandJournalFactory = () => Promise<CommandJournal>;

/** A command with sensible stamps; `over` replaces any field. */
export function command(over: Partial<Command> = {}): Command {
  return {
    session: 'quiz:1',
    user: 'alice',
    role: 'participant',
    cid: 'c1',
    type: 'answer',
    data: { choice: 'A' },
    receivedAt: 1_700_000_000_000,
    receivedAtUs: 1_700_000_000_000_123,
    lastSeq: 7,
    lastSeqAt: 1_699_999_999_500,
    lastSeqAtUs: 1_699_999_999_500_456,
    conn: 'abc.0.1',
    shard: 0,
    ...over,
  };
}

/** What concurrent writers and paging readers saw. */
export interface ConcurrentRun {
  /** Every recorded cid and the position `record` gave it. */
  recorded: Map<string, number>;
  /** Per reader, the entries it read, in the order it read them. */
  reads: JournalEntry[][];
}

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Writers record concurrently (several calls in flight each) while readers page by
 * `after` from 0 until the writers are done and nothing is left to read.
 */
export async function writeWhileReading(
  j: CommandJournal,
  { writers = 8, rounds = 15, inFlight = 4, readers = 3, limit = 7 } = {},
): Promise<ConcurrentRun> {
  const recorded = new Map<string, number>();
  let writing = true;
  const write = async (w: number) => {
    for (let r = 0; r < rounds; r++) {
      const cids = Array.from({ length: inFlight }, (_, i) => `w${w}-r${r}-${i}`);
      const results = await Promise.all(cids.map((cid) => j.record(command({ cid }))));
      results.forEach((res, i) => recorded.set(cids[i], res.pos));
      await turn();
    }
  };
  const read = async () => {
    const seen: JournalEntry[] = [];
    let after = 0;
    for (;;) {
      const done = !writing; // sampled before the read: an empty read after it means drained
      const page = await j.read(after, limit);
      seen.push(...page);
      if (page.length > 0) after = page[page.length - 1].pos;
      else if (done) return seen;
      await turn();
    }
  };
  const reading = Array.from({ length: readers }, read);
  await Promise.all(Array.from({ length: writers }, (_, w) => write(w)));
  writing = false;
  return { recorded, reads: await Promise.all(reading) };
}

/** Breaches of the readers' contract in a run: skipped, repeated, unknown or out-of-order entries. */
export function visibilityProblems(run: ConcurrentRun): string[] {
  const problems: string[] = [];
  run.reads.forEach((entries, r) => {
    const count = new Map<string, number>();
    let prev = 0;
    for (const e of entries) {
      if (!(e.pos > prev)) problems.push(`reader ${r}: position ${e.pos} after ${prev}`);
      prev = e.pos;
      count.set(e.cid, (count.get(e.cid) ?? 0) + 1);
      const pos = run.recorded.get(e.cid);
      if (pos === undefined) problems.push(`reader ${r}: read ${e.cid}, which nobody recorded`);
      else if (pos !== e.pos) problems.push(`reader ${r}: read ${e.cid} at ${e.pos}, recorded at ${pos}`);
    }
    for (const cid of run.recorded.keys()) {
      const n = count.get(cid) ?? 0;
      if (n !== 1) problems.push(`reader ${r}: read ${cid} ${n} times`);
    }
  });
  return problems;
}

/** Runs the shared CommandJournal contract suite against `factory`. */
export function commandJournalConformance(t: Test, name: string, factory: CommandJournalFactory): void {
  const fixture = async (t: Test): Promise<CommandJournal> => {
    const j = await factory();
    t.teardown(() => j.close());
    return j;
  };

  t.test(`${name}: record stores a command once per (session, user, cid)`, async (t) => {
    const j = await fixture(t);
    const first = await j.record(command());
    t.equal(first.duplicate, false);
    t.type(first.pos, 'number');
    const repeat = await j.record(command({ data: { choice: 'B' }, receivedAt: 1_700_000_001_000 }));
    t.same(repeat, { duplicate: true, pos: first.pos }, 'a repeat stores nothing and names the first position');
    const otherUser = await j.record(command({ user: 'bob' }));
    const otherSession = await j.record(command({ session: 'quiz:2' }));
    const otherCid = await j.record(command({ cid: 'c2' }));
    t.same([otherUser.duplicate, otherSession.duplicate, otherCid.duplicate], [false, false, false], 'the key is the triple');
    t.ok(first.pos < otherUser.pos && otherUser.pos < otherSession.pos && otherSession.pos < otherCid.pos, 'positions increase');
    const all = await j.read(0, 100);
    t.equal(all.length, 4, 'four commands stored');
    t.same(all[0], { ...command(), pos: first.pos }, 'the first version is kept with every stamp');
  });

  t.test(`${name}: a command given as encoded data (what shards pass) is stored as those bytes`, async (t) => {
    const j = await fixture(t);
    const data = { choice: 'A', at: [1, 2.5, -3], raw: new Uint8Array([0, 255]), none: null };
    // Compact maps, as a client may write them: stored and read back as the same value.
    const bytes = new Uint8Array(compactPackr.pack(data));
    const { data: _, ...fields } = command({ cid: 'enc' });
    const first = await j.record({ ...fields, encodedData: bytes });
    t.equal(first.duplicate, false);
    const repeat = await j.record(command({ cid: 'enc', data: 'other' }));
    t.same(repeat, { duplicate: true, pos: first.pos }, 'the same key either way');
    const [entry] = await j.read(first.pos - 1, 1);
    t.same(entry, { ...fields, data, pos: first.pos }, 'read back decoded, with every stamp');
  });

  t.test(`${name}: readEncoded gives read's entries with their data as stored msgpack`, async (t) => {
    const j = await fixture(t);
    await j.record(command({ cid: 'a', data: { choice: 'A', n: [1, 2.5] } }));
    await j.record(command({ cid: 'b', data: null }));
    await j.record(command({ cid: 'c', data: 'x'.repeat(3000) }));
    const read = await j.read(0, 10);
    const encoded = await j.readEncoded(0, 10);
    t.same(
      encoded.map((e) => ({ ...e, data: decode(e.data).ok ? (decode(e.data) as { value: unknown }).value : 'not msgpack' })),
      read,
      'same entries, same order, same data once decoded',
    );
    t.same((await j.readEncoded(read[0].pos, 1)).map((e) => e.cid), ['b'], 'after and limit as for read');
    t.same((await j.readEncoded(0, 10, 1)).map((e) => e.cid), ['a'], 'maxBytes as for read: at least one');
  });

  t.test(`${name}: concurrent records of one key store it once`, async (t) => {
    const j = await fixture(t);
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => j.record(command({ cid: 'same', receivedAt: i }))));
    t.equal(results.filter((r) => !r.duplicate).length, 1);
    t.equal(new Set(results.map((r) => r.pos)).size, 1, 'every caller learns the same position');
    t.equal((await j.read(0, 100)).length, 1);
  });

  t.test(`${name}: read pages after a position, oldest first`, async (t) => {
    const j = await fixture(t);
    const positions: number[] = [];
    for (let i = 1; i <= 25; i++) positions.push((await j.record(command({ cid: `c${i}` }))).pos);
    const cids = (entries: { cid: string }[]) => entries.map((e) => e.cid);
    t.same(cids(await j.read(0, 10)), Array.from({ length: 10 }, (_, i) => `c${i + 1}`));
    const seen: string[] = [];
    let after = 0;
    for (;;) {
      const page = await j.read(after, 7);
      if (page.length === 0) break;
      t.ok(page.length <= 7, 'a page is at most `limit`');
      seen.push(...cids(page));
      after = page[page.length - 1].pos;
    }
    t.same(seen, Array.from({ length: 25 }, (_, i) => `c${i + 1}`), 'paging visits every command once, in order');
    t.same(cids(await j.read(positions[9], 3)), ['c11', 'c12', 'c13'], 'after is exclusive');
    t.same(await j.read(positions[24], 10), [], 'nothing after the last');
    t.same(await j.read(positions[24] + 1000, 10), [], 'nothing after a future position');
  });

  t.test(`${name}: concurrent writers, paging readers: every command read exactly once, in order`, async (t) => {
    const j = await fixture(t);
    const run = await writeWhileReading(j);
    t.equal(run.recorded.size, 8 * 15 * 4, 'every command recorded');
    t.equal(new Set(run.recorded.values()).size, run.recorded.size, 'distinct positions');
    t.same(visibilityProblems(run).slice(0, 5), [], 'no reader skipped, repeated or reordered a command');
    t.ok(run.reads.every((entries) => entries.length === run.recorded.size), 'each reader read them all');
  });

  t.test(`${name}: an empty journal reads empty`, async (t) => {
    const j = await fixture(t);
    t.same(await j.read(0, 10), []);
    t.equal(await j.head(), 0, 'an empty journal has head 0');
  });

  t.test(`${name}: head is the highest position recorded; a duplicate does not move it`, async (t) => {
    const j = await fixture(t);
    const positions: number[] = [];
    for (let i = 1; i <= 5; i++) positions.push((await j.record(command({ cid: `h${i}` }))).pos);
    t.equal(await j.head(), positions[4], 'the last position recorded');
    t.equal(await j.head(), (await j.read(0, 100)).at(-1)?.pos, 'the last position a reader gets');
    await j.record(command({ cid: 'h3' }));
    t.equal(await j.head(), positions[4], 'a duplicate stores nothing: head unchanged');
    // A relay that delivered up to the second command is this many positions behind.
    t.equal((await j.head()) - positions[1], positions[4] - positions[1]);
  });
}
