// A thread counting frames in a shared per-user rate slot with the daemon's own
// limiter (test/unit/user-rates.test.ts): workerData { buffer, slot, now, limit, frames,
// gate, threads }. Threads start counting together: each waits at `gate` until all arrived.
import { parentPort, workerData } from 'node:worker_threads';
import { takeUserFrame } from '../../daemon/threads/user-rates.js';

const { buffer, slot, now, limit, frames, gate, threads } = workerData as {
  buffer: SharedArrayBuffer;
  slot: number;
  now: number;
  limit: number;
  frames: number;
  gate: SharedArrayBuffer;
  threads: number;
};
const table = new Int32Array(buffer);
const arrived = new Int32Array(gate);
if (Atomics.add(arrived, 0, 1) + 1 === threads) Atomics.notify(arrived, 0);
else while (Atomics.load(arrived, 0) < threads) Atomics.wait(arrived, 0, Atomics.load(arrived, 0), 5000);
let allowed = 0;
for (let i = 0; i < frames; i++) if (takeUserFrame(table, slot, now, limit)) allowed++;
parentPort?.postMessage(allowed);
