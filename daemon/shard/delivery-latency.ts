/**
 * Delivery latency on a shard: from the event's sequencing (the `ts` the sequencer
 * wrote into the frame, ms since the epoch) to the frame being handed to uWS for
 * its sockets, once per frame (not per recipient). Allocation-free: `ts` is read
 * from the frame's last bytes (protocol/event-template.ts puts it after `data`,
 * followed only by an optional snapshot key of up to 31 bytes and the conflate
 * flag), and the histogram is a fixed array of counts. A frame whose `ts` is not
 * found there (a longer key) is not measured. Across instances the figure includes
 * the clock difference between the sequencing instance and this one.
 */

/** Bucket upper bounds in seconds (Prometheus `le`); the last, implicit bucket is +Inf. */
export const DELIVERY_LATENCY_BUCKETS_S: readonly number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** A histogram snapshot: per-bucket counts (not cumulative; one more than the bounds, for +Inf), their sum and count. */
export interface LatencySnapshot {
  counts: number[];
  sumS: number;
  count: number;
}

const scratch = new Float64Array(1);
const scratchBytes = new Uint8Array(scratch.buffer);

/** Reads a big-endian float64 at `at` without allocating. */
function readFloat64(frame: Uint8Array, at: number): number {
  for (let i = 0; i < 8; i++) scratchBytes[7 - i] = frame[at + i];
  return scratch[0];
}

/** The end of the `"ts" <float64>` pair when it sits at `end` (a2 74 73 cb + 8 bytes), else -1. */
function tsEndingAt(frame: Uint8Array, end: number): number {
  const at = end - 12;
  if (at < 0 || frame[at] !== 0xa2 || frame[at + 1] !== 0x74 || frame[at + 2] !== 0x73 || frame[at + 3] !== 0xcb) return -1;
  return readFloat64(frame, at + 4);
}

/** The `ts` of an encoded `ev` frame (ms), or -1 when it is not at the end of the frame. */
export function eventTimestamp(frame: Uint8Array): number {
  let end = frame.length;
  // ["c" true]: a1 63 c3
  if (end >= 3 && frame[end - 3] === 0xa1 && frame[end - 2] === 0x63 && frame[end - 1] === 0xc3) end -= 3;
  const direct = tsEndingAt(frame, end);
  if (direct >= 0) return direct;
  // ["k" <fixstr key>]: a1 6b (a0|n) <n bytes>
  for (let n = 0; n < 32; n++) {
    const at = end - 3 - n;
    if (at < 12) break;
    if (frame[at] === 0xa1 && frame[at + 1] === 0x6b && frame[at + 2] === (0xa0 | n)) {
      const ts = tsEndingAt(frame, at);
      if (ts >= 0) return ts;
    }
  }
  return -1;
}

/** A fixed-bucket histogram of delivery latency; see the header comment. */
export class LatencyHistogram {
  private readonly counts: number[] = new Array<number>(DELIVERY_LATENCY_BUCKETS_S.length + 1).fill(0);
  private sumS = 0;
  private count = 0;

  /** Observes the frame's latency at `nowMs`, when its `ts` can be read. */
  observeFrame(frame: Uint8Array, nowMs: number): void {
    const ts = eventTimestamp(frame);
    if (ts <= 0) return;
    const s = Math.max(0, nowMs - ts) / 1000;
    let i = 0;
    while (i < DELIVERY_LATENCY_BUCKETS_S.length && s > DELIVERY_LATENCY_BUCKETS_S[i]) i++;
    this.counts[i]++;
    this.sumS += s;
    this.count++;
  }

  /** A copy of the figures. */
  snapshot(): LatencySnapshot {
    return { counts: this.counts.slice(), sumS: this.sumS, count: this.count };
  }
}
