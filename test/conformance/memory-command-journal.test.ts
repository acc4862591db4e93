// The shared CommandJournal suite on the standalone in-memory journal, plus its own
// promises: it keeps the newest `capacity` commands readable, each user's newest
// `maxBytesPerUser` only, and those upstream has taken for `keepTakenMs`; the
// outcomes of commands no longer readable answer retries, the newest `capacity` of
// them. Also
// shows that the suite's visibility check catches a journal that hands out
// positions before its writes become readable (what a naive Postgres one would do).
import t from 'tap';
import type { Command, CommandJournal, JournalEntry } from '../../daemon/engine/command-journal.js';
import { createMemoryCommandJournal } from '../../daemon/engine/memory-command-journal.js';
import { encode } from '../../protocol/codec.js';
import { command, commandJournalConformance, visibilityProblems, writeWhileReading } from './command-journal.js';

commandJournalConformance(t, 'memory', async () => createMemoryCommandJournal({ capacity: 10_000, maxBytes: 2 ** 40 }));

t.test('memory: bounded to the newest `capacity` commands', async (t) => {
  const j = createMemoryCommandJournal({ capacity: 5, maxBytes: 2 ** 40 });
  t.teardown(() => j.close());
  const pos: number[] = [];
  for (let i = 1; i <= 12; i++) pos.push((await j.record(command({ cid: `c${i}` }))).pos);
  t.same((await j.read(0, 100)).map((e) => e.cid), ['c8', 'c9', 'c10', 'c11', 'c12'], 'the newest five');
  t.same((await j.read(pos[8], 100)).map((e) => e.cid), ['c10', 'c11', 'c12'], 'paging still works after eviction');
  t.same((await j.read(pos[9], 1)).map((e) => e.cid), ['c11']);
  t.equal((await j.record(command({ cid: 'c12' }))).duplicate, true, 'kept keys still dedupe');
  t.equal((await j.record(command({ cid: 'c1' }))).duplicate, false, 'one pushed out before upstream took it is new again: its retry is its one way upstream');
  t.same((await j.read(0, 100)).map((e) => e.cid), ['c9', 'c10', 'c11', 'c12', 'c1']);
  j.taken(await j.head());
  for (let i = 13; i <= 19; i++) await j.record(command({ cid: `c${i}` }));
  t.same((await j.read(0, 100)).map((e) => e.cid), ['c15', 'c16', 'c17', 'c18', 'c19']);
  t.equal((await j.record(command({ cid: 'c12' }))).duplicate, true, 'one upstream took, then pushed out, is still a duplicate');
  t.equal((await j.record(command({ cid: 'c13' }))).duplicate, false, 'one recorded after what upstream took, then pushed out, is new again');
  for (let i = 20; i <= 30; i++) await j.record(command({ cid: `c${i}` }));
  j.taken(await j.head());
  for (let i = 31; i <= 40; i++) await j.record(command({ cid: `c${i}` }));
  t.equal((await j.record(command({ cid: 'c30' }))).duplicate, true, 'taken and pushed out: one of the newest five such outcomes');
  t.equal((await j.record(command({ cid: 'c11' }))).duplicate, false, 'c11, taken and pushed out earlier, is past those five: its outcome is forgotten');
});

t.test('memory: bounded by bytes too, data kept encoded; reads stop at maxBytes', async (t) => {
  // 16,300 empty maps: 16 KB on a client's wire (fixmaps), 49 KB as the server
  // writes them (map 16), about 1 MB of objects once decoded.
  const bomb = Array.from({ length: 16_300 }, () => ({}));
  const each = encode(bomb).length + 256;
  const j = createMemoryCommandJournal({ capacity: 1_000_000, maxBytes: 20 * each + 100 });
  t.teardown(() => j.close());
  for (let i = 1; i <= 100; i++) await j.record(command({ cid: `b${i}`, data: bomb }));
  const all = await j.read(0, 1000);
  t.equal(all.length, 20, `the byte bound holds the newest 20 of 100 commands of ${each} bytes`);
  t.equal(all.at(-1)?.cid, 'b100', 'the newest is kept, the oldest went');
  t.same(all[0].data, bomb, 'data comes back as it was recorded');
  const page = await j.read(0, 1000, 3 * each + 10);
  t.equal(page.length, 3, 'a read stops before passing its byte budget');
  const one = await j.read(0, 1000, 10);
  t.equal(one.length, 1, 'but returns at least one entry, so a reader advances');
  const memory = process.memoryUsage().heapUsed;
  for (let i = 101; i <= 2000; i++) await j.record(command({ cid: `b${i}`, data: bomb }));
  const grown = process.memoryUsage().heapUsed - memory;
  t.ok(grown < 64 * 1024 * 1024, `1,900 more such commands do not pile up (+${(grown / 1048576).toFixed(1)} MB heap)`);
});

