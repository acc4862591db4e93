/**
 * The CommandJournal contract (daemon/engine/command-journal.ts) as one suite every
 * implementation runs (memory now, Postgres later). A factory builds a fresh,
 * isolated journal per subtest (a Postgres factory gives each its own schema/table).
 */
import type { Test } from 'tap';
import type { Command, CommandJournal } from '../../daemon/engine/command-journal.js';

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
    lastSeq: 7,
    lastSeqAt: 1_699_999_999_500,
    conn: 'abc.0.1',
    shard: 0,
    ...over,
  };
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

  t.test(`${name}: an empty journal reads empty`, async (t) => {
    const j = await fixture(t);
    t.same(await j.read(0, 10), []);
  });
}
