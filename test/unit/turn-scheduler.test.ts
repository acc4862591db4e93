// Heavy work waits its turn (daemon/shard/turn-scheduler.ts): an owner's tasks run
// in order, owners take turns one task each, and a turn of the event loop spends
// about the budget (4 ms) on them before everything else gets its go.
import t from 'tap';
import { TurnScheduler } from '../../daemon/shard/turn-scheduler.js';

const spin = (ms: number) => {
  const until = performance.now() + ms;
  while (performance.now() < until);
};
const nextTurn = () => new Promise<void>((r) => setImmediate(r));

t.test("an owner's tasks run in order; owners alternate, one task each", async (t) => {
  const s = new TurnScheduler();
  const ran: string[] = [];
  const a = {};
  const b = {};
  for (let i = 0; i < 3; i++) s.run(a, () => ran.push(`a${i}`));
  s.run(b, () => ran.push('b0'));
  s.run(b, () => ran.push('b1'));
  t.same(ran, [], 'nothing runs in the turn that queued it');
  t.ok(s.has(a) && s.waiting(a) === 3);
  await nextTurn();
  await nextTurn();
  t.same(ran, ['a0', 'b0', 'a1', 'b1', 'a2']);
  t.notOk(s.has(a) || s.has(b), 'nothing left waiting');
});

t.test('a turn spends about the budget: the rest waits for later turns, and others get theirs in between', async (t) => {
  const s = new TurnScheduler();
  const heavy = {};
  let done = 0;
  for (let i = 0; i < 20; i++) {
    s.run(heavy, () => {
      spin(2);
      done++;
    });
  }
  // Queued after the scheduler's first turn: it runs between that turn and the next.
  let afterFirstTurn = -1;
  setImmediate(() => (afterFirstTurn = done));
  const light = {};
  let lightRanAt = -1;
  s.run(light, () => (lightRanAt = done));
  while (s.has(heavy)) await nextTurn();
  t.ok(afterFirstTurn >= 1 && afterFirstTurn <= 3, `the first turn ran ${afterFirstTurn} tasks of 2 ms (budget 4 ms, one may overrun it)`);
  t.ok(lightRanAt >= 0 && lightRanAt <= 1, `another owner's task ran in the first round (after ${lightRanAt} heavy ones)`);
  t.equal(done, 20, 'all of it ran in the end');
});

t.test('a task that throws does not stop the others; drop forgets an owner', async (t) => {
  const s = new TurnScheduler();
  const ran: string[] = [];
  const a = {};
  const b = {};
  s.run(a, () => {
    throw new Error('boom');
  });
  s.run(a, () => ran.push('a1'));
  s.run(b, () => ran.push('b0'));
  s.run(b, () => ran.push('b1'));
  s.drop(b);
  await nextTurn();
  await nextTurn();
  t.same(ran, ['a1']);
});