t.test("memory: each user keeps at most maxBytesPerUser; past it that user's own oldest go, everyone else's stay", async (t) => {
  const data = { text: 'x'.repeat(744) };
  const each = encode(data).length + 256;
  const j = createMemoryCommandJournal({ capacity: 1_000_000, maxBytes: 2 ** 40, maxBytesPerUser: 5 * each });
  t.teardown(() => j.close());
  const bob: number[] = [];
  for (let i = 1; i <= 3; i++) bob.push((await j.record(command({ user: 'bob', cid: `b${i}`, data }))).pos);
  for (let i = 1; i <= 100; i++) await j.record(command({ user: 'mallory', cid: `m${i}`, data }));
  const cids = async (after = 0) => (await j.read(after, 1000)).map((e) => e.cid);
  t.same(await cids(), ['b1', 'b2', 'b3', 'm96', 'm97', 'm98', 'm99', 'm100'], "bob's three and mallory's newest five, in position order");
  t.same(await cids(bob[2]), ['m96', 'm97', 'm98', 'm99', 'm100'], 'a read after a position before the dropped ones skips the gap');
  t.equal((await j.record(command({ user: 'bob', cid: 'b1', data }))).duplicate, true, "bob's kept command still dedupes");
  t.equal((await j.record(command({ user: 'mallory', cid: 'm1', data }))).duplicate, false, "mallory's dropped one is new again");
  // Many more: dropped entries are cut out as they pile up; reads and positions stay right.
  for (let i = 101; i <= 20_000; i++) await j.record(command({ user: 'mallory', cid: `m${i}`, data }));
  t.same(await cids(), ['b1', 'b2', 'b3', 'm19996', 'm19997', 'm19998', 'm19999', 'm20000']);
  const page = await j.read(bob[2], 2);
  t.same(page.map((e) => e.cid), ['m19996', 'm19997'], 'pages across the gap');
  t.same(await cids(page[1].pos), ['m19998', 'm19999', 'm20000']);
  t.equal(await j.head(), bob[2] + 20_001, 'head is the last position handed out');
});

t.test('memory: with shares, the global bounds count only kept commands and drop the oldest of all', async (t) => {
  const j = createMemoryCommandJournal({ capacity: 5, maxBytes: 2 ** 40, maxBytesPerUser: 2 * (encode({ choice: 'A' }).length + 256) });
  t.teardown(() => j.close());
  for (let i = 1; i <= 3; i++) await j.record(command({ user: 'bob', cid: `b${i}` }));
  for (let i = 1; i <= 10; i++) await j.record(command({ user: 'mallory', cid: `m${i}` }));
  t.same((await j.read(0, 100)).map((e) => e.cid), ['b2', 'b3', 'm9', 'm10'], "bob's share of two, mallory's of two");
  await j.record(command({ user: 'carol', cid: 'c1' }));
  await j.record(command({ user: 'dave', cid: 'd1' }));
  t.same((await j.read(0, 100)).map((e) => e.cid), ['b3', 'm9', 'm10', 'c1', 'd1'], 'six kept would pass the capacity of five: the oldest of all (b2) went');
});

t.test('memory: a command upstream has taken stays readable keepTakenMs, then only its outcome stays; the rest stay', async (t) => {
  const j = createMemoryCommandJournal({ capacity: 1000, maxBytes: 2 ** 40, keepTakenMs: 1500 });
  t.teardown(() => j.close());
  const cids = async (after = 0) => (await j.read(after, 1000)).map((e) => e.cid);
  const pos: number[] = [];
  for (let i = 1; i <= 4; i++) pos.push((await j.record(command({ cid: `c${i}` }))).pos);
  t.same(await cids(), ['c1', 'c2', 'c3', 'c4'], 'reading takes nothing');
  j.taken(pos[1]);
  t.same(await cids(), ['c1', 'c2', 'c3', 'c4'], 'c1 and c2 taken: still readable at once, for a reader that lost them');
  await new Promise((r) => setTimeout(r, 3000));
  t.same(await cids(), ['c3', 'c4'], 'after keepTakenMs (and a sweep) the taken ones went');
  t.same(await j.record(command({ cid: 'c1' })), { duplicate: true, pos: pos[0] }, 'a retry of one that went is still a duplicate');
  j.taken(pos[3] + 1000);
  await j.record(command({ cid: 'c5' }));
  await new Promise((r) => setTimeout(r, 3000));
  t.same(await cids(), ['c5'], 'a position past the head takes only what was recorded before it');
  t.equal(await j.head(), pos[3] + 1, 'head is the last position handed out');
});

t.test('memory: without keepTakenMs, taken commands stay until a bound pushes them out', async (t) => {
  const j = createMemoryCommandJournal({ capacity: 1000, maxBytes: 2 ** 40 });
  t.teardown(() => j.close());
  const { pos } = await j.record(command({ cid: 'c1' }));
  j.taken(pos);
  await new Promise((r) => setTimeout(r, 1200));
  t.same((await j.read(0, 10)).map((e) => e.cid), ['c1']);
});

/** Takes a position at once but makes the entry readable only after a random delay: breaks visibility. */
function commitsLate(): CommandJournal {
  let next = 1;
  const visible: JournalEntry[] = [];
  const byKey = new Map<string, number>();
  return {
    async record(cmd: Command) {
      const key = `${cmd.session}\u0000${cmd.user}\u0000${cmd.cid}`;
      const known = byKey.get(key);
      if (known !== undefined) return { duplicate: true, pos: known };
      const pos = next++;
      byKey.set(key, pos);
      await new Promise((r) => setTimeout(r, Math.random() * 3));
      visible.push({ ...cmd, pos });
      visible.sort((a, b) => a.pos - b.pos);
      return { duplicate: false, pos };
    },
    async read(after: number, limit: number) {
      return visible.filter((e) => e.pos > after).slice(0, limit);
    },
    async readEncoded(after: number, limit: number) {
      return visible.filter((e) => e.pos > after).slice(0, limit).map((e) => ({ ...e, data: encode(e.data) }));
    },
    async head() {
      return visible.at(-1)?.pos ?? 0;
    },
    taken() {},
    async close() {},
  };
}

t.test('the visibility check catches positions that become readable out of order', async (t) => {
  const run = await writeWhileReading(commitsLate());
  const problems = visibilityProblems(run);
  t.ok(problems.some((p) => / 0 times$/.test(p)), `a paging reader skipped commands (${problems.length} problems, e.g. ${problems[0]})`);
});
