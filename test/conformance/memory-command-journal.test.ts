// The shared CommandJournal suite on the standalone in-memory journal, plus its own
// promise: it keeps the newest `capacity` commands and forgets older keys.
import t from 'tap';
import { createMemoryCommandJournal } from '../../daemon/engine/memory-command-journal.js';
import { command, commandJournalConformance } from './command-journal.js';

commandJournalConformance(t, 'memory', async () => createMemoryCommandJournal(10_000));

t.test('memory: bounded to the newest `capacity` commands', async (t) => {
  const j = createMemoryCommandJournal(5);
  t.teardown(() => j.close());
  const pos: number[] = [];
  for (let i = 1; i <= 12; i++) pos.push((await j.record(command({ cid: `c${i}` }))).pos);
  t.same((await j.read(0, 100)).map((e) => e.cid), ['c8', 'c9', 'c10', 'c11', 'c12'], 'the newest five');
  t.same((await j.read(pos[8], 100)).map((e) => e.cid), ['c10', 'c11', 'c12'], 'paging still works after eviction');
  t.same((await j.read(pos[9], 1)).map((e) => e.cid), ['c11']);
  t.equal((await j.record(command({ cid: 'c12' }))).duplicate, true, 'kept keys still dedupe');
  t.equal((await j.record(command({ cid: 'c1' }))).duplicate, false, 'an evicted key is new again');
  t.same((await j.read(0, 100)).map((e) => e.cid), ['c9', 'c10', 'c11', 'c12', 'c1']);
});
