// The per-user frame limit shared by all shards (daemon/threads/user-rates.ts) and
// its strikes (daemon/shard/rate-limit.ts takeUserToken): fixed one-second windows
// of wall-clock seconds, exactly `limit` frames in each, counted in one slot by
// every thread at once.
import { Worker } from 'node:worker_threads';
import t from 'tap';
import { createUserRateBuffer, resetSlot, slotsOf, takeUserFrame, windowOf } from '../../daemon/threads/user-rates.js';
import { takeUserToken } from '../../daemon/shard/rate-limit.js';
import type { Connection } from '../../daemon/shard/connection.js';

/** A wall-clock second's start, ms. */
const SECOND = 1_750_000_000_000;

t.test('exactly `limit` frames per window; the next window starts over', async (t) => {
  const table = new Int32Array(createUserRateBuffer(4));
  let allowed = 0;
  for (let i = 0; i < 10; i++) if (takeUserFrame(table, 1, SECOND + i * 10, 5)) allowed++;
  t.equal(allowed, 5, '5 of 10 frames in one second');
  t.notOk(takeUserFrame(table, 1, SECOND + 999, 5), 'still refused at the end of the window');
  t.ok(takeUserFrame(table, 1, SECOND + 1000, 5), 'the next wall-clock second has a fresh budget');
  t.ok(takeUserFrame(table, 0, SECOND + 999, 5), 'other slots (users) are not affected');
  t.ok(takeUserFrame(table, 2, SECOND + 999, 5));
});

t.test('windows move forward only, except when the clock is set back', async (t) => {
  const table = new Int32Array(createUserRateBuffer(1));
  for (let i = 0; i < 3; i++) takeUserFrame(table, 0, SECOND + 1000, 3);
  t.notOk(takeUserFrame(table, 0, SECOND + 999, 3), 'a thread a ms behind counts in the current window, no second budget');
  t.equal(table[0], windowOf(SECOND + 1000));
  t.ok(takeUserFrame(table, 0, SECOND - 3_600_000, 3), 'a clock set back an hour starts a window rather than locking the user out');
});

t.test('a reset slot starts fresh in the same window', async (t) => {
  const table = new Int32Array(createUserRateBuffer(2));
  for (let i = 0; i < 4; i++) takeUserFrame(table, 1, SECOND, 4);
  t.notOk(takeUserFrame(table, 1, SECOND, 4));
  resetSlot(table, 1);
  t.ok(takeUserFrame(table, 1, SECOND + 1, 4));
  t.equal(slotsOf(table.buffer as SharedArrayBuffer), 2);
});

t.test('threads counting in one slot at once: never more than the limit in a window', async (t) => {
  const buffer = createUserRateBuffer(1);
  const table = new Int32Array(buffer);
  // Every thread uses the same fixed time: what is tested is the atomic count, not the clock.
  // The window is entered first, here: the documented boundary race (a frame counted
  // just before the reset) is not what this checks.
  t.ok(takeUserFrame(table, 0, SECOND + 500, 1000));
  const gate = new SharedArrayBuffer(4);
  const runs = await Promise.all(
    [0, 1, 2, 3].map(
      () =>
        new Promise<number>((resolve, reject) => {
          const w = new Worker(new URL('../support/user-rates-worker.ts', import.meta.url), { workerData: { buffer, slot: 0, now: SECOND + 500, limit: 1000, frames: 50000, gate, threads: 4 } });
          w.once('message', resolve);
          w.once('error', reject);
        }),
    ),
  );
  t.equal(runs.reduce((a, b) => a + b, 0), 999, 'the limit holds exactly across 4 threads counting at once');
  t.equal(Atomics.load(table, 1), 200_001, 'every frame was counted once');
});

/** The fields takeUserToken reads and writes, on a stand-in connection. */
function connection(slot: number): Connection {
  return { userSlot: slot, userStrikes: 0, userStruckWindow: 0 } as Connection;
}

t.test('strikes: refusals in consecutive windows add up to a close; a quiet window starts over', async (t) => {
  const table = new Int32Array(createUserRateBuffer(1));
  const busy = connection(0);
  const decisions: string[] = [];
  // Another connection of the user took the whole budget of each second.
  for (let s = 0; s < 4; s++) {
    for (let i = 0; i < 2; i++) takeUserFrame(table, 0, SECOND + s * 1000, 2);
    for (let i = 0; i < 3; i++) decisions.push(takeUserToken(busy, table, SECOND + s * 1000 + 100 + i, 2, 5));
  }
  t.same(decisions, ['refuse', 'refuse', 'refuse', 'refuse', 'refuse', 'close', 'close', 'close', 'close', 'close', 'close', 'close'], 'closed past 5 strikes over consecutive windows');

  const patient = connection(0);
  resetSlot(table, 0);
  const outcomes: string[] = [];
  for (const s of [10, 12, 14, 16]) {
    for (let i = 0; i < 2; i++) takeUserFrame(table, 0, SECOND + s * 1000, 2);
    for (let i = 0; i < 3; i++) outcomes.push(takeUserToken(patient, table, SECOND + s * 1000 + 100, 2, 5));
  }
  t.notOk(outcomes.includes('close'), 'a client that leaves a whole window between its refused bursts is never closed');
  t.equal(patient.userStrikes, 3);
});
