/**
 * Frames travel from the primary to a shard in batches: every frame routed to a
 * shard during one event-loop turn is packed into one ArrayBuffer and transferred
 * with one postMessage (docs/architecture.md, "Facts about this uWS build": ~10× the
 * throughput of a message per frame, and
 * no hidden 8 KB clones of Buffer views). The frame bytes are copied into the batch
 * (and its used part once more into the exact-size buffer that is transferred); the
 * shard publishes views of it to uWS without copying again.
 *
 * A resync entry (flag 4) tells the shard that the session's stream continues
 * under a new position (session-streams.ts): its seq is the head and its frame
 * bytes the epoch (UTF-8). It travels in order with the frames around it.
 *
 * Entry layout (little endian):
 *   u8 flags (1: has recipients, 2: has conflate key, 4: resync) | f64 seq
 *   u16 len + session utf8
 *   [u16 count, then per recipient u16 len + utf8]   if flags & 1
 *   [u16 len + conflate key utf8]                    if flags & 2
 *   u32 len + frame bytes
 */
/** A frame routed to a shard. */
export interface RoutedFrame {
  session: string;
  /** Session seq; 0 for unsequenced notices. */
  seq: number;
  /** The encoded server frame. */
  frame: Uint8Array;
  /** Only these users receive it. */
  to?: readonly string[];
  /** Snapshot key of a conflatable frame. */
  conflateKey?: string;
}

/** What a shard does with each entry of a batch. */
export interface BatchVisitor {
  frame(msg: RoutedFrame): void;
  /** The session's stream continues at (epoch, head) after frames it could not recover. */
  resync(session: string, epoch: string, head: number): void;
}

const HAS_TO = 1;
const HAS_KEY = 2;
const RESYNC = 4;
const INITIAL_BYTES = 64 * 1024;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Accumulates bus messages for one shard until the batch is taken. */
export class FrameBatchWriter {
  private buf = new Uint8Array(INITIAL_BYTES);
  private view = new DataView(this.buf.buffer);
  private len = 0;
  private count = 0;

  /** Number of frames in the current batch. */
  get size(): number {
    return this.count;
  }

  /** Appends a resync marker for the session. */
  addResync(session: string, epoch: string, head: number): void {
    this.addEntry(RESYNC, { session, seq: head, frame: encoder.encode(epoch) });
  }

  /** Appends one frame to the batch. */
  add(msg: RoutedFrame): void {
    this.addEntry(0, msg);
  }

  private addEntry(initialFlags: number, msg: RoutedFrame): void {
    let flags = initialFlags;
    let need = 1 + 8 + 2 + msg.session.length * 3 + 4 + msg.frame.length;
    if (msg.to !== undefined) {
      flags |= HAS_TO;
      need += 2;
      for (const u of msg.to) need += 2 + u.length * 3;
    }
    if (msg.conflateKey !== undefined) {
      flags |= HAS_KEY;
      need += 2 + msg.conflateKey.length * 3;
    }
    this.reserve(need);
    this.view.setUint8(this.len, flags);
    this.view.setFloat64(this.len + 1, msg.seq, true);
    this.len += 9;
    this.writeString(msg.session);
    if (msg.to !== undefined) {
      this.view.setUint16(this.len, msg.to.length, true);
      this.len += 2;
      for (const u of msg.to) this.writeString(u);
    }
    if (msg.conflateKey !== undefined) this.writeString(msg.conflateKey);
    this.view.setUint32(this.len, msg.frame.length, true);
    this.len += 4;
    this.buf.set(msg.frame, this.len);
    this.len += msg.frame.length;
    this.count++;
  }

  /** Returns the batch as an exact-size ArrayBuffer (to transfer) and starts a new one. */
  take(): ArrayBuffer {
    const out = this.buf.buffer.slice(0, this.len);
    this.len = 0;
    this.count = 0;
    return out;
  }

  private writeString(s: string): void {
    const { written } = encoder.encodeInto(s, this.buf.subarray(this.len + 2));
    this.view.setUint16(this.len, written, true);
    this.len += 2 + written;
  }

  private reserve(extra: number): void {
    if (this.len + extra <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + extra) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
}

/** Calls the visitor for each entry of a batch, in order; frames are views into `batch`. */
export function readFrameBatch(batch: ArrayBuffer, visit: BatchVisitor): void {
  const bytes = new Uint8Array(batch);
  const view = new DataView(batch);
  let at = 0;
  const readString = (): string => {
    const n = view.getUint16(at, true);
    const s = decoder.decode(bytes.subarray(at + 2, at + 2 + n));
    at += 2 + n;
    return s;
  };
  while (at < bytes.length) {
    const flags = view.getUint8(at);
    const seq = view.getFloat64(at + 1, true);
    at += 9;
    const session = readString();
    let to: string[] | undefined;
    if (flags & HAS_TO) {
      const n = view.getUint16(at, true);
      at += 2;
      to = new Array<string>(n);
      for (let i = 0; i < n; i++) to[i] = readString();
    }
    const conflateKey = flags & HAS_KEY ? readString() : undefined;
    const frameLen = view.getUint32(at, true);
    at += 4;
    const frame = bytes.subarray(at, at + frameLen);
    at += frameLen;
    if (flags & RESYNC) visit.resync(session, decoder.decode(frame), seq);
    else visit.frame({ session, seq, frame, to, conflateKey });
  }
}
